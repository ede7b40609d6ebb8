package tokenendpoint_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkDPoPToken is the cost of a DPoP-bound token against a bearer
// token, in-process (handler, fosite, real SQLite), in the same run: b.N
// tokens of each, from pre-made kid (ES256) assertions and, for the bound
// ones, pre-made ES256 proofs, with sixteen requests in flight. The two
// variants run in interleaved rounds (bearer, bound, bearer, ...), so a
// drift in the shared machine's speed hits both alike. A bound token costs
// the proof's parse and signature check and its single-use insert (a second
// write) on top. It reports each variant's rate, CPU per token, and
// dpop/bearer ratios.
func BenchmarkDPoPToken(b *testing.B) {
	e := newDPoPEnv(b, "sqlite", false)
	id := e.ids["kid-ec256"]
	e.clock.Set(time.Now())
	type request struct{ body, proof string }
	mk := func(bound bool) []request {
		out := make([]request, b.N)
		for n := range out {
			a := e.sign(id, e.claims(id, "demo:read"), nil)
			out[n].body = url.Values{"grant_type": {jwtBearer}, "assertion": {a}}.Encode()
			if bound {
				out[n].proof = e.proof(proofSpec{})
			}
		}
		return out
	}
	bearer, bound := mk(false), mk(true)
	if r := e.grantDPoP(id, e.proof(proofSpec{})); r.status != 200 {
		b.Fatalf("warm-up: %d %s", r.status, r.raw)
	}
	const inFlight = 16
	rounds := min(max(b.N/500, 1), 8)
	var failed atomic.Int64
	var took, cpu [2]time.Duration
	run := func(v int, reqs []request) {
		hr := make([]*http.Request, 0, len(reqs))
		for _, r := range reqs {
			req := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(r.body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if r.proof != "" {
				req.Header.Set("DPoP", r.proof)
			}
			hr = append(hr, req)
		}
		b.StartTimer()
		cpu0, t0 := processCPU(b), time.Now()
		serveAll(hr, inFlight, func(req *http.Request) {
			rec := httptest.NewRecorder()
			e.handler.ServeHTTP(rec, req)
			if rec.Code != 200 {
				failed.Add(1)
			}
		})
		took[v] += time.Since(t0)
		cpu[v] += processCPU(b) - cpu0
		b.StopTimer()
	}
	b.ResetTimer()
	b.StopTimer()
	for r := range rounds {
		lo, hi := r*b.N/rounds, (r+1)*b.N/rounds
		run(0, bearer[lo:hi])
		run(1, bound[lo:hi])
	}
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d of %d requests failed", f, 2*b.N)
	}
	rate := func(v int) float64 { return float64(b.N) / took[v].Seconds() }
	perToken := func(v int) float64 { return float64(cpu[v].Microseconds()) / float64(b.N) }
	b.ReportMetric(rate(0), "bearer-tokens/s")
	b.ReportMetric(rate(1), "dpop-tokens/s")
	b.ReportMetric(rate(1)/rate(0), "dpop/bearer-rate")
	b.ReportMetric(perToken(0), "bearer-cpu-us/token")
	b.ReportMetric(perToken(1), "dpop-cpu-us/token")
	b.ReportMetric(perToken(1)/perToken(0), "dpop/bearer-cpu")
}
