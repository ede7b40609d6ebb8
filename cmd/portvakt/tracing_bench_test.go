package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/portvakt/portvakt/internal/devmode"
	"github.com/portvakt/portvakt/internal/telemetry"
	"github.com/portvakt/portvakt/pkg/client"
)

// discardExporter drops spans: what tracing costs the server itself.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// BenchmarkTracingOverhead issues tokens in-process through the whole public
// handler (otelhttp, access log, fosite, SQLite) with tracing off and with
// tracing on (sampling 1.0, spans to a no-op exporter), alternating rounds so
// both see the same machine load, and reports both rates and their ratio.
func BenchmarkTracingOverhead(b *testing.B) {
	cfgOff, off := startDev(b, newLoggerFor(b))
	// The same issuer, PKI and database, on other ports, with tracing on.
	cfgOn := *cfgOff
	cfgOn.Listen, cfgOn.Ops.Listen = freePort(b), freePort(b)
	on := startApp(b, &cfgOn, newLoggerFor(b), func(c *telemetry.Config) { c.SpanExporter, c.SampleRatio = discardExporter{}, 1 })
	ts := devClient(b, cfgOff, devmode.ConsumerCertClient, []string{"demo:read"}, "")
	const round = 50
	rounds := max(b.N/round, 1)
	bodies := make([]string, 2*rounds*round)
	for i := range bodies {
		a, err := ts.Assertion(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		bodies[i] = url.Values{"grant_type": {client.GrantType}, "assertion": {a}}.Encode()
	}
	var tOff, tOn time.Duration
	serve := func(h http.Handler, body string) {
		req := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
	b.ResetTimer()
	n := 0
	for r := range rounds {
		order := []*app{off, on}
		if r%2 == 1 {
			order = []*app{on, off}
		}
		for _, a := range order {
			start := time.Now()
			for range round {
				serve(a.public, bodies[n])
				n++
			}
			if a == off {
				tOff += time.Since(start)
			} else {
				tOn += time.Since(start)
			}
		}
	}
	b.StopTimer()
	perSide := float64(rounds * round)
	b.ReportMetric(perSide/tOff.Seconds(), "tokens/s-tracing-off")
	b.ReportMetric(perSide/tOn.Seconds(), "tokens/s-tracing-on")
	b.ReportMetric(tOff.Seconds()/tOn.Seconds(), "ratio-on/off")
}
