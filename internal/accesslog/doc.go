// Package accesslog owns the per-request record: the request id (the trace id
// when the request is traced), the fields handlers learn along the way
// (client, orgs, OAuth error code, private cause) and the one access log line
// written when the request ends. Handlers annotate; only this package logs.
package accesslog
