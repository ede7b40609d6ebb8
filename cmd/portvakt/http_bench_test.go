package main

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/portvakt/portvakt/internal/devmode"
	"github.com/portvakt/portvakt/pkg/client"
)

// BenchmarkHTTPTokenEndpoint drives the whole server over loopback HTTP with
// keep-alive connections and pre-signed assertions (8 concurrent clients):
// what `portvakt-bench` measures, inside one test binary so it can be
// profiled with -cpuprofile.
func BenchmarkHTTPTokenEndpoint(b *testing.B) {
	cfg, _ := startDev(b, newLoggerFor(b))
	ts := devClient(b, cfg, devmode.ConsumerCertClient, []string{"demo:read"}, "")
	bodies := make([]string, b.N)
	for i := range bodies {
		a, err := ts.Assertion(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		bodies[i] = url.Values{"grant_type": {client.GrantType}, "assertion": {a}}.Encode()
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	hc := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := next.Add(1) - 1
				if n >= int64(b.N) {
					return
				}
				resp, err := hc.Post(cfg.Issuer+"token", "application/x-www-form-urlencoded", strings.NewReader(bodies[n]))
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d requests failed", f)
	}
}
