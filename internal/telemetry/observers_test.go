package telemetry_test

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/portvakt/portvakt/internal/exchange"
	"github.com/portvakt/portvakt/internal/protocol"
	"github.com/portvakt/portvakt/internal/store/sqlstore"
	"github.com/portvakt/portvakt/internal/telemetry"
)

var sampleRE = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ([0-9.eE+-]+|NaN)$`)

// scrape reads /metrics over HTTP into "name{labels}" -> value.
func scrape(t *testing.T, tel *telemetry.Telemetry) map[string]float64 {
	t.Helper()
	srv := httptest.NewServer(tel.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if m := sampleRE.FindStringSubmatch(sc.Text()); m != nil {
			v, _ := strconv.ParseFloat(m[3], 64)
			out[m[1]+m[2]] = v
		}
	}
	return out
}

// stepClock moves on by step at every reading.
type stepClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.step)
	return c.t
}

func newTelemetry(t *testing.T, cfg telemetry.Config) *telemetry.Telemetry {
	t.Helper()
	tel, err := telemetry.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	return tel
}

// Every package's Observer reports to the instruments of the same names as
// before, with the same labels.
func TestEveryObserverReachesItsMetric(t *testing.T) {
	clk := &stepClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), step: 2 * time.Millisecond}
	tel := newTelemetry(t, telemetry.Config{Now: clk.Now})
	ctx := t.Context()

	_, end := tel.Exchange().Step(ctx, exchange.StepSign)
	end(nil)
	tel.TokenEndpoint().TokenRequest(ctx, &exchange.Result{ClientAMR: protocol.AMRPrivateKeyJWT, SupplierOrg: "x"}, nil, time.Millisecond)
	tel.TokenEndpoint().TokenRequest(ctx, &exchange.Result{}, protocol.InvalidScope("no"), time.Millisecond)
	tel.Listener("public").Request(ctx, "/token", http.MethodPost, 503, time.Millisecond)
	tel.Certificates().CacheLookup(true)
	tel.Certificates().NegativeLookup(true) // no metric of its own
	tel.Rules().Lookup(false)
	tel.Rules().Reload(7, time.Millisecond, errors.New("down"))
	tel.Database().Batch(3, time.Millisecond, nil)
	tel.Purge().Purged(5, errors.New("locked"))
	tel.RateLimit().Limited("org")
	db, err := sqlstore.Open(ctx, sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: filepath.Join(t.TempDir(), "t.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := tel.InstrumentStore(db).Ping(ctx); err != nil {
		t.Fatal(err)
	}

	got := scrape(t, tel)
	for k, want := range map[string]float64{
		`portvakt_token_signing_duration_seconds_count`:                                                 1,
		`portvakt_token_signing_duration_seconds_sum`:                                                   0.002,
		`portvakt_token_requests_total{client_amr="private_key_jwt",delegated="true",outcome="issued"}`: 1,
		`portvakt_token_requests_total{client_amr="",delegated="false",outcome="rejected"}`:             1,
		`portvakt_token_errors_total{error="invalid_scope"}`:                                            1,
		`portvakt_http_request_duration_seconds_count{method="POST",route="/token",status_class="5xx"}`: 1,
		`portvakt_certificate_cache_lookups_total{result="hit"}`:                                        1,
		`portvakt_rules_cache_lookups_total{result="miss"}`:                                             1,
		`portvakt_rules_reloads_total{outcome="error"}`:                                                 1,
		`portvakt_store_batch_rows_sum`:                                                                 3,
		`portvakt_store_batch_duration_seconds_count{op="insert_issued_tokens",outcome="ok"}`:           1,
		`portvakt_issued_tokens_purged_total`:                                                           5,
		`portvakt_issued_tokens_purge_errors_total`:                                                     1,
		`portvakt_token_rate_limited_total{kind="org"}`:                                                 1,
		`portvakt_store_call_duration_seconds_count{op="ping",outcome="ok"}`:                            1,
		`portvakt_store_call_duration_seconds_sum{op="ping",outcome="ok"}`:                              0.002,
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
}

// The exchange's steps are spans of their names, nested as the contexts
// are, with the public error code as the status; with tracing off a step
// other than signing costs nothing (the context comes back as it was).
func TestExchangeStepsAreSpans(t *testing.T) {
	t.Run("ok/tracing-on", func(t *testing.T) {
		exp := tracetest.NewInMemoryExporter()
		tel := newTelemetry(t, telemetry.Config{SpanExporter: exp, SyncExport: true})
		obs := tel.Exchange()
		vctx, endVerify := obs.Step(t.Context(), exchange.StepVerifyAssertion)
		_, endCert := obs.Step(vctx, exchange.StepVerifyCertificate)
		endCert(protocol.InvalidGrant("The certificate is revoked"))
		endVerify(protocol.InvalidGrant("The certificate is revoked"))
		_, endSign := obs.Step(t.Context(), exchange.StepSign)
		endSign(nil)
		spans := exp.GetSpans()
		if len(spans) != 3 {
			t.Fatalf("%d spans, want 3", len(spans))
		}
		cert, verify, sign := spans[0], spans[1], spans[2]
		if cert.Name != "certificate.verify" || verify.Name != "assertion.verify" || sign.Name != "token.sign" {
			t.Fatalf("spans %s, %s, %s", cert.Name, verify.Name, sign.Name)
		}
		if cert.Parent.SpanID() != verify.SpanContext.SpanID() {
			t.Error("certificate.verify is not a child of assertion.verify")
		}
		if cert.Status.Code != codes.Error || cert.Status.Description != "invalid_grant" {
			t.Errorf("status %+v, want the public code only", cert.Status)
		}
		if sign.Status.Code == codes.Error {
			t.Errorf("a successful step has status %+v", sign.Status)
		}
	})
	t.Run("ok/tracing-off", func(t *testing.T) {
		tel := newTelemetry(t, telemetry.Config{})
		ctx := t.Context()
		got, end := tel.Exchange().Step(ctx, exchange.StepDecide)
		end(nil)
		if got != ctx || trace.SpanFromContext(got).SpanContext().IsValid() {
			t.Error("with tracing off a step changed the context")
		}
		if n := testing.AllocsPerRun(100, func() {
			_, end := tel.Exchange().Step(ctx, exchange.StepDecide)
			end(nil)
		}); n != 0 {
			t.Errorf("an untraced step allocates %v times, want 0", n)
		}
	})
}
