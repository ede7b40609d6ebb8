package resource

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portvakt/portvakt/pkg/dpop"
)

// dpopFixture is a resource server protected by RequireScope with DPoP on,
// reached over real HTTP.
type dpopFixture struct {
	clk   *clock
	srv   *httptest.Server
	key   *dpop.Key // the consumer's DPoP key
	other *dpop.Key
	bound string // a token bound to key
	plain string // a bearer token
}

func newDPoPFixture(t *testing.T, mod func(*VerifierConfig, *dpopFixture)) *dpopFixture {
	t.Helper()
	k := newECKey(t, "k1")
	as := newAuthServer(t, k)
	f := &dpopFixture{clk: newClock()}
	var err error
	if f.key, err = dpop.GenerateKey(); err != nil {
		t.Fatal(err)
	}
	if f.other, err = dpop.GenerateKey(); err != nil {
		t.Fatal(err)
	}
	c := baseClaims(as.issuer, f.clk.Now())
	c["token_type"] = "DPoP"
	c["cnf"] = map[string]any{"jkt": f.key.Thumbprint()}
	f.bound = mint(t, k, c, nil)
	f.plain = mint(t, k, baseClaims(as.issuer, f.clk.Now()), nil)
	h := http.NewServeMux()
	var v *Verifier
	h.Handle("/data/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		RequireScope(v, "acme:read")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, _ := FromContext(r.Context())
			_, _ = io.WriteString(w, "jkt="+c.JKT)
		})).ServeHTTP(w, r)
	}))
	h.Handle("/admin/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		RequireScope(v, "acme:admin")(http.NotFoundHandler()).ServeHTTP(w, r)
	}))
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	v = newVerifier(t, as, f.clk, func(cfg *VerifierConfig) {
		cfg.DPoP.PublicURL = f.srv.URL
		if mod != nil {
			mod(cfg, f)
		}
	})
	return f
}

// call sends one request with the given Authorization and DPoP headers.
func (f *dpopFixture) call(t *testing.T, method, path, auth string, proofs ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, f.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for _, p := range proofs {
		req.Header.Add("DPoP", p)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (f *dpopFixture) proof(t *testing.T, k *dpop.Key, method, url, token, nonce string) string {
	t.Helper()
	p, err := k.Proof(method, url, token, nonce, f.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDPoPBoundTokens(t *testing.T) {
	f := newDPoPFixture(t, nil)
	u := f.srv.URL + "/data/x"
	replayed := f.proof(t, f.key, "GET", u, f.bound, "")
	tests := []struct {
		name    string
		path    string
		auth    string
		proofs  []string
		status  int
		www     string // the first challenge's start
		wantErr string // the JSON error
	}{
		{"ok/dpop/bound-token-with-proof", "/data/x", "DPoP " + f.bound, []string{f.proof(t, f.key, "GET", u, f.bound, "")}, 200, "", ""},
		{"ok/dpop/scheme-case-insensitive", "/data/x", "dpop " + f.bound, []string{f.proof(t, f.key, "GET", u, f.bound, "")}, 200, "", ""},
		{"ok/dpop/query-ignored-in-htu", "/data/x?page=2", "DPoP " + f.bound, []string{f.proof(t, f.key, "GET", u+"?page=1", f.bound, "")}, 200, "", ""},
		{"ok/bearer/unbound-token", "/data/x", "Bearer " + f.plain, nil, 200, "", ""},
		{"fail/dpop/bound-token-as-bearer", "/data/x", "Bearer " + f.bound, nil, 401, `Bearer error="invalid_token", error_description="the token is bound to a key`, "invalid_token"},
		{"fail/dpop/bound-token-as-bearer-with-proof", "/data/x", "Bearer " + f.bound, []string{f.proof(t, f.key, "GET", u, f.bound, "")}, 401, `Bearer error="invalid_token"`, "invalid_token"},
		{"fail/dpop/no-proof", "/data/x", "DPoP " + f.bound, nil, 401, `DPoP error="invalid_dpop_proof", error_description="send exactly one DPoP proof header", algs="`, "invalid_dpop_proof"},
		{"fail/dpop/two-proofs", "/data/x", "DPoP " + f.bound, []string{f.proof(t, f.key, "GET", u, f.bound, ""), f.proof(t, f.key, "GET", u, f.bound, "")}, 401, `DPoP error="invalid_dpop_proof"`, "invalid_dpop_proof"},
		{"fail/dpop/proof-by-another-key", "/data/x", "DPoP " + f.bound, []string{f.proof(t, f.other, "GET", u, f.bound, "")}, 401, `DPoP error="invalid_dpop_proof", error_description="The DPoP proof is made by another key`, "invalid_dpop_proof"},
		{"fail/dpop/ath-of-another-token", "/data/x", "DPoP " + f.bound, []string{f.proof(t, f.key, "GET", u, f.plain, "")}, 401, `DPoP error="invalid_dpop_proof", error_description="The DPoP proof's ath`, "invalid_dpop_proof"},
		{"fail/dpop/no-ath", "/data/x", "DPoP " + f.bound, []string{f.proof(t, f.key, "GET", u, "", "")}, 401, `DPoP error="invalid_dpop_proof", error_description="The DPoP proof's ath`, "invalid_dpop_proof"},
		{"fail/dpop/wrong-htm", "/data/x", "DPoP " + f.bound, []string{f.proof(t, f.key, "POST", u, f.bound, "")}, 401, `DPoP error="invalid_dpop_proof", error_description="The DPoP proof's htm`, "invalid_dpop_proof"},
		{"fail/dpop/wrong-htu-path", "/data/x", "DPoP " + f.bound, []string{f.proof(t, f.key, "GET", f.srv.URL+"/data/y", f.bound, "")}, 401, `DPoP error="invalid_dpop_proof", error_description="The DPoP proof's htu`, "invalid_dpop_proof"},
		{"fail/dpop/wrong-htu-host", "/data/x", "DPoP " + f.bound, []string{f.proof(t, f.key, "GET", "https://elsewhere.example/data/x", f.bound, "")}, 401, `DPoP error="invalid_dpop_proof"`, "invalid_dpop_proof"},
		{"fail/dpop/unbound-token-with-dpop", "/data/x", "DPoP " + f.plain, []string{f.proof(t, f.key, "GET", u, f.plain, "")}, 401, `DPoP error="invalid_token", error_description="the token is not DPoP-bound`, "invalid_token"},
		{"fail/dpop/garbage-token", "/data/x", "DPoP abc", []string{f.proof(t, f.key, "GET", u, "abc", "")}, 401, `DPoP error="invalid_token"`, "invalid_token"},
		{"fail/dpop/insufficient-scope", "/admin/x", "DPoP " + f.bound, []string{f.proof(t, f.key, "GET", f.srv.URL+"/admin/x", f.bound, "")}, 403, `DPoP error="insufficient_scope"`, "insufficient_scope"},
		{"ok/dpop/first-use", "/data/x", "DPoP " + f.bound, []string{replayed}, 200, "", ""},
		{"fail/dpop/replayed-proof", "/data/x", "DPoP " + f.bound, []string{replayed}, 401, `DPoP error="invalid_dpop_proof", error_description="The DPoP proof's jti has been used before`, "invalid_dpop_proof"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.call(t, "GET", tt.path, tt.auth, tt.proofs...)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s (%v)", resp.StatusCode, tt.status, body, resp.Header.Values("WWW-Authenticate"))
			}
			www := resp.Header.Values("WWW-Authenticate")
			if tt.status == 200 {
				if len(www) != 0 || !strings.HasPrefix(body, "jkt=") {
					t.Fatalf("challenge %v, body %q", www, body)
				}
				return
			}
			if len(www) == 0 || !strings.HasPrefix(www[0], tt.www) {
				t.Fatalf("WWW-Authenticate %q, want it to start with %q", www, tt.www)
			}
			var e map[string]string
			if err := json.Unmarshal([]byte(body), &e); err != nil || e["error"] != tt.wantErr {
				t.Fatalf("body %q, want error %s", body, tt.wantErr)
			}
		})
	}
	t.Run("ok/challenge-names-dpop-algs", func(t *testing.T) {
		resp, _ := f.call(t, "GET", "/data/x", "")
		www := resp.Header.Values("WWW-Authenticate")
		if resp.StatusCode != 401 || len(www) != 2 || www[0] != "Bearer" || !strings.HasPrefix(www[1], `DPoP algs="RS256`) || !strings.Contains(www[1], "ES256") {
			t.Fatalf("%d %q", resp.StatusCode, www)
		}
	})
	t.Run("fail/dpop/old-proof", func(t *testing.T) {
		p := f.proof(t, f.key, "GET", u, f.bound, "")
		f.clk.Advance(70 * time.Second)
		defer f.clk.Advance(-70 * time.Second)
		resp, body := f.call(t, "GET", "/data/x", "DPoP "+f.bound, p)
		if resp.StatusCode != 401 || !strings.Contains(body, "too old") {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
}

// htu is built from PublicURL, never from the Host header: a proof made for
// another server is refused even when the client sends that server's Host.
func TestDPoPHTUIgnoresHostHeader(t *testing.T) {
	f := newDPoPFixture(t, nil)
	req, err := http.NewRequestWithContext(t.Context(), "GET", f.srv.URL+"/data/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "victim.example"
	req.Header.Set("X-Forwarded-Host", "victim.example")
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("Authorization", "DPoP "+f.bound)
	req.Header.Set("DPoP", f.proof(t, f.key, "GET", "https://victim.example/data/x", f.bound, ""))
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("a proof for another host was accepted: %d", resp.StatusCode)
	}
}

func TestDPoPForwardedHeadersWhenConfigured(t *testing.T) {
	f := newDPoPFixture(t, func(c *VerifierConfig, _ *dpopFixture) {
		c.DPoP.PublicURL = ""
		c.DPoP.URLFromForwardedHeaders = true
	})
	req, err := http.NewRequestWithContext(t.Context(), "GET", f.srv.URL+"/data/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Forwarded-Host", "api.example")
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("Authorization", "DPoP "+f.bound)
	req.Header.Set("DPoP", f.proof(t, f.key, "GET", "https://api.example/data/x", f.bound, ""))
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("ok/dpop/forwarded-headers: %d", resp.StatusCode)
	}
}

// Without a PublicURL, DPoP is off: a bound token is refused either way.
func TestDPoPNotConfiguredRefusesBoundTokens(t *testing.T) {
	f := newDPoPFixture(t, func(c *VerifierConfig, _ *dpopFixture) { c.DPoP.PublicURL = "" })
	u := f.srv.URL + "/data/x"
	for name, auth := range map[string]string{"fail/dpop/scheme": "DPoP " + f.bound, "fail/bearer/scheme": "Bearer " + f.bound} {
		t.Run(name, func(t *testing.T) {
			resp, body := f.call(t, "GET", "/data/x", auth, f.proof(t, f.key, "GET", u, f.bound, ""))
			if resp.StatusCode != 401 || !strings.Contains(body, "invalid_token") {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
		})
	}
	t.Run("ok/bearer/unbound", func(t *testing.T) {
		if resp, body := f.call(t, "GET", "/data/x", "Bearer "+f.plain); resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
}

func TestDPoPNonceAtResourceServer(t *testing.T) {
	var nonces *dpop.Nonces
	f := newDPoPFixture(t, func(c *VerifierConfig, f *dpopFixture) {
		var err error
		if nonces, err = dpop.NewNonces(nil, time.Minute, f.clk.Now); err != nil {
			t.Fatal(err)
		}
		c.DPoP.Nonces = nonces
	})
	u := f.srv.URL + "/data/x"
	resp, body := f.call(t, "GET", "/data/x", "DPoP "+f.bound, f.proof(t, f.key, "GET", u, f.bound, ""))
	www := resp.Header.Values("WWW-Authenticate")
	if resp.StatusCode != 401 || len(www) != 1 || !strings.HasPrefix(www[0], `DPoP error="use_dpop_nonce"`) || resp.Header.Get("DPoP-Nonce") != nonces.Current() {
		t.Fatalf("fail/dpop/nonce-missing: %d %s %q nonce %q", resp.StatusCode, body, www, resp.Header.Get("DPoP-Nonce"))
	}
	resp, body = f.call(t, "GET", "/data/x", "DPoP "+f.bound, f.proof(t, f.key, "GET", u, f.bound, resp.Header.Get("DPoP-Nonce")))
	if resp.StatusCode != 200 {
		t.Fatalf("ok/dpop/with-nonce: %d %s", resp.StatusCode, body)
	}
}

func TestReplayCacheBounded(t *testing.T) {
	clk := newClock()
	c := dpop.NewReplayCache(2, clk.Now)
	p := func(jti string) *dpop.Proof {
		return &dpop.Proof{JKT: "k", JTI: jti, Until: clk.Now().Add(time.Minute)}
	}
	if c.Use(p("a")) != nil || c.Use(p("b")) != nil {
		t.Fatal("ok/two-fit")
	}
	if c.Use(p("a")) == nil {
		t.Fatal("fail/replay accepted")
	}
	if c.Use(p("c")) == nil {
		t.Fatal("fail/full: a third proof was accepted by a cache of two")
	}
	clk.Advance(time.Minute)
	if err := c.Use(p("c")); err != nil {
		t.Fatalf("ok/after-expiry: %v", err)
	}
	if err := c.Use(p("a")); err != nil {
		t.Fatalf("ok/expired-jti-forgotten: %v", err)
	}
}
