package scaleout_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portvakt/portvakt/internal/pgtest"
	"github.com/portvakt/portvakt/internal/testserver"
)

func TestMain(m *testing.M) { os.Exit(testserver.Main(m)) }

// postgresDSN is the shared test server: pgtest's, or, when its variable is
// not set, the DSN scripts/pg.sh wrote (so that `go test ./internal/scaleout`
// runs after a plain scripts/pg.sh start).
func postgresDSN(t *testing.T) string {
	t.Helper()
	if os.Getenv(pgtest.EnvDSN) == "" {
		if root, err := testserver.ModuleRoot(); err == nil {
			if b, err := os.ReadFile(filepath.Join(root, ".pgtest", "dsn")); err == nil && len(strings.TrimSpace(string(b))) > 0 {
				return strings.TrimSpace(string(b))
			}
		}
	}
	return pgtest.DSN(t)
}

// sqlInt runs a query that returns one integer.
func sqlInt(t *testing.T, dsn, query string, args ...any) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(context.Background())
	var n int64
	if err := conn.QueryRow(ctx, query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// result is one token request as the client saw it.
type result struct {
	status int
	code   string // OAuth error code
	took   time.Duration
	err    error // transport error
}

func newHTTPClient() *http.Client {
	return &http.Client{
		Timeout:   15 * time.Second, // a bound on failure only; tests check took
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64},
	}
}

// post sends one assertion to a token endpoint.
func post(ctx context.Context, hc *http.Client, tokenURL, assertion string) result {
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {assertion}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return result{err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return result{err: err, took: time.Since(start)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	r := result{status: resp.StatusCode, took: time.Since(start), err: err}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		r.code = e.Error
	}
	return r
}

// request asks srv for a token for c with a fresh assertion.
func request(t *testing.T, hc *http.Client, srv *testserver.Server, c testserver.Client, scopes ...string) result {
	t.Helper()
	a, err := srv.TokenSource(t, c, scopes...).Assertion(t.Context())
	if err != nil {
		t.Fatalf("assertion: %v", err)
	}
	return post(t.Context(), hc, srv.TokenURL, a)
}

// readyz is the status of srv's /readyz (0 when it does not answer).
func readyz(hc *http.Client, srv *testserver.Server) int {
	resp, err := hc.Get(srv.OpsURL + "/readyz")
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
