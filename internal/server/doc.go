// Package server is portvakt's HTTP layer: the public mux (token endpoint,
// discovery metadata, JWKS, and the self-service API when wired in), the
// ops mux (health, readiness, metrics), and the http.Server settings that
// harden both (timeouts, header limits, the public listener's connection
// cap and the open-file limit it needs). It routes and wraps; the work is
// done by the packages it is handed.
//
// TLS builds the public listener's tls.Config when it serves TLS itself:
// TLS 1.2 or later and, when configured, a request for client certificates
// (verified against the client CAs, configured intermediates completing a
// leaf sent alone), which bind tokens (RFC 8705) and never authenticate.
//
// Public.Observer and Ops.Observer are told of every request and wrap every
// route (tracing); nil observes nothing.
package server
