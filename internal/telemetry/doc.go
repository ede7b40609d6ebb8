// Package telemetry owns portvakt's metrics and traces: an OpenTelemetry
// meter provider exported to Prometheus on the ops listener, a tracer
// provider exporting over OTLP/HTTP when configured (a no-op otherwise, so
// tracing off costs nothing measurable), and the named instruments the other
// packages report to. No label carries an unbounded value (no client_id, org
// or jti).
package telemetry
