package resource

import (
	"crypto"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/portvakt/portvakt/internal/testpki"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_700_000_000, 0)} }

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

// testKey is a signing key as the server holds it.
type testKey struct {
	kid    string
	alg    string
	priv   crypto.Signer
	jwkAlg string // alg published in the JWKS; "-" for none
}

// authServer serves metadata and a JWKS that tests can change.
type authServer struct {
	*httptest.Server
	issuer  string
	fetches atomic.Int32
	gate    chan struct{}

	mu   sync.Mutex
	keys []testKey
}

func newAuthServer(t *testing.T, keys ...testKey) *authServer {
	t.Helper()
	s := &authServer{keys: keys}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": s.issuer, "jwks_uri": s.issuer + "jwk"})
	})
	mux.HandleFunc("GET /jwk", func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		if s.gate != nil {
			<-s.gate
		}
		s.mu.Lock()
		var set jose.JSONWebKeySet
		for _, k := range s.keys {
			alg := k.jwkAlg
			if alg == "" {
				alg = k.alg
			} else if alg == "-" {
				alg = ""
			}
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: alg, Use: "sig"})
		}
		s.mu.Unlock()
		_ = json.NewEncoder(w).Encode(set)
	})
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	s.issuer = s.URL + "/"
	return s
}

func (s *authServer) setKeys(keys ...testKey) {
	s.mu.Lock()
	s.keys = keys
	s.mu.Unlock()
}

func newRSAKey(t *testing.T, kid string) testKey {
	t.Helper()
	k, err := testpki.RSAKey(2048)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{kid: kid, alg: "RS256", priv: k}
}

func newECKey(t *testing.T, kid string) testKey {
	t.Helper()
	k, err := testpki.ECKey(elliptic.P256())
	if err != nil {
		t.Fatal(err)
	}
	return testKey{kid: kid, alg: "ES256", priv: k}
}

// mint signs claims the way portvakt does: typ at+jwt, kid, k's algorithm.
func mint(t *testing.T, k testKey, claims jwt.MapClaims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(k.alg), claims)
	tok.Header["typ"] = "at+jwt"
	tok.Header["kid"] = k.kid
	for h, v := range header {
		if v == nil {
			delete(tok.Header, h)
		} else {
			tok.Header[h] = v
		}
	}
	s, err := tok.SignedString(k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func baseClaims(issuer string, now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss":        issuer,
		"client_id":  "client-1",
		"client_amr": "virksomhetssertifikat",
		"token_type": "Bearer",
		"scope":      "acme:read acme:write",
		"consumer":   map[string]any{"authority": "iso6523-actorid-upis", "ID": "0192:910000000"},
		"aud":        "unspecified",
		"iat":        now.Unix(),
		"exp":        now.Add(120 * time.Second).Unix(),
		"jti":        "jti-1",
	}
}

func newVerifier(t *testing.T, srv *authServer, clk *clock, mod func(*VerifierConfig)) *Verifier {
	t.Helper()
	cfg := VerifierConfig{Issuer: srv.issuer, Now: clk.Now}
	if mod != nil {
		mod(&cfg)
	}
	v, err := NewVerifier(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVerify(t *testing.T) {
	rsaKey, ecKey := newRSAKey(t, "rsa-1"), newECKey(t, "ec-1")
	psKey := newRSAKey(t, "ps-1")
	psKey.alg = "PS256"
	anyAlg := newRSAKey(t, "any-1")
	anyAlg.jwkAlg = "-"
	srv := newAuthServer(t, rsaKey, ecKey, psKey, anyAlg)
	clk := newClock()
	now := clk.Now()
	other := newRSAKey(t, "rsa-1") // same kid, different key

	hs256 := func() string {
		c := baseClaims(srv.issuer, now)
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
		tok.Header["typ"], tok.Header["kid"] = "at+jwt", "rsa-1"
		// The classic confusion: the RSA public key as an HMAC secret.
		s, _ := tok.SignedString([]byte("rsa-1"))
		return s
	}
	none := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodNone, baseClaims(srv.issuer, now))
		tok.Header["typ"], tok.Header["kid"] = "at+jwt", "rsa-1"
		s, _ := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
		return s
	}
	with := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := baseClaims(srv.issuer, now)
		mod(c)
		return c
	}

	tests := []struct {
		name     string
		token    func() string
		audience string
		wantDesc string // "" = valid
	}{
		{"ok/rs256", func() string { return mint(t, rsaKey, baseClaims(srv.issuer, now), nil) }, "", ""},
		{"ok/es256", func() string { return mint(t, ecKey, baseClaims(srv.issuer, now), nil) }, "", ""},
		{"ok/ps256", func() string { return mint(t, psKey, baseClaims(srv.issuer, now), nil) }, "", ""},
		{"ok/jwk-without-alg-rs512", func() string {
			k := anyAlg
			k.alg = "RS512"
			return mint(t, k, baseClaims(srv.issuer, now), nil)
		}, "", ""},
		{"ok/typ-application-uppercase", func() string {
			return mint(t, rsaKey, baseClaims(srv.issuer, now), map[string]any{"typ": "application/AT+JWT"})
		}, "", ""},
		{"ok/expired-within-leeway", func() string {
			return mint(t, rsaKey, with(func(c jwt.MapClaims) { c["exp"] = now.Add(-4 * time.Second).Unix() }), nil)
		}, "", ""},
		{"ok/aud-string", func() string {
			return mint(t, rsaKey, with(func(c jwt.MapClaims) { c["aud"] = "https://api.example.no/" }), nil)
		}, "https://api.example.no/", ""},
		{"ok/aud-array", func() string {
			return mint(t, rsaKey, with(func(c jwt.MapClaims) { c["aud"] = []string{"https://x.example.no/", "https://api.example.no/"} }), nil)
		}, "https://api.example.no/", ""},
		{"fail/typ-jwt", func() string { return mint(t, rsaKey, baseClaims(srv.issuer, now), map[string]any{"typ": "JWT"}) }, "", "typ"},
		{"fail/typ-missing", func() string { return mint(t, rsaKey, baseClaims(srv.issuer, now), map[string]any{"typ": nil}) }, "", "typ"},
		{"fail/alg-none", none, "", "signature algorithm not allowed"},
		{"fail/alg-hs256", hs256, "", "signature algorithm not allowed"},
		{"fail/alg-not-the-jwk-alg", func() string {
			k := rsaKey
			k.alg = "PS256"
			return mint(t, k, baseClaims(srv.issuer, now), nil)
		}, "", "algorithm does not match"},
		{"fail/kid-missing", func() string { return mint(t, rsaKey, baseClaims(srv.issuer, now), map[string]any{"kid": nil}) }, "", "no kid"},
		{"fail/kid-unknown", func() string { return mint(t, newRSAKey(t, "nope"), baseClaims(srv.issuer, now), nil) }, "", "unknown signing key"},
		{"fail/bad-signature", func() string { return mint(t, other, baseClaims(srv.issuer, now), nil) }, "", "invalid signature"},
		{"fail/wrong-issuer", func() string {
			return mint(t, rsaKey, with(func(c jwt.MapClaims) { c["iss"] = strings.TrimSuffix(srv.issuer, "/") }), nil)
		}, "", "wrong issuer"},
		{"fail/expired-beyond-leeway", func() string {
			return mint(t, rsaKey, with(func(c jwt.MapClaims) { c["exp"] = now.Add(-6 * time.Second).Unix() }), nil)
		}, "", "expired"},
		{"fail/no-exp", func() string { return mint(t, rsaKey, with(func(c jwt.MapClaims) { delete(c, "exp") }), nil) }, "", "required claim"},
		{"fail/nbf-future", func() string {
			return mint(t, rsaKey, with(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Minute).Unix() }), nil)
		}, "", "not valid yet"},
		{"fail/iat-future", func() string {
			return mint(t, rsaKey, with(func(c jwt.MapClaims) { c["iat"] = now.Add(time.Minute).Unix() }), nil)
		}, "", "issued in the future"},
		{"fail/aud-other", func() string {
			return mint(t, rsaKey, with(func(c jwt.MapClaims) { c["aud"] = "https://other.example.no/" }), nil)
		}, "https://api.example.no/", "audience"},
		{"fail/aud-unspecified", func() string { return mint(t, rsaKey, baseClaims(srv.issuer, now), nil) }, "https://api.example.no/", "audience"},
		{"fail/consumer-malformed", func() string {
			return mint(t, rsaKey, with(func(c jwt.MapClaims) { c["consumer"] = map[string]any{"authority": "x", "ID": "0192:910000000"} }), nil)
		}, "", "consumer"},
		{"fail/scope-not-string", func() string {
			return mint(t, rsaKey, with(func(c jwt.MapClaims) { c["scope"] = []string{"a"} }), nil)
		}, "", "scope"},
		{"fail/garbage", func() string { return "not.a.jwt" }, "", "malformed"},
		{"fail/empty", func() string { return "" }, "", "no token"},
	}
	verifiers := map[string]*Verifier{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := verifiers[tt.audience]
			if v == nil {
				v = newVerifier(t, srv, clk, func(c *VerifierConfig) { c.Audience = tt.audience })
				verifiers[tt.audience] = v
			}
			c, err := v.Verify(t.Context(), tt.token())
			if tt.wantDesc == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if c.ClientID != "client-1" || c.ConsumerOrg != "910000000" {
					t.Fatalf("claims = %+v", c)
				}
				return
			}
			var te *TokenError
			if !errors.As(err, &te) || !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("err = %v (%T), want a *TokenError", err, err)
			}
			if !strings.Contains(te.Description, tt.wantDesc) {
				t.Fatalf("description %q, want it to contain %q (err %v)", te.Description, tt.wantDesc, err)
			}
		})
	}
}

func TestClaims(t *testing.T) {
	k := newRSAKey(t, "k1")
	srv := newAuthServer(t, k)
	clk := newClock()
	v := newVerifier(t, srv, clk, nil)
	now := clk.Now()
	c := baseClaims(srv.issuer, now)
	c["consumer"] = map[string]any{"authority": "iso6523-actorid-upis", "ID": "0192:910000001"}
	c["supplier"] = map[string]any{"authority": "iso6523-actorid-upis", "ID": "0192:910000002"}
	c["delegation_source"] = srv.issuer
	c["aud"] = []string{"https://a.example.no/", "https://b.example.no/"}
	c["pid"] = "01010112345"
	got, err := v.Verify(t.Context(), mint(t, k, c, nil))
	if err != nil {
		t.Fatal(err)
	}
	want := Claims{
		Issuer: srv.issuer, ClientID: "client-1", ClientAMR: "virksomhetssertifikat",
		Scope: "acme:read acme:write", Scopes: []string{"acme:read", "acme:write"},
		ConsumerOrg: "910000001", SupplierOrg: "910000002", DelegationSource: srv.issuer,
		Audience: []string{"https://a.example.no/", "https://b.example.no/"}, PID: "01010112345",
		IssuedAt: now, ExpiresAt: now.Add(120 * time.Second), JTI: "jti-1",
	}
	if got.Issuer != want.Issuer || got.ClientID != want.ClientID || got.ClientAMR != want.ClientAMR ||
		got.Scope != want.Scope || !slices.Equal(got.Scopes, want.Scopes) ||
		got.ConsumerOrg != want.ConsumerOrg || got.SupplierOrg != want.SupplierOrg ||
		got.DelegationSource != want.DelegationSource || !slices.Equal(got.Audience, want.Audience) ||
		got.PID != want.PID || !got.IssuedAt.Equal(want.IssuedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) || got.JTI != want.JTI {
		t.Fatalf("claims\n got %+v\nwant %+v", got, want)
	}
	if !got.HasScope("acme:write") || got.HasScope("acme") || !got.Delegated() {
		t.Fatal("HasScope/Delegated")
	}
	if got.Raw["token_type"] != "Bearer" {
		t.Fatalf("Raw = %v", got.Raw)
	}
}

func TestKeyRotation(t *testing.T) {
	k1, k2, k3 := newRSAKey(t, "k1"), newECKey(t, "k2"), newRSAKey(t, "k3")
	srv := newAuthServer(t, k1)
	clk := newClock()
	v := newVerifier(t, srv, clk, nil)
	verify := func(k testKey) error {
		t.Helper()
		_, err := v.Verify(t.Context(), mint(t, k, baseClaims(srv.issuer, clk.Now()), nil))
		return err
	}
	steps := []struct {
		name        string
		before      func()
		key         testKey
		ok          bool
		wantFetches int32
	}{
		{"ok/initial-key", nil, k1, true, 1},
		{"ok/unknown-kid-refreshes", func() { srv.setKeys(k1, k2) }, k2, true, 2},
		{"ok/old-key-still-cached", nil, k1, true, 2},
		{"fail/unknown-kid-rate-limited", func() { srv.setKeys(k1, k2, k3) }, k3, false, 2},
		{"ok/after-min-interval", func() { clk.Advance(10 * time.Second) }, k3, true, 3},
		{"fail/junk-kid-rate-limited", func() { clk.Advance(time.Second) }, newRSAKey(t, "junk"), false, 3},
		{"ok/retired-key-gone-after-periodic-refresh", func() { srv.setKeys(k3); clk.Advance(5 * time.Minute) }, k3, true, 4},
		{"fail/retired-key", func() { clk.Advance(time.Second) }, k1, false, 5},
		{"fail/retired-key-again-rate-limited", func() { clk.Advance(time.Second) }, k1, false, 5},
	}
	for _, s := range steps {
		if s.before != nil {
			s.before()
		}
		err := verify(s.key)
		if (err == nil) != s.ok || srv.fetches.Load() != s.wantFetches {
			t.Fatalf("%s: err %v, %d fetches; want ok=%v, %d fetches", s.name, err, srv.fetches.Load(), s.ok, s.wantFetches)
		}
	}
}

func TestRefreshSingleflight(t *testing.T) {
	k1, k2 := newRSAKey(t, "k1"), newRSAKey(t, "k2")
	srv := newAuthServer(t, k1)
	clk := newClock()
	v := newVerifier(t, srv, clk, nil)
	srv.setKeys(k1, k2)
	srv.gate = make(chan struct{})
	token := mint(t, k2, baseClaims(srv.issuer, clk.Now()), nil)

	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { _, errs[i] = v.Verify(t.Context(), token) })
	}
	deadline := time.Now().Add(5 * time.Second)
	for srv.fetches.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	close(srv.gate)
	wg.Wait()
	if got := srv.fetches.Load(); got != 2 {
		t.Fatalf("%d fetches, want 2 (start-up and one shared refresh)", got)
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
	}
}

func TestNewVerifierConfig(t *testing.T) {
	k := newRSAKey(t, "k1")
	srv := newAuthServer(t, k)
	tests := []struct {
		name    string
		cfg     VerifierConfig
		wantErr string
	}{
		{"ok/discovery", VerifierConfig{Issuer: srv.issuer}, ""},
		{"ok/jwks-url", VerifierConfig{Issuer: "https://auth.example.no/", JWKSURL: srv.URL + "/jwk"}, ""},
		{"fail/no-issuer", VerifierConfig{}, "Issuer"},
		{"fail/issuer-mismatch", VerifierConfig{Issuer: srv.URL}, "metadata issuer"},
		{"fail/jwks-404", VerifierConfig{Issuer: srv.issuer, JWKSURL: srv.URL + "/nope"}, "404"},
		{"fail/negative-leeway", VerifierConfig{Issuer: srv.issuer, Leeway: -1}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewVerifier(t.Context(), tt.cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseJWKSSkipsUnusableKeys(t *testing.T) {
	rsaKey, _ := testpki.RSAKey(2048)
	ecKey, _ := testpki.ECKey(elliptic.P256())
	good, _ := json.Marshal(jose.JSONWebKey{Key: rsaKey.Public(), KeyID: "good", Use: "sig"})
	private, _ := json.Marshal(jose.JSONWebKey{Key: ecKey, KeyID: "private"})
	enc, _ := json.Marshal(jose.JSONWebKey{Key: ecKey.Public(), KeyID: "enc", Use: "enc"})
	sym, _ := json.Marshal(jose.JSONWebKey{Key: []byte("secret"), KeyID: "sym"})
	body := `{"keys":[` + string(good) + `,` + string(private) + `,` + string(enc) + `,` + string(sym) +
		`,{"kty":"unknown","kid":"weird"},{"kty":"RSA"}]}`
	keys, err := parseJWKS([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(keys)); !slices.Equal(got, []string{"good"}) {
		t.Fatalf("kids = %v, want [good]", got)
	}
	if _, ok := keys["good"].key.(*rsa.PublicKey); !ok {
		t.Fatalf("key %T", keys["good"].key)
	}
}
