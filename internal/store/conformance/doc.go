// Package conformance is the one test suite that every store.Store
// implementation runs (as dex's storage/conformance does): every method, the
// sentinel errors, transactions and their rollback, the replay insert under
// concurrency, purging, audit paging, round-trips of times and lists, and the
// read-only overlay of declared records (store.WithStatic).
package conformance
