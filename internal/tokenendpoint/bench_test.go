package tokenendpoint_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/cryptobound"
)

// BenchmarkTokenEndpoint issues tokens in-process (handler, fosite, real
// SQLite) from pre-signed RS256 certificate assertions, on all cores, with
// sixteen requests in flight. Beside it, in the same run, it measures the
// crypto bound (internal/cryptobound, as portvakt-bench does): one RSA-2048
// sign (the token) plus one RSA-2048 verify (the assertion) per token, on
// all cores. It reports both rates and their ratio,
// the share of the bound the server reaches.
//
// The two are interleaved: the requests run in rounds of about a thousand,
// and the bound is sampled before each round and after the last. The
// machines we run on are shared and their speed drifts by a fifth within
// seconds; a bound measured once, before or after, compares the server with
// a different machine. The ratio is the pooled rate of the rounds over the
// pooled rate of the samples.
func BenchmarkTokenEndpoint(b *testing.B) {
	e := newEnv(b)
	i := e.ids["consumer-seid2"]
	e.clock.Set(time.Now())
	bodies := make([]string, b.N)
	for n := range bodies {
		a := e.sign(i, e.claims(i, "demo:read demo:write"), nil)
		bodies[n] = url.Values{"grant_type": {jwtBearer}, "assertion": {a}}.Encode()
	}
	// Warm the rules and certificate caches.
	warm := e.grant(e.sign(i, e.claims(i, "demo:read"), nil))
	if warm.status != 200 {
		b.Fatalf("warm-up: %d %s", warm.status, warm.raw)
	}
	meter, err := cryptobound.NewMeter()
	if err != nil {
		b.Fatal(err)
	}
	const inFlight = 16
	rounds := min(max(b.N/1000, 1), 8)
	var failed atomic.Int64
	var bound []cryptobound.Sample
	sample := func(n int) {
		s, err := meter.Ops(n)
		if err != nil {
			b.Fatal(err)
		}
		bound = append(bound, s)
	}
	var served, cpu time.Duration
	b.ResetTimer()
	b.StopTimer()
	sample(max(b.N/rounds/2, 50))
	for r := range rounds {
		lo, hi := r*b.N/rounds, (r+1)*b.N/rounds
		// The requests are built before the clock starts, as a client
		// builds them: the timed part is the server's.
		reqs := make([]*http.Request, 0, hi-lo)
		for _, body := range bodies[lo:hi] {
			req := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			reqs = append(reqs, req)
		}
		b.StartTimer()
		cpu0, t0 := processCPU(b), time.Now()
		serveAll(reqs, inFlight, func(req *http.Request) {
			rec := httptest.NewRecorder()
			e.handler.ServeHTTP(rec, req)
			if rec.Code != 200 {
				failed.Add(1)
			}
		})
		served += time.Since(t0)
		cpu += processCPU(b) - cpu0
		b.StopTimer()
		sample(max((hi-lo)/2, 50))
	}
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d of %d requests failed", f, b.N)
	}
	rate, boundRate := float64(b.N)/served.Seconds(), cryptobound.Pooled(bound)
	lo, hi, _ := cryptobound.Range(bound)
	b.ReportMetric(rate, "tokens/s")
	b.ReportMetric(boundRate, "crypto-bound-tokens/s")
	b.ReportMetric(rate/boundRate, "ratio")
	// How far the machine's speed drifted over the run: max/min sample.
	b.ReportMetric(hi/lo, "bound-spread")
	// Where the ratio goes: CPU per token, and how busy the cores were.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/token")
	b.ReportMetric(cpu.Seconds()/(served.Seconds()*float64(runtime.GOMAXPROCS(0))), "cpu-busy")
}

// serveAll calls do for every request on inFlight goroutines and returns
// when all are done.
func serveAll(reqs []*http.Request, inFlight int, do func(*http.Request)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range inFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := next.Add(1) - 1; n < int64(len(reqs)); n = next.Add(1) - 1 {
				do(reqs[n])
			}
		}()
	}
	wg.Wait()
}

// processCPU is the user+system CPU time this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
