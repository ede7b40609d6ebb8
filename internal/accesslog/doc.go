// Package accesslog owns the per-request record: the request id (the trace id
// when the request is traced), the fields handlers learn along the way
// (client, orgs, OAuth error code, private cause) and the one access log line
// written when the request ends. Handlers annotate; only this package logs.
//
// Config.Observer is told every request's outcome (metrics) and names a
// traced request's trace id; nil observes nothing, and the package imports
// no tracing library.
package accesslog
