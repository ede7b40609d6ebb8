package client

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/portvakt/portvakt/internal/testpki"
)

// tokenServer is a stand-in token endpoint: it checks each grant's signature
// with pub and answers with reply.
type tokenServer struct {
	*httptest.Server
	issuer    string
	pub       crypto.PublicKey
	posts     atomic.Int32
	discovers atomic.Int32
	// reply writes the token response; default a 120 s token.
	reply func(w http.ResponseWriter, n int32)
	// gate, when set, holds every POST until closed.
	gate chan struct{}

	mu      sync.Mutex
	grants  []jwt.MapClaims
	headers []map[string]any
}

func newTokenServer(t *testing.T, pub crypto.PublicKey) *tokenServer {
	t.Helper()
	s := &tokenServer{pub: pub}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		s.discovers.Add(1)
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": s.issuer, "token_endpoint": s.issuer + "token"})
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		n := s.posts.Add(1)
		if s.gate != nil {
			<-s.gate
		}
		if r.PostFormValue("grant_type") != GrantType {
			http.Error(w, `{"error":"unsupported_grant_type"}`, http.StatusBadRequest)
			return
		}
		claims := jwt.MapClaims{}
		tok, err := jwt.NewParser(jwt.WithAudience(s.issuer)).ParseWithClaims(r.PostFormValue("assertion"), claims,
			func(*jwt.Token) (any, error) { return s.pub, nil })
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant", "error_description": err.Error()})
			return
		}
		s.mu.Lock()
		s.grants = append(s.grants, claims)
		s.headers = append(s.headers, tok.Header)
		s.mu.Unlock()
		if s.reply != nil {
			s.reply(w, n)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"tok-%d","token_type":"Bearer","expires_in":120,"scope":%q}`, n, claims["scope"])
	})
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	s.issuer = s.URL + "/"
	return s
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func rsaKeySigner(t *testing.T) (*rsa.PrivateKey, Signer) {
	t.Helper()
	k, err := testpki.RSAKey(2048)
	if err != nil {
		t.Fatal(err)
	}
	s, err := KeySigner(k, "key-1")
	if err != nil {
		t.Fatal(err)
	}
	return k, s
}

func TestNewTokenSourceConfig(t *testing.T) {
	_, signer := rsaKeySigner(t)
	good := func() Config {
		return Config{Issuer: "https://auth.example.no/", ClientID: "c1", Scopes: []string{"acme:read"}, Signer: signer}
	}
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string
	}{
		{"ok/minimal", func(*Config) {}, ""},
		{"ok/everything", func(c *Config) {
			c.TokenURL = "https://auth.example.no/token"
			c.Resources = []string{"https://api.example.no/a", "https://api.example.no/b"}
			c.ConsumerOrg = "910000000"
			c.PID = "01010112345"
			c.RenewBefore = 5 * time.Second
			c.AssertionLifetime = 60 * time.Second
		}, ""},
		{"fail/no-issuer", func(c *Config) { c.Issuer = "" }, "Issuer"},
		{"fail/relative-issuer", func(c *Config) { c.Issuer = "auth.example.no" }, "Issuer"},
		{"fail/no-client-id", func(c *Config) { c.ClientID = "" }, "ClientID"},
		{"fail/no-signer", func(c *Config) { c.Signer = Signer{} }, "Signer"},
		{"fail/no-scopes", func(c *Config) { c.Scopes = nil }, "no scopes"},
		{"fail/scope-with-space", func(c *Config) { c.Scopes = []string{"a b"} }, "whitespace"},
		{"fail/relative-resource", func(c *Config) { c.Resources = []string{"/api"} }, "resource"},
		{"fail/consumer-org", func(c *Config) { c.ConsumerOrg = "12345" }, "consumer_org"},
		{"fail/pid", func(c *Config) { c.PID = "123" }, "PID"},
		{"fail/lifetime-too-long", func(c *Config) { c.AssertionLifetime = 121 * time.Second }, "AssertionLifetime"},
		{"fail/negative-renew", func(c *Config) { c.RenewBefore = -time.Second }, "RenewBefore"},
		{"fail/all-at-once", func(c *Config) { c.ClientID = ""; c.Scopes = nil }, "ClientID is empty\nno scopes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good()
			tt.mod(&cfg)
			_, err := NewTokenSource(t.Context(), cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("NewTokenSource: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}

func TestSignerAlgorithms(t *testing.T) {
	mustRSA := func(bits int) crypto.Signer {
		k, err := testpki.RSAKey(bits)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	mustEC := func(c elliptic.Curve) crypto.Signer {
		k, err := testpki.ECKey(c)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	tests := []struct {
		name    string
		key     crypto.Signer
		wantAlg string
	}{
		{"ok/rsa-2048", mustRSA(2048), "RS256"},
		{"ok/p256", mustEC(elliptic.P256()), "ES256"},
		{"ok/p384", mustEC(elliptic.P384()), "ES384"},
		{"fail/rsa-1024", mustRSA(1024), ""},
		{"fail/p521", mustEC(elliptic.P521()), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := KeySigner(tt.key, "k")
			if tt.wantAlg == "" {
				if err == nil {
					t.Fatalf("KeySigner accepted the key (alg %s)", s.Algorithm())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Algorithm() != tt.wantAlg {
				t.Fatalf("alg = %s, want %s", s.Algorithm(), tt.wantAlg)
			}
			// The signature must verify with golang-jwt's own method.
			ts := mustSource(t, Config{Issuer: "https://auth.example.no/", ClientID: "c", Scopes: []string{"s"}, Signer: s})
			a, err := ts.Assertion(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := jwt.Parse(a, func(*jwt.Token) (any, error) { return tt.key.Public(), nil },
				jwt.WithValidMethods([]string{tt.wantAlg})); err != nil {
				t.Fatalf("verify: %v", err)
			}
		})
	}
	t.Run("fail/empty-kid", func(t *testing.T) {
		if _, err := KeySigner(mustRSA(2048), ""); err == nil {
			t.Fatal("KeySigner accepted an empty kid")
		}
	})
}

func mustSource(t *testing.T, cfg Config) *TokenSource {
	t.Helper()
	ts, err := NewTokenSource(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func TestAssertion(t *testing.T) {
	pki, err := testpki.New("Test")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := pki.Leaf(testpki.LeafOptions{Org: "910000000"})
	if err != nil {
		t.Fatal(err)
	}
	certSigner, err := CertificateSigner(leaf.Key, leaf.Chain)
	if err != nil {
		t.Fatal(err)
	}
	key, kidSigner := rsaKeySigner(t)
	clk := newClock()
	const issuer = "https://auth.example.no/"

	tests := []struct {
		name       string
		cfg        Config
		pub        crypto.PublicKey
		wantHeader map[string]any
		wantClaims map[string]any
		absent     []string
	}{
		{
			name:       "ok/x5c-one-resource",
			cfg:        Config{Signer: certSigner, Resources: []string{"https://api.example.no/"}},
			pub:        leaf.Cert.PublicKey,
			wantHeader: map[string]any{"alg": "RS256", "x5c": toAny(leaf.X5C())},
			wantClaims: map[string]any{"resource": "https://api.example.no/"},
			absent:     []string{"consumer_org", "pid"},
		},
		{
			name: "ok/kid-delegated",
			cfg: Config{Signer: kidSigner, ConsumerOrg: "910000001", PID: "01010112345",
				Resources: []string{"https://a.example.no/", "https://b.example.no/"}},
			pub:        key.Public(),
			wantHeader: map[string]any{"alg": "RS256", "kid": "key-1"},
			wantClaims: map[string]any{
				"consumer_org": "910000001", "pid": "01010112345",
				"resource": []any{"https://a.example.no/", "https://b.example.no/"},
			},
		},
		{
			name:       "ok/no-resource",
			cfg:        Config{Signer: kidSigner, AssertionLifetime: 30 * time.Second},
			pub:        key.Public(),
			wantHeader: map[string]any{"kid": "key-1"},
			wantClaims: map[string]any{"exp": float64(clk.Now().Unix() + 30)},
			absent:     []string{"resource", "x5c"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Issuer, cfg.ClientID, cfg.Scopes, cfg.Now = issuer, "client-1", []string{"acme:a", "acme:b"}, clk.Now
			ts := mustSource(t, cfg)
			a, err := ts.Assertion(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			claims := jwt.MapClaims{}
			tok, err := jwt.NewParser(jwt.WithTimeFunc(clk.Now), jwt.WithAudience(issuer)).ParseWithClaims(a, claims,
				func(*jwt.Token) (any, error) { return tt.pub, nil })
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			want := map[string]any{
				"aud": issuer, "iss": "client-1", "scope": "acme:a acme:b",
				"iat": float64(clk.Now().Unix()), "exp": float64(clk.Now().Unix() + 120),
			}
			for k, v := range tt.wantClaims {
				want[k] = v
			}
			for k, v := range want {
				if got := claims[k]; !jsonEqual(got, v) {
					t.Errorf("claim %s = %#v, want %#v", k, got, v)
				}
			}
			for k, v := range tt.wantHeader {
				if got := tok.Header[k]; !jsonEqual(got, v) {
					t.Errorf("header %s = %#v, want %#v", k, got, v)
				}
			}
			for _, k := range tt.absent {
				if _, ok := claims[k]; ok {
					t.Errorf("claim %s present", k)
				}
				if _, ok := tok.Header[k]; ok {
					t.Errorf("header %s present", k)
				}
			}
			if jti, _ := claims["jti"].(string); len(jti) < 32 {
				t.Errorf("jti = %q, want a UUID", jti)
			}
			b, _ := ts.Assertion(t.Context())
			_, c2, _ := DecodeToken(b)
			if c2["jti"] == claims["jti"] {
				t.Error("two assertions share a jti")
			}
		})
	}
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func TestCertificateSignerChecks(t *testing.T) {
	pki, err := testpki.New("Test")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := pki.Leaf(testpki.LeafOptions{Org: "910000000"})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := testpki.RSAKey(2048)
	tests := []struct {
		name  string
		key   crypto.Signer
		chain []*x509.Certificate
		ok    bool
	}{
		{"ok/chain", leaf.Key, leaf.Chain, true},
		{"ok/leaf-alone", leaf.Key, leaf.Chain[:1], true},
		{"fail/key-mismatch", other, leaf.Chain, false},
		{"fail/leaf-not-first", leaf.Key, []*x509.Certificate{leaf.Chain[1], leaf.Chain[0]}, false},
		{"fail/no-chain", leaf.Key, nil, false},
		{"fail/no-key", nil, leaf.Chain, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CertificateSigner(tt.key, tt.chain)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestTokenCacheAndRenewal(t *testing.T) {
	key, signer := rsaKeySigner(t)
	srv := newTokenServer(t, key.Public())
	clk := newClock()
	ts := mustSource(t, Config{Issuer: srv.issuer, ClientID: "c1", Scopes: []string{"acme:read"}, Signer: signer, Now: clk.Now})

	step := func(advance time.Duration, wantToken string, wantPosts int32) {
		t.Helper()
		clk.Advance(advance)
		tok, err := ts.Token()
		if err != nil {
			t.Fatalf("Token: %v", err)
		}
		if tok.AccessToken != wantToken || srv.posts.Load() != wantPosts {
			t.Fatalf("after +%s: token %q after %d POSTs, want %q after %d", advance, tok.AccessToken, srv.posts.Load(), wantToken, wantPosts)
		}
	}
	step(0, "tok-1", 1)
	tok, _ := ts.Token()
	if tok.TokenType != "Bearer" || !tok.Expiry.Equal(clk.Now().Add(120*time.Second)) || tok.Extra("scope") != "acme:read" || tok.ExpiresIn != 120 {
		t.Fatalf("token = %+v, scope %v", tok, tok.Extra("scope"))
	}
	step(89*time.Second, "tok-1", 1)   // default RenewBefore = min(30s, 120s/4) = 30s
	step(1*time.Second, "tok-2", 2)    // 30 s before expiry: renewed
	step(89*time.Second, "tok-2", 2)   // cached again
	step(1000*time.Second, "tok-3", 3) // long expired
	if n := srv.discovers.Load(); n != 1 {
		t.Fatalf("metadata fetched %d times, want once", n)
	}

	t.Run("ok/renew-before-capped-at-half-lifetime", func(t *testing.T) {
		clk := newClock()
		srv := newTokenServer(t, key.Public())
		srv.reply = func(w http.ResponseWriter, n int32) {
			fmt.Fprintf(w, `{"access_token":"t%d","token_type":"bearer","expires_in":10}`, n)
		}
		ts := mustSource(t, Config{Issuer: srv.issuer, ClientID: "c1", Scopes: []string{"s"}, Signer: signer, Now: clk.Now, RenewBefore: time.Minute})
		for range 3 {
			if _, err := ts.Token(); err != nil {
				t.Fatal(err)
			}
		}
		clk.Advance(4 * time.Second)
		if _, err := ts.Token(); err != nil || srv.posts.Load() != 1 {
			t.Fatalf("posts = %d (err %v), want 1 inside the first half", srv.posts.Load(), err)
		}
		clk.Advance(time.Second)
		if _, err := ts.Token(); err != nil || srv.posts.Load() != 2 {
			t.Fatalf("posts = %d (err %v), want 2 at half-life", srv.posts.Load(), err)
		}
	})
	t.Run("ok/invalidate", func(t *testing.T) {
		before := srv.posts.Load()
		ts.Invalidate()
		if _, err := ts.Token(); err != nil || srv.posts.Load() != before+1 {
			t.Fatalf("Invalidate did not force a new request (err %v)", err)
		}
	})
}

func TestTokenSingleflight(t *testing.T) {
	key, signer := rsaKeySigner(t)
	srv := newTokenServer(t, key.Public())
	srv.gate = make(chan struct{})
	ts := mustSource(t, Config{Issuer: srv.issuer, TokenURL: srv.URL + "/token", ClientID: "c1", Scopes: []string{"s"}, Signer: signer})

	const n = 20
	var wg sync.WaitGroup
	toks := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			tok, err := ts.TokenContext(t.Context())
			if err == nil {
				toks[i] = tok.AccessToken
			}
			errs[i] = err
		})
	}
	// Let every caller reach the shared request before the server answers.
	deadline := time.Now().Add(5 * time.Second)
	for srv.posts.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	close(srv.gate)
	wg.Wait()
	if got := srv.posts.Load(); got != 1 {
		t.Fatalf("%d concurrent callers made %d POSTs, want 1", n, got)
	}
	for i := range n {
		if errs[i] != nil || toks[i] != "tok-1" {
			t.Fatalf("caller %d: %q, %v", i, toks[i], errs[i])
		}
	}
	if srv.discovers.Load() != 0 {
		t.Fatal("discovery ran although TokenURL was set")
	}
}

func TestTokenCallerCancel(t *testing.T) {
	key, signer := rsaKeySigner(t)
	srv := newTokenServer(t, key.Public())
	srv.gate = make(chan struct{})
	ts := mustSource(t, Config{Issuer: srv.issuer, ClientID: "c1", Scopes: []string{"s"}, Signer: signer})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := ts.TokenContext(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	close(srv.gate)
	// The shared request was not cancelled with the caller; it fills the cache.
	tok, err := ts.TokenContext(t.Context())
	if err != nil || tok.AccessToken != "tok-1" {
		t.Fatalf("token %v, err %v", tok, err)
	}
}

func TestTokenErrors(t *testing.T) {
	key, signer := rsaKeySigner(t)
	tests := []struct {
		name     string
		reply    func(w http.ResponseWriter, n int32)
		issuer   func(srv *tokenServer) string
		wantAs   *Error
		contains string
	}{
		{
			name: "fail/oauth-error",
			reply: func(w http.ResponseWriter, _ int32) {
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprint(w, `{"error":"invalid_scope","error_description":"scope acme:x is not granted (request_id: abc)"}`)
			},
			wantAs:   &Error{StatusCode: 400, Code: "invalid_scope", Description: "scope acme:x is not granted (request_id: abc)"},
			contains: "invalid_scope: scope acme:x",
		},
		{
			name: "fail/not-json",
			reply: func(w http.ResponseWriter, _ int32) {
				w.WriteHeader(http.StatusBadGateway)
				fmt.Fprint(w, "<html>bad gateway</html>")
			},
			wantAs:   &Error{StatusCode: 502, Description: "<html>bad gateway</html>"},
			contains: "HTTP 502",
		},
		{
			name:     "fail/no-access-token",
			reply:    func(w http.ResponseWriter, _ int32) { fmt.Fprint(w, `{"token_type":"Bearer"}`) },
			contains: "no access_token",
		},
		{
			name:     "fail/not-bearer",
			reply:    func(w http.ResponseWriter, _ int32) { fmt.Fprint(w, `{"access_token":"x","token_type":"DPoP"}`) },
			contains: "not Bearer",
		},
		{
			name:     "fail/metadata-issuer-mismatch",
			issuer:   func(srv *tokenServer) string { return strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) + "/" }, // the same server, not byte for byte
			contains: "metadata issuer",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTokenServer(t, key.Public())
			srv.reply = tt.reply
			iss := srv.issuer
			if tt.issuer != nil {
				iss = tt.issuer(srv)
			}
			ts := mustSource(t, Config{Issuer: iss, ClientID: "c1", Scopes: []string{"s"}, Signer: signer})
			_, err := ts.Token()
			if err == nil || !strings.Contains(err.Error(), tt.contains) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.contains)
			}
			var oe *Error
			if tt.wantAs == nil {
				if errors.As(err, &oe) {
					t.Fatalf("unexpected *Error %+v", oe)
				}
				return
			}
			if !errors.As(err, &oe) || *oe != *tt.wantAs {
				t.Fatalf("errors.As: %+v, want %+v", oe, tt.wantAs)
			}
		})
	}
}

func TestClientSources(t *testing.T) {
	key, signer := rsaKeySigner(t)
	srv := newTokenServer(t, key.Public())
	c, err := NewClient(t.Context(), Config{Issuer: srv.issuer, ClientID: "c1", Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	a1, _ := c.Source([]string{"a"}, nil, "")
	a2, _ := c.Source([]string{"a"}, nil, "")
	b, _ := c.Source([]string{"a"}, nil, "910000001")
	r, _ := c.Source([]string{"a"}, []string{"https://api.example.no/"}, "")
	if a1 != a2 || a1 == b || a1 == r || b == r {
		t.Fatal("sources are not keyed by (scopes, resources, consumer_org)")
	}
	for _, ts := range []*TokenSource{a1, a2, b, r} {
		if _, err := ts.Token(); err != nil {
			t.Fatal(err)
		}
	}
	if srv.posts.Load() != 3 {
		t.Fatalf("posts = %d, want one per key (3)", srv.posts.Load())
	}
	srv.mu.Lock()
	grants := slices.Clone(srv.grants)
	srv.mu.Unlock()
	if grants[1]["consumer_org"] != "910000001" || grants[2]["resource"] != "https://api.example.no/" {
		t.Fatalf("grants = %v", grants)
	}
	if _, err := c.Source(nil, nil, ""); err == nil {
		t.Fatal("Source without scopes succeeded")
	}

	t.Run("ok/fetch-bypasses-cache", func(t *testing.T) {
		r1, err := a1.Fetch(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if r1.Scope != "a" || r1.ExpiresIn != 120 || r1.AccessToken == "tok-1" {
			t.Fatalf("response = %+v", r1)
		}
	})
}

func TestLoadPKCS12(t *testing.T) {
	pki, err := testpki.New("Buypass-ish")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := pki.Leaf(testpki.LeafOptions{Org: "910000000", Style: testpki.SEID1})
	if err != nil {
		t.Fatal(err)
	}
	legacyRC2 := func(pw string) ([]byte, error) {
		return pkcs12.LegacyRC2.Encode(leaf.Key, leaf.Cert, leaf.Chain[1:], pw)
	}
	tests := []struct {
		name   string
		encode func(string) ([]byte, error)
		pw     string
		ok     bool
	}{
		{"ok/modern-aes-pbkdf2", leaf.PKCS12, "secret", true},
		{"ok/legacy-3des-sha1", leaf.PKCS12Legacy, "secret", true},
		{"ok/legacy-rc2-40-sha1", legacyRC2, "secret", true},
		{"fail/wrong-password", leaf.PKCS12, "wrong", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := tt.encode("secret")
			if err != nil {
				t.Fatal(err)
			}
			key, chain, err := LoadPKCS12(data, tt.pw)
			if !tt.ok {
				if err == nil {
					t.Fatal("LoadPKCS12 succeeded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkChain(t, key, chain, leaf)
		})
	}
	t.Run("fail/garbage", func(t *testing.T) {
		if _, _, err := LoadPKCS12([]byte("not a p12"), ""); err == nil {
			t.Fatal("LoadPKCS12 accepted garbage")
		}
	})
}

func checkChain(t *testing.T, key crypto.Signer, chain []*x509.Certificate, leaf *testpki.Leaf) {
	t.Helper()
	if !publicKeysEqual(key.Public(), leaf.Key.Public()) {
		t.Fatal("wrong key")
	}
	if len(chain) != len(leaf.Chain) {
		t.Fatalf("chain has %d certificates, want %d", len(chain), len(leaf.Chain))
	}
	for i := range chain {
		if !chain[i].Equal(leaf.Chain[i]) {
			t.Fatalf("chain[%d] = %s, want %s", i, chain[i].Subject, leaf.Chain[i].Subject)
		}
	}
	if _, err := CertificateSigner(key, chain); err != nil {
		t.Fatal(err)
	}
}

func TestLoadPEM(t *testing.T) {
	pki, err := testpki.New("Commfides-ish")
	if err != nil {
		t.Fatal(err)
	}
	rsaLeaf, err := pki.Leaf(testpki.LeafOptions{Org: "910000000"})
	if err != nil {
		t.Fatal(err)
	}
	ecKey, _ := testpki.ECKey(elliptic.P256())
	ecLeaf, err := pki.Leaf(testpki.LeafOptions{Org: "910000000", Key: ecKey})
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, _ := testpki.KeyPEM(rsaLeaf.Key)
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaLeaf.Key.(*rsa.PrivateKey))})
	secDER, _ := x509.MarshalECPrivateKey(ecKey)
	sec1 := append(pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: secDER})...)
	encrypted := pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}})
	rev := slices.Clone(rsaLeaf.Chain)
	slices.Reverse(rev)
	reversed := testpki.CertPEM(rev...)

	tests := []struct {
		name      string
		cert, key []byte
		leaf      *testpki.Leaf
		chainLen  int
		wantErr   string
	}{
		{"ok/pkcs8-chain", testpki.CertPEM(rsaLeaf.Chain...), pkcs8, rsaLeaf, 2, ""},
		{"ok/chain-reversed", reversed, pkcs8, rsaLeaf, 2, ""},
		{"ok/leaf-alone", testpki.CertPEM(rsaLeaf.Cert), pkcs8, rsaLeaf, 1, ""},
		{"ok/pkcs1", testpki.CertPEM(rsaLeaf.Chain...), pkcs1, rsaLeaf, 2, ""},
		{"ok/sec1-with-params", testpki.CertPEM(ecLeaf.Chain...), sec1, ecLeaf, 2, ""},
		{"fail/encrypted-key", testpki.CertPEM(rsaLeaf.Chain...), encrypted, nil, 0, "encrypted"},
		{"fail/key-of-other-cert", testpki.CertPEM(ecLeaf.Chain...), pkcs8, nil, 0, "no certificate matches"},
		{"fail/no-cert", pkcs8, pkcs8, nil, 0, "no CERTIFICATE"},
		{"fail/no-key", testpki.CertPEM(rsaLeaf.Cert), testpki.CertPEM(rsaLeaf.Cert), nil, 0, "no private key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, chain, err := LoadPEM(tt.cert, tt.key)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(chain) != tt.chainLen || !chain[0].Equal(tt.leaf.Cert) {
				t.Fatalf("chain of %d, leaf %s", len(chain), chain[0].Subject)
			}
			if !publicKeysEqual(key.Public(), tt.leaf.Key.Public()) {
				t.Fatal("wrong key")
			}
			if _, ok := key.(*ecdsa.PrivateKey); ok != (tt.leaf == ecLeaf) {
				t.Fatalf("key type %T", key)
			}
		})
	}
}

func TestDecodeToken(t *testing.T) {
	_, signer := rsaKeySigner(t)
	ts := mustSource(t, Config{Issuer: "https://auth.example.no/", ClientID: "c1", Scopes: []string{"a"}, Signer: signer})
	a, err := ts.Assertion(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		token string
		ok    bool
	}{
		{"ok/grant", a, true},
		{"ok/tampered-signature-still-decodes", a[:strings.LastIndex(a, ".")+1] + "AAAA", true},
		{"fail/two-parts", "a.b", false},
		{"fail/not-base64", "!!.!!.!!", false},
		{"fail/not-json", "YWJj.YWJj.YWJj", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, c, err := DecodeToken(tt.token)
			if !tt.ok {
				if err == nil {
					t.Fatal("DecodeToken succeeded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h["kid"] != "key-1" || c["iss"] != "c1" || c["iat"].(json.Number).String() == "" {
				t.Fatalf("header %v claims %v", h, c)
			}
		})
	}
}
