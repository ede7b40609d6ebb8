package tokenendpoint_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
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
)

// BenchmarkTokenEndpoint issues tokens in-process (handler, fosite, real
// SQLite) from pre-signed RS256 certificate assertions, on all cores, with
// eight requests in flight. Beside
// it, in the same run, it measures the crypto bound: one RSA-2048 sign (the
// token) plus one RSA-2048 verify (the assertion) per token, on all cores.
// It reports both rates and their ratio, the share of the bound the server
// reaches.
func BenchmarkTokenEndpoint(b *testing.B) {
	e := newEnv(b)
	i := e.ids["consumer-seid2"]
	e.clock.Set(time.Now())
	assertions := make([]string, b.N)
	for n := range assertions {
		assertions[n] = e.sign(i, e.claims(i, "demo:read demo:write"), nil)
	}
	bodies := make([]string, b.N)
	for n, a := range assertions {
		bodies[n] = url.Values{"grant_type": {jwtBearer}, "assertion": {a}}.Encode()
	}
	// Warm the rules and certificate caches.
	warm := e.grant(e.sign(i, e.claims(i, "demo:read"), nil))
	if warm.status != 200 {
		b.Fatalf("warm-up: %d %s", warm.status, warm.raw)
	}
	// The bound is measured before and after the run and averaged, so a
	// change in the machine's load during the run skews the ratio less.
	key := e.ids["consumer-seid2"].key.(*rsa.PrivateKey)
	boundBefore := cryptoBound(b, key, max(b.N/2, 100))
	var next atomic.Int64
	var failed atomic.Int64
	// Eight requests in flight, as a loaded server has (and as portvakt-bench
	// drives it by default).
	b.SetParallelism(max(16/runtime.GOMAXPROCS(0), 1))
	b.ResetTimer()
	cpuStart := processCPU(b)
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := next.Add(1) - 1
			req := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(bodies[n]))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			rec := httptest.NewRecorder()
			e.handler.ServeHTTP(rec, req)
			if rec.Code != 200 {
				failed.Add(1)
			}
		}
	})
	elapsed := time.Since(start)
	cpu := processCPU(b) - cpuStart
	b.StopTimer()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d of %d requests failed", f, b.N)
	}
	served := float64(b.N) / elapsed.Seconds()
	bound := (boundBefore + cryptoBound(b, key, max(b.N/2, 100))) / 2
	b.ReportMetric(served, "tokens/s")
	b.ReportMetric(bound, "crypto-bound-tokens/s")
	b.ReportMetric(served/bound, "ratio")
	// Where the ratio goes: CPU per token, and how busy the cores were.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/token")
	b.ReportMetric(cpu.Seconds()/(elapsed.Seconds()*float64(runtime.GOMAXPROCS(0))), "cpu-busy")
}

// processCPU is the user+system CPU time this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cryptoBound is the rate of (one RSA-2048 PKCS#1 v1.5 sign + one verify)
// on GOMAXPROCS goroutines, over n operations.
func cryptoBound(b *testing.B, key *rsa.PrivateKey, n int) float64 {
	b.Helper()
	digest := sha256.Sum256([]byte("portvakt"))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	var left atomic.Int64
	left.Store(int64(n))
	var wg sync.WaitGroup
	start := time.Now()
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				h := sha256.Sum256([]byte("a token's signing input"))
				if _, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, h[:]); err != nil {
					panic(err)
				}
				if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, digest[:], sig); err != nil {
					panic(err)
				}
			}
		}()
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds()
}
