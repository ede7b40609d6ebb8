// Package testserver runs real `portvakt serve` processes for tests: the
// binary built once per test process from this module's source, a test PKI
// and demo records written into a temporary config, free loopback ports, a
// bounded wait for /readyz, and a stop (SIGTERM, then kill) on t.Cleanup.
// The process's log is kept for assertions and printed when the test fails.
//
// It exists so that interoperability, replica and load tests exercise the
// server exactly as it is deployed: over HTTP, configured from a file, with
// its own process and database connection pool. In-process handler tests do
// not need it.
//
//	s := testserver.Start(t, testserver.Options{})
//	ts := s.TokenSource(t, s.PKI.ConsumerKID, "demo:read")
//
// Two processes share one PostgreSQL (replicas) when started with the same
// Options.DSN and Options.Replica pointing at the first: they then share its
// issuer, PKI, records and signing key.
package testserver
