package tokenendpoint_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/portvakt/portvakt/internal/entcert"
	"github.com/portvakt/portvakt/internal/exchange"
	"github.com/portvakt/portvakt/internal/ratelimit"
	"github.com/portvakt/portvakt/internal/rules"
	"github.com/portvakt/portvakt/internal/server"
	"github.com/portvakt/portvakt/internal/store"
	"github.com/portvakt/portvakt/internal/store/sqlstore"
	"github.com/portvakt/portvakt/internal/tokenendpoint"
)

// limitedEnv is newEnv with rate limits, and a count of the certificate
// chains the server verified (the signature work a flood must not cause).
type limitedEnv struct {
	*env
	chains atomic.Int64
	mu     sync.Mutex
	counts map[ratelimit.Kind]int
}

// CacheLookup counts a chain the server looked up (entcert.Observer).
func (e *limitedEnv) CacheLookup(bool) { e.chains.Add(1) }

// NegativeLookup ignores the failed-chain cache (entcert.Observer).
func (e *limitedEnv) NegativeLookup(bool) {}

// CRLFetch and CRLInUse ignore the CRLs (entcert.Observer).
func (e *limitedEnv) CRLFetch(string, entcert.CRLOutcome)   {}
func (e *limitedEnv) CRLInUse(string, time.Time, time.Time) {}

// Limited counts a refused request (ratelimit.Observer).
func (e *limitedEnv) Limited(k ratelimit.Kind) {
	e.mu.Lock()
	e.counts[k]++
	e.mu.Unlock()
}

// limited is how many requests the limit of kind refused.
func (e *limitedEnv) limited(k ratelimit.Kind) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.counts[k]
}

func newLimitedEnv(t *testing.T, mod func(*ratelimit.Config)) *limitedEnv {
	t.Helper()
	pki, ids, keys := fixtures(t)
	c := &clock{t: time.Now().Truncate(time.Second)}
	db, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: "sqlite", DSN: filepath.Join(t.TempDir(), "portvakt.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	st := store.WithStatic(db, records(t, ids, c.Now()))
	cache := rules.NewCache(st, rules.CacheConfig{})
	le := &limitedEnv{counts: map[ratelimit.Kind]int{}}
	certs, err := entcert.NewVerifier(entcert.Policy{
		Roots: []*x509.Certificate{pki.Root.Cert}, Intermediates: []*x509.Certificate{pki.Intermediate.Cert}, Now: c.Now,
		Observer: le,
	})
	if err != nil {
		t.Fatal(err)
	}
	rc := ratelimit.Config{
		Client:   ratelimit.Rate{PerSecond: 1, Burst: 3},
		Org:      ratelimit.Rate{PerSecond: 100, Burst: 100},
		Address:  ratelimit.Rate{PerSecond: 1, Burst: 2},
		Now:      c.Now,
		Observer: le,
	}
	if mod != nil {
		mod(&rc)
	}
	ex := exchange.New(exchange.Config{Issuer: issuer, Now: c.Now, Limits: ratelimit.New(rc)}, cache, certs, db, keys)
	h, err := server.Public{Issuer: issuer, Token: tokenendpoint.New(ex, tokenendpoint.Config{}), JWKS: keys.JWKS, Log: slog.New(slog.DiscardHandler)}.Handler()
	if err != nil {
		t.Fatal(err)
	}
	le.env = &env{t: t, clock: c, db: db, store: st, cache: cache, keys: keys, handler: h, pki: pki, ids: ids}
	le.srv = httptest.NewServer(h)
	t.Cleanup(le.srv.Close)
	return le
}

// token asks for a token for the named client with a fresh assertion.
func (e *env) token(name string) response {
	e.t.Helper()
	id := e.ids[name]
	return e.grant(e.sign(id, e.claims(id, "demo:read"), nil))
}

// unknown sends a well-signed assertion whose iss is no client, from the
// local address laddr ("" = the default).
func (e *env) unknown(laddr string) response {
	e.t.Helper()
	id := e.ids["kid-rsa"]
	c := e.claims(id, "demo:read")
	c["iss"] = uuid.NewString()
	form := url.Values{"grant_type": {jwtBearer}, "assertion": {e.sign(id, c, nil)}}
	hc := e.srv.Client()
	if laddr != "" {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(laddr)}}
		hc = &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
		defer hc.CloseIdleConnections()
	}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, e.srv.URL+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	return readResponse(e.t, resp)
}

// wantLimited checks a 429 answer of docs/protocol.md.
func wantLimited(t *testing.T, r response, retryAfter, desc string) {
	t.Helper()
	if r.status != http.StatusTooManyRequests || r.code() != "temporarily_unavailable" {
		t.Fatalf("got %d %s (%s), want 429 temporarily_unavailable", r.status, r.code(), r.desc())
	}
	if got := r.header.Get("Retry-After"); got != retryAfter {
		t.Errorf("Retry-After %q, want %q", got, retryAfter)
	}
	if !strings.Contains(r.desc(), desc) || !strings.Contains(r.desc(), "(request_id: ") {
		t.Errorf("description %q, want it to hold %q and the trace id", r.desc(), desc)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", r.header.Get("Cache-Control"))
	}
}

func wantOK(t *testing.T, r response, what string) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("%s: got %d %s (%s), want 200", what, r.status, r.code(), r.desc())
	}
}

func TestRateLimits(t *testing.T) {
	t.Run("fail/client/over-its-burst", func(t *testing.T) {
		e := newLimitedEnv(t, nil)
		for range 3 {
			wantOK(t, e.token("kid-ec256"), "within the burst")
		}
		wantLimited(t, e.token("kid-ec256"), "1", "client's rate limit was exceeded")
		// Another client of the same org has its own bucket.
		wantOK(t, e.token("kid-ec384"), "another client")
		// Half a token later still refused; a whole token later admitted.
		e.clock.Set(e.clock.Now().Add(500 * time.Millisecond))
		wantLimited(t, e.token("kid-ec256"), "1", "client's rate limit was exceeded")
		e.clock.Set(e.clock.Now().Add(500 * time.Millisecond))
		wantOK(t, e.token("kid-ec256"), "after the refill")
		if n := e.issued(); n != 5 {
			t.Errorf("%d issued-token rows, want 5: a refused request writes nothing", n)
		}
		if e.limited(ratelimit.KindClient) != 2 {
			t.Errorf("limited by client: %d, want 2", e.limited(ratelimit.KindClient))
		}
	})
	t.Run("fail/client/retry-after-whole-seconds", func(t *testing.T) {
		e := newLimitedEnv(t, func(c *ratelimit.Config) { c.Client = ratelimit.Rate{PerSecond: 0.4, Burst: 1} })
		wantOK(t, e.token("kid-ec256"), "first")
		wantLimited(t, e.token("kid-ec256"), "3", "client's rate limit") // 2.5 s, rounded up
	})
	t.Run("fail/org/shared-by-its-clients", func(t *testing.T) {
		e := newLimitedEnv(t, func(c *ratelimit.Config) { c.Org = ratelimit.Rate{PerSecond: 1, Burst: 4} })
		for range 3 {
			wantOK(t, e.token("kid-ec256"), "within the client's burst")
		}
		wantOK(t, e.token("kid-ec384"), "within the org's burst")
		wantLimited(t, e.token("kid-rsa"), "1", "organisation "+consumerOrg)
		if e.limited(ratelimit.KindOrg) != 1 {
			t.Errorf("limited by org: %d, want 1", e.limited(ratelimit.KindOrg))
		}
	})
	t.Run("ok/override", func(t *testing.T) {
		e := newLimitedEnv(t, func(c *ratelimit.Config) {
			c.Clients = map[string]ratelimit.Rate{e0(t).ids["kid-ec256"].clientID: {PerSecond: 1, Burst: 6}}
		})
		for range 6 {
			wantOK(t, e.token("kid-ec256"), "within the override's burst")
		}
		wantLimited(t, e.token("kid-ec256"), "1", "client's rate limit")
		for range 3 {
			wantOK(t, e.token("kid-ec384"), "default burst")
		}
		wantLimited(t, e.token("kid-ec384"), "1", "client's rate limit")
	})
	t.Run("fail/unknown-iss/per-address", func(t *testing.T) {
		e := newLimitedEnv(t, nil)
		for range 2 {
			if r := e.unknown(""); r.status != http.StatusBadRequest || r.code() != "invalid_grant" {
				t.Fatalf("unknown iss within the address burst: %d %s", r.status, r.code())
			}
		}
		wantLimited(t, e.unknown(""), "1", "without a known client")
		// Known clients from the same address are counted as themselves.
		wantOK(t, e.token("kid-ec256"), "a known client from the limited address")
		// Another address has its own bucket (127.0.0.2 is loopback too).
		if r := e.unknown("127.0.0.2"); r.status != http.StatusBadRequest || r.code() != "invalid_grant" {
			t.Fatalf("unknown iss from another address: %d %s %s", r.status, r.code(), r.desc())
		}
		if e.limited(ratelimit.KindAddress) != 1 {
			t.Errorf("limited by address: %d, want 1", e.limited(ratelimit.KindAddress))
		}
	})
	t.Run("fail/flood/no-signature-work", func(t *testing.T) {
		e := newLimitedEnv(t, nil)
		id := e.ids["consumer-seid2"]
		ok, limited := 0, 0
		const flood = 200
		for range flood {
			r := e.grant(e.sign(id, e.claims(id, "demo:read"), nil))
			switch {
			case r.status == http.StatusOK:
				ok++
			case r.status == http.StatusTooManyRequests:
				limited++
			default:
				t.Fatalf("%d %s %s", r.status, r.code(), r.desc())
			}
		}
		if ok != 3 || limited != flood-3 {
			t.Errorf("%d tokens and %d refused, want 3 and %d", ok, limited, flood-3)
		}
		if n := e.chains.Load(); n != 3 {
			t.Errorf("%d certificate chains verified for a flood of %d, want 3 (only the admitted requests)", n, flood)
		}
	})
}

// e0 is the shared fixtures' view, for building configs before the env.
func e0(t *testing.T) *env {
	_, ids, _ := fixtures(t)
	return &env{ids: ids}
}

func readResponse(t testing.TB, resp *http.Response) response {
	t.Helper()
	var b strings.Builder
	if _, err := io.Copy(&b, resp.Body); err != nil {
		t.Fatal(err)
	}
	r := response{status: resp.StatusCode, header: resp.Header, raw: b.String()}
	_ = json.Unmarshal([]byte(r.raw), &r.body)
	return r
}
