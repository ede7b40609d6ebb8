package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/portvakt/portvakt/internal/config"
	"github.com/portvakt/portvakt/internal/devmode"
	"github.com/portvakt/portvakt/internal/telemetry"
	"github.com/portvakt/portvakt/pkg/client"
)

// devClient is a pkg/client source for one of the dev mode's clients.
func devClient(t testing.TB, cfg *config.Config, clientID string, scopes []string, consumerOrg string) *client.TokenSource {
	t.Helper()
	pki := filepath.Join(cfg.DataDir, "pki")
	var s client.Signer
	var err error
	switch clientID {
	case devmode.ConsumerKIDClient:
		b, rerr := os.ReadFile(filepath.Join(pki, "kid-client.key.pem"))
		if rerr != nil {
			t.Fatal(rerr)
		}
		k, kerr := client.LoadPrivateKeyPEM(b)
		if kerr != nil {
			t.Fatal(kerr)
		}
		s, err = client.KeySigner(k, devmode.KID)
	default:
		s = devCertSigner(t, cfg, map[string]string{devmode.ConsumerCertClient: "consumer", devmode.VendorCertClient: "vendor"}[clientID])
	}
	if err != nil {
		t.Fatal(err)
	}
	return devTokenSource(t, cfg, clientID, s, scopes, consumerOrg)
}

// devCertSigner signs with the enterprise certificate of the dev PKI's
// folder dir ("consumer", "vendor"): x5c, for a client without keys.
func devCertSigner(t testing.TB, cfg *config.Config, dir string) client.Signer {
	t.Helper()
	pki := filepath.Join(cfg.DataDir, "pki")
	cb, _ := os.ReadFile(filepath.Join(pki, dir, "chain.pem"))
	kb, _ := os.ReadFile(filepath.Join(pki, dir, "key.pem"))
	k, chain, err := client.LoadPEM(cb, kb)
	if err != nil {
		t.Fatal(err)
	}
	s, err := client.CertificateSigner(k, chain)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// devTokenSource is a pkg/client source for clientID of the server cfg
// runs, signing with s.
func devTokenSource(t testing.TB, cfg *config.Config, clientID string, s client.Signer, scopes []string, consumerOrg string) *client.TokenSource {
	t.Helper()
	ts, err := client.NewTokenSource(t.Context(), client.Config{
		Issuer: cfg.Issuer, TokenURL: cfg.Issuer + "token", ClientID: clientID, Signer: s,
		Scopes: scopes, ConsumerOrg: consumerOrg,
	})
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func fetch(t *testing.T, ts *client.TokenSource) (*client.Response, error) {
	t.Helper()
	return ts.Fetch(t.Context())
}

func oauthCode(err error) string {
	var ce *client.Error
	if errors.As(err, &ce) {
		return ce.Code
	}
	return ""
}

var sampleRE = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ([0-9.eE+-]+|NaN)$`)

// scrape reads /metrics into "name{labels}" -> value.
func scrape(t *testing.T, cfg *config.Config) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + cfg.Ops.Listen + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		m := sampleRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		v, _ := strconv.ParseFloat(m[3], 64)
		out[m[1]+m[2]] = v
	}
	return out
}

func TestMetricsCountExactly(t *testing.T) {
	cfg, _ := startDev(t, newLoggerFor(t))
	before := scrape(t, cfg)

	direct := devClient(t, cfg, devmode.ConsumerCertClient, []string{"demo:read"}, "")
	for range 2 {
		if _, err := fetch(t, direct); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := fetch(t, devClient(t, cfg, devmode.ConsumerKIDClient, []string{"demo:read"}, "")); err != nil {
		t.Fatal(err)
	}
	if _, err := fetch(t, devClient(t, cfg, devmode.VendorCertClient, []string{"demo:read"}, devmode.ConsumerOrg)); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		_, err := fetch(t, devClient(t, cfg, devmode.ConsumerCertClient, []string{"demo:nope"}, ""))
		if oauthCode(err) != "invalid_scope" {
			t.Fatalf("want invalid_scope, got %v", err)
		}
	}
	resp, err := http.PostForm(cfg.Issuer+"token", url.Values{"grant_type": {"password"}, "assertion": {"x"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	after := scrape(t, cfg)
	want := map[string]float64{
		`portvakt_token_requests_total{client_amr="virksomhetssertifikat",delegated="false",outcome="issued"}`:   2,
		`portvakt_token_requests_total{client_amr="private_key_jwt",delegated="false",outcome="issued"}`:         1,
		`portvakt_token_requests_total{client_amr="virksomhetssertifikat",delegated="true",outcome="issued"}`:    1,
		`portvakt_token_requests_total{client_amr="virksomhetssertifikat",delegated="false",outcome="rejected"}`: 2,
		`portvakt_token_requests_total{client_amr="",delegated="false",outcome="rejected"}`:                      1,
		`portvakt_token_errors_total{error="invalid_scope"}`:                                                     2,
		`portvakt_token_errors_total{error="unsupported_grant_type"}`:                                            1,
		`portvakt_token_signing_duration_seconds_count`:                                                          4,
		`portvakt_store_call_duration_seconds_count{op="insert_issued_token",outcome="ok"}`:                      4,
		`portvakt_certificate_cache_lookups_total{result="miss"}`:                                                2,
		`portvakt_certificate_cache_lookups_total{result="hit"}`:                                                 3,
	}
	for k, v := range want {
		if got := after[k] - before[k]; got != v {
			t.Errorf("%s moved by %v, want %v", k, got, v)
		}
	}
	// The 4 issued tokens' rows went to the database in 1 to 4 group
	// commits, each one statement.
	batches := after[`portvakt_store_batch_rows_count`] - before[`portvakt_store_batch_rows_count`]
	if rows := after[`portvakt_store_batch_rows_sum`] - before[`portvakt_store_batch_rows_sum`]; rows != 4 || batches < 1 || batches > 4 {
		t.Errorf("group commits wrote %v rows in %v batches, want 4 rows in 1 to 4", rows, batches)
	}
	if d := after[`portvakt_store_batch_duration_seconds_count{op="insert_issued_tokens",outcome="ok"}`] -
		before[`portvakt_store_batch_duration_seconds_count{op="insert_issued_tokens",outcome="ok"}`]; d != batches {
		t.Errorf("batch duration counted %v statements, want %v", d, batches)
	}
	if after[`portvakt_http_request_duration_seconds_count{method="POST",route="/token",status_class="2xx"}`]-
		before[`portvakt_http_request_duration_seconds_count{method="POST",route="/token",status_class="2xx"}`] != 4 {
		t.Errorf("http duration histogram did not count 4 successful token requests")
	}
	for k := range after {
		for _, bad := range []string{"client_id=", "org=", "jti=", devmode.ConsumerOrg} {
			if strings.Contains(k, bad) {
				t.Errorf("metric with an unbounded label: %s", k)
			}
		}
	}
	if t.Failed() {
		for k, v := range after {
			if strings.HasPrefix(k, "portvakt_") {
				t.Logf("%s %v", k, v)
			}
		}
	}
}

func TestReadyzFollowsTheStore(t *testing.T) {
	cfg, a := startDev(t, newLoggerFor(t))
	get := func() int {
		resp, err := http.Get("http://" + cfg.Ops.Listen + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := get(); s != 200 {
		t.Fatalf("readyz %d before", s)
	}
	a.db.Close()
	if s := get(); s != http.StatusServiceUnavailable {
		t.Fatalf("readyz %d with the store closed", s)
	}
	resp, err := http.Get("http://" + cfg.Listen + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("metrics served on the public port: %d", resp.StatusCode)
	}
}

func TestSpanTreeOfOneTokenRequest(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	cfg, _ := startDev(t, newLoggerFor(t), func(c *telemetry.Config) { c.SpanExporter, c.SyncExport = exp, true })
	exp.Reset()
	if _, err := fetch(t, devClient(t, cfg, devmode.ConsumerCertClient, []string{"demo:read"}, "")); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	byName := map[string]tracetest.SpanStub{}
	for _, s := range spans {
		byName[s.Name] = s
	}
	root, ok := byName["/token"]
	if !ok {
		t.Fatalf("no /token server span in %v", names(spans))
	}
	parentOf := func(name string) string {
		s, ok := byName[name]
		if !ok {
			t.Fatalf("no span %q in %v", name, names(spans))
		}
		if s.SpanContext.TraceID() != root.SpanContext.TraceID() {
			t.Fatalf("span %q is in another trace", name)
		}
		for _, p := range spans {
			if p.SpanContext.SpanID() == s.Parent.SpanID() {
				return p.Name
			}
		}
		return ""
	}
	for child, parent := range map[string]string{
		"certificate.verify":        "assertion.verify",
		"assertion.verify":          "Fosite.NewAccessRequest",
		"access.decide":             "Fosite.NewAccessRequest",
		"token.sign":                "Fosite.NewAccessRequest",
		"store.insert_issued_token": "Fosite.NewAccessRequest",
		"Fosite.NewAccessRequest":   "/token",
	} {
		if got := parentOf(child); got != parent {
			t.Errorf("span %q has parent %q, want %q", child, got, parent)
		}
	}
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestOneAccessLineAndNoSecrets(t *testing.T) {
	var buf syncBuffer
	cfg, _ := startDev(t, slog.New(slog.NewJSONHandler(&buf, nil)))
	vendor := devClient(t, cfg, devmode.VendorCertClient, []string{"demo:read"}, devmode.ConsumerOrg)
	assertion, err := vendor.Assertion(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.PostForm(cfg.Issuer+"token", url.Values{"grant_type": {client.GrantType}, "assertion": {assertion}})
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if tok.AccessToken == "" {
		t.Fatal("no token")
	}
	// The same assertion again: a replay.
	resp, err = http.PostForm(cfg.Issuer+"token", url.Values{"grant_type": {client.GrantType}, "assertion": {assertion}})
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	replayID := resp.Header.Get("X-Request-Id")

	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON log line: %s", l)
		}
		if m["msg"] == "request" && m["route"] == "/token" {
			lines = append(lines, m)
		}
	}
	if len(lines) != 2 {
		t.Fatalf("%d access lines for 2 token requests:\n%s", len(lines), buf.String())
	}
	ok, replay := lines[0], lines[1]
	for _, f := range []string{"method", "route", "status", "duration_ms", "request_id", "client_id", "consumer", "supplier"} {
		if ok[f] == nil || ok[f] == "" {
			t.Errorf("access line lacks %s: %v", f, ok)
		}
	}
	if ok["status"] != float64(200) || ok["supplier"] != devmode.VendorOrg || ok["consumer"] != devmode.ConsumerOrg {
		t.Errorf("access line %v", ok)
	}
	if replay["status"] != float64(400) || replay["error"] != "invalid_grant" || replay["cause"] == nil || replay["request_id"] != replayID {
		t.Errorf("replay line %v (request id %s)", replay, replayID)
	}
	all := buf.String()
	for name, secret := range map[string]string{"assertion": assertion, "token": tok.AccessToken,
		"assertion signature": assertion[strings.LastIndex(assertion, ".")+1:], "token signature": tok.AccessToken[strings.LastIndex(tok.AccessToken, ".")+1:]} {
		if strings.Contains(all, secret) {
			t.Errorf("the log holds the %s", name)
		}
	}
}
