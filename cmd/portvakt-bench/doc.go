// Command portvakt-bench drives a running portvakt server's token endpoint
// over HTTP with keep-alive and reports what it sustained: requests,
// tokens/s, errors by status and OAuth code, latency percentiles, and, when
// the server runs on this machine (--server-pid), its CPU seconds and
// resident memory.
//
// It is a separate binary so the server stays lean.
//
// Fairness. Every assertion is signed before the timed window (each used
// once), so the tool measures the server, not its own RSA signing. It also
// measures, in the same run on the same machine, the bound the server's
// crypto sets: one RSA-2048 sign (the access token) plus one RS256 verify
// (the assertion) per token on all cores, and prints measured/bound. The
// bound is measured while the server is idle and counts the server's crypto
// only; during the window the tool's own HTTP work shares the cores, so it
// also prints its own CPU seconds, the bound adjusted for them (ratio_adj),
// and how much of the server's CPU per token is that crypto (cpu_eff).
//
// Quick start against `portvakt serve --dev` (run from the same directory):
//
//	go run ./cmd/portvakt-bench --issuer http://127.0.0.1:8080/ --dev-dir .portvakt-dev --duration 20s
//
// The last line is machine-readable:
//
//	summary: driver=sqlite tokens_per_s=... p99_ms=... ratio=... rss_mib=...
package main
