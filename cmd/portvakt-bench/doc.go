// Command portvakt-bench drives a running portvakt server's token endpoint
// over HTTP with keep-alive and reports what it sustained: requests,
// tokens/s, errors by status and OAuth code, latency percentiles, and, when
// the server runs on this machine (--server-pid), its CPU seconds and
// resident memory.
//
// It is a separate binary so the server stays lean.
//
// Fairness. Every assertion is signed before the first round (each used
// once), so the tool measures the server, not its own RSA signing; the
// requests go out on fasthttp, whose client costs far less CPU per request
// than net/http's, CPU the server would otherwise lack. The tool also
// measures, in the same run on the same machine, the bound the server's
// crypto sets: one RSA-2048 sign (the access token) plus one RS256 verify
// (the assertion) per token on all cores, and prints measured/bound.
//
// The bound and the load are interleaved. On a shared machine (a cloud VM,
// a laptop with other work) the speed drifts by tens of percent within
// seconds, so a bound measured once before the load compares the server
// with a different machine. The load is split into rounds (--rounds, about
// 3 s each by default); before each round and after the last, the load
// stops, the requests in flight come back, and the bound is sampled for a
// moment (--bound-sample) with the server idle. The bound in the ratio is
// pooled over all its samples (operations over seconds), tokens/s over the
// load slices only; the per-round figures, and a warning when the samples
// spread by more than 15 %, show how much the machine drifted. The bound
// counts the server's crypto only; during the load the tool's own HTTP work
// shares the cores, so it also prints its own CPU seconds over the load
// slices, the bound adjusted for them (ratio_adj), and how much of the
// server's CPU per token is that crypto (cpu_eff). The assertions live 120 s
// from signing: the tool refuses a --duration, --rounds and --bound-sample
// that would not fit, and stops early rather than send an expired one.
//
// The reference. --reference starts a token endpoint of the tool's own
// (reference.go) as a child process and measures it instead of a server: it
// does the grant's crypto (verify the assertion, sign an RS256 token) over
// net/http and nothing else, no store, rules, log or metrics. Its ratio is
// the most an HTTP token endpoint reaches on this machine with this tool, so
// a server's ratio next to it shows how much of the gap is the server's own
// work. --reference-store sqlite (or postgres, with the DSN in
// PORTVAKT_DATABASE_DSN) adds the replay check, the store's atomic insert of
// the issued-token row keyed by the assertion's jti: its ratio is the most a
// token endpoint that keeps assertions single-use with that store reaches
// here.
//
// Quick start against `portvakt serve --dev` (run from the same directory):
//
//	go run ./cmd/portvakt-bench --issuer http://127.0.0.1:8080/ --dev-dir .portvakt-dev --duration 20s
//
// The last line is machine-readable:
//
//	summary: driver=sqlite tokens_per_s=... p99_ms=... bound_per_s=... rounds=... ratio=... rss_mib=...
package main
