// Package telemetry owns portvakt's metrics and traces: an OpenTelemetry
// meter provider exported to Prometheus on the ops listener, a tracer
// provider exporting over OTLP/HTTP when configured (a no-op otherwise, so
// tracing off costs nothing measurable), and the named instruments the other
// packages report to. No label carries an unbounded value (no client_id, org
// or jti). It is the only package that knows Prometheus or OpenTelemetry.
//
// # One way to observe
//
// Every package that has something to report declares one small interface
// named Observer, whose methods are named for that package's events
// (rules.Observer has Reload and Lookup, entcert.Observer CacheLookup and
// NegativeLookup, ...), and takes it as the Observer field of its Config. A
// nil Observer observes nothing: each package keeps an unexported no-op.
// Metrics and traces go through the same interface: where a package has
// steps worth tracing, they are events too (exchange.Observer.Step returns
// the step's context and the function that ends it), so no other package
// imports a tracing library, and a duration a metric needs is either
// measured on the reporting package's injected clock (rules' reloads, the
// token endpoint's requests) or is a step's length, measured here on
// Config.Now (the signing step).
//
// This package implements each Observer (observers.go, with a compile-time
// assertion per package) and main wires them, one Telemetry method per
// package: Exchange, TokenEndpoint, Listener, Certificates, Rules, Database,
// Purge, RateLimit and SigningKeys.
//
// Some state is a time rather than an event: a CRL's thisUpdate and
// nextUpdate, when the CURRENT signing key was activated. The observers
// keep the times they are told and the gauges turn them into ages at each
// scrape (freshness.go), so a series is as old as the scrape, not as the
// last request that happened to look.
//
// The store is observed the same way, though it looks different:
// store.Store is already the interface the store's callers see, so its
// Observer is an implementation of that interface (InstrumentStore) that
// times the calls and passes them on, wired in main around the store like
// the others are handed to their packages. A sqlstore Observer with an
// event per store method would have to be called from every method of every
// implementation (and the static overlay), and would repeat the interface
// method for method; the decorator times any implementation, and nothing
// outside this package knows it is there. What the callers cannot see, the
// group commit of several callers' rows in one statement, is sqlstore's own
// Observer (Batch).
package telemetry
