// Package purge removes issued-token rows past the audit retention period, in
// bounded batches, in the background: never in the request path.
package purge
