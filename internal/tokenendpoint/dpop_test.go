package tokenendpoint_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/portvakt/portvakt/internal/entcert"
	"github.com/portvakt/portvakt/internal/exchange"
	"github.com/portvakt/portvakt/internal/server"
	"github.com/portvakt/portvakt/internal/store/sqlstore"
	"github.com/portvakt/portvakt/internal/testpki"
	"github.com/portvakt/portvakt/internal/tokenendpoint"
	"github.com/portvakt/portvakt/pkg/dpop"
)

// dpopEnv is the server under test with DPoP configured as a deployment
// would: the proof verifier on the env's clock, nonces when asked for.
type dpopEnv struct {
	*env
	nonces *dpop.Nonces
}

func newDPoPEnv(t testing.TB, engine string, requireNonce bool, opts ...envOption) *dpopEnv {
	t.Helper()
	pki, ids, keys := fixtures(t)
	c := &clock{t: time.Now().Truncate(time.Second)}
	sc := sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: filepath.Join(t.TempDir(), "portvakt.db")}
	if engine != "sqlite" {
		sc = storeConfig(t.(*testing.T), engine)
	}
	recs := records(t, ids, c.Now())
	for _, o := range opts {
		o(&recs)
	}
	db, st, cache := openStore(t, sc, recs)
	certs, err := entcert.NewVerifier(entcert.Policy{Roots: []*x509.Certificate{pki.Root.Cert}, Intermediates: []*x509.Certificate{pki.Intermediate.Cert}, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	var nonces *dpop.Nonces
	if requireNonce {
		if nonces, err = dpop.NewNonces([]byte(strings.Repeat("s", 32)), time.Minute, c.Now); err != nil {
			t.Fatal(err)
		}
	}
	proofs, err := dpop.NewVerifier(dpop.VerifierConfig{Leeway: 10 * time.Second, Nonces: nonces, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	ex := exchange.New(exchange.Config{Issuer: issuer, Now: c.Now, DPoP: proofs}, cache, certs, db, keys)
	h, err := server.Public{
		Issuer: issuer, Token: tokenendpoint.New(ex, tokenendpoint.Config{DPoPNonces: nonces}), JWKS: keys.JWKS,
		Log: slog.New(slog.DiscardHandler),
	}.Handler()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, clock: c, db: db, store: st, cache: cache, keys: keys, handler: h, pki: pki, ids: ids}
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	return &dpopEnv{env: e, nonces: nonces}
}

// dpopKeys are the proof keys of the tests, made once.
var dpopKeys = sync.OnceValues(func() (map[string]crypto.Signer, error) {
	m := map[string]crypto.Signer{}
	for name, mk := range map[string]func() (crypto.Signer, error){
		"rsa":     func() (crypto.Signer, error) { return testpki.RSAKey(2048) },
		"rsa1024": func() (crypto.Signer, error) { return testpki.RSAKey(1024) },
		"ec256":   func() (crypto.Signer, error) { return testpki.ECKey(elliptic.P256()) },
		"ec384":   func() (crypto.Signer, error) { return testpki.ECKey(elliptic.P384()) },
		"ec521":   func() (crypto.Signer, error) { return testpki.ECKey(elliptic.P521()) },
		"other":   func() (crypto.Signer, error) { return testpki.ECKey(elliptic.P256()) },
	} {
		k, err := mk()
		if err != nil {
			return nil, err
		}
		m[name] = k
	}
	return m, nil
})

func proofKey(t testing.TB, name string) crypto.Signer {
	t.Helper()
	m, err := dpopKeys()
	if err != nil {
		t.Fatal(err)
	}
	return m[name]
}

func algOf(k crypto.Signer) string {
	if ec, ok := k.(*ecdsa.PrivateKey); ok {
		return map[int]string{256: "ES256", 384: "ES384", 521: "ES512"}[ec.Curve.Params().BitSize]
	}
	return "RS256"
}

func publicJWK(t testing.TB, k crypto.Signer) map[string]any {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKey{Key: k.Public()})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// proofSpec shapes one proof: by default a valid proof for the token
// endpoint signed by key.
type proofSpec struct {
	key    string         // the jwk's key (default ec256)
	signer string         // the key that signs, when not key's
	alg    string         // the header alg, when not the key's
	hdr    map[string]any // header overrides; nil values delete
	claims map[string]any // claim overrides; nil values delete
	hmac   bool           // sign with HMAC (alg HS256)
}

func (e *dpopEnv) proof(s proofSpec) string {
	e.t.Helper()
	if s.key == "" {
		s.key = "ec256"
	}
	key := proofKey(e.t, s.key)
	sig := key
	if s.signer != "" {
		sig = proofKey(e.t, s.signer)
	}
	alg := algOf(sig)
	if s.alg != "" {
		alg = s.alg
	}
	c := jwt.MapClaims{"jti": uuid.NewString(), "htm": "POST", "htu": issuer + "token", "iat": e.clock.Now().Unix()}
	for k, v := range s.claims {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(alg), c)
	tok.Header["typ"] = "dpop+jwt"
	tok.Header["jwk"] = publicJWK(e.t, key)
	for k, v := range s.hdr {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	var signKey any = sig
	switch {
	case alg == "none":
		tok.Method = jwt.SigningMethodNone
		signKey = jwt.UnsafeAllowNoneSignatureType
	case s.hmac:
		signKey = []byte(strings.Repeat("k", 32))
	}
	out, err := tok.SignedString(signKey)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// grantDPoP posts a token request with an assertion for id and the given
// DPoP headers.
func (e *dpopEnv) grantDPoP(id *identity, proofs ...string) response {
	e.t.Helper()
	return e.grantScope(id, "demo:read", proofs...)
}

// grantScope is grantDPoP for the given scope claim.
func (e *dpopEnv) grantScope(id *identity, scope string, proofs ...string) response {
	e.t.Helper()
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {e.sign(id, e.claims(id, scope), nil)}}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, e.srv.URL+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, p := range proofs {
		req.Header.Add("DPoP", p)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	_ = json.Unmarshal(b, &r.body)
	return r
}

// wantBound checks a DPoP answer: token_type DPoP in the response and the
// token, and cnf.jkt the thumbprint of key.
func (e *dpopEnv) wantBound(t *testing.T, r response, key string) {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.raw)
	}
	if r.body["token_type"] != "DPoP" {
		t.Fatalf("response token_type %v, want DPoP", r.body["token_type"])
	}
	_, cl := e.verify(t, r.body["access_token"].(string))
	jkt, err := dpop.Thumbprint(proofKey(t, key).Public())
	if err != nil {
		t.Fatal(err)
	}
	cnf, _ := cl["cnf"].(map[string]any)
	if cl["token_type"] != "DPoP" || cnf == nil || cnf["jkt"] != jkt || len(cnf) != 1 {
		t.Fatalf("token_type %v, cnf %v; want DPoP and jkt %s", cl["token_type"], cl["cnf"], jkt)
	}
}

// The RFC 7638 thumbprint of a key from RFC 7638 section 3.1 itself, so
// cnf.jkt is the one any implementation computes.
func TestThumbprintRFC7638Example(t *testing.T) {
	var k jose.JSONWebKey
	err := k.UnmarshalJSON([]byte(`{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB"}`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := dpop.Thumbprint(k.Key)
	if err != nil || got != "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs" {
		t.Fatalf("thumbprint %q (%v)", got, err)
	}
}

func TestDPoPAccepted(t *testing.T) {
	e := newDPoPEnv(t, "sqlite", false)
	id := e.ids["kid-ec256"]
	cases := []struct {
		name string
		spec proofSpec
	}{
		{"ok/dpop/ec-p256", proofSpec{key: "ec256"}},
		{"ok/dpop/ec-p384", proofSpec{key: "ec384"}},
		{"ok/dpop/rsa", proofSpec{key: "rsa"}},
		{"ok/dpop/rsa-ps256", proofSpec{key: "rsa", alg: "PS256"}},
		{"ok/dpop/htu-query-and-fragment-ignored", proofSpec{claims: map[string]any{"htu": issuer + "token?x=1#f"}}},
		{"ok/dpop/htu-normalised", proofSpec{claims: map[string]any{"htu": "HTTPS://Auth.Test.Example:443/token"}}},
		{"ok/dpop/iat-backdated-within-window", proofSpec{claims: map[string]any{"iat": time.Now().Add(-65 * time.Second).Unix()}}},
		{"ok/dpop/iat-ahead-within-skew", proofSpec{claims: map[string]any{"iat": time.Now().Add(9 * time.Second).Unix()}}},
		{"ok/dpop/nonce-ignored-when-not-required", proofSpec{claims: map[string]any{"nonce": "whatever"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if iat, ok := tc.spec.claims["iat"].(int64); ok {
				// Relative to the env's clock, not the test's.
				tc.spec.claims["iat"] = e.clock.Now().Unix() + iat - time.Now().Unix()
			}
			key := tc.spec.key
			if key == "" {
				key = "ec256"
			}
			e.wantBound(t, e.grantDPoP(id, e.proof(tc.spec)), key)
		})
	}
	t.Run("ok/bearer-without-dpop", func(t *testing.T) {
		r := e.grantDPoP(id)
		if r.status != 200 || r.body["token_type"] != "Bearer" {
			t.Fatalf("%d %s", r.status, r.raw)
		}
		_, cl := e.verify(t, r.body["access_token"].(string))
		if _, ok := cl["cnf"]; ok || cl["token_type"] != "Bearer" {
			t.Fatalf("a bearer token has cnf %v, token_type %v", cl["cnf"], cl["token_type"])
		}
		if r.header.Get("DPoP-Nonce") != "" {
			t.Fatal("DPoP-Nonce sent without nonces configured")
		}
	})
}

func TestDPoPRefused(t *testing.T) {
	e := newDPoPEnv(t, "sqlite", false)
	id := e.ids["kid-rsa"]
	now := e.clock.Now()
	cases := []struct {
		name string
		spec proofSpec
		desc string
	}{
		{"fail/dpop/wrong-htm", proofSpec{claims: map[string]any{"htm": "GET"}}, "htm must be the request's method POST"},
		{"fail/dpop/htm-lower-case", proofSpec{claims: map[string]any{"htm": "post"}}, "htm"},
		{"fail/dpop/missing-htm", proofSpec{claims: map[string]any{"htm": nil}}, "htm"},
		{"fail/dpop/wrong-htu", proofSpec{claims: map[string]any{"htu": "https://other.example/token"}}, "htu must be the request's URL " + issuer + "token"},
		{"fail/dpop/htu-other-path", proofSpec{claims: map[string]any{"htu": issuer + "jwk"}}, "htu"},
		{"fail/dpop/htu-http", proofSpec{claims: map[string]any{"htu": "http://auth.test.example/token"}}, "htu"},
		{"fail/dpop/missing-htu", proofSpec{claims: map[string]any{"htu": nil}}, "htu"},
		{"fail/dpop/old-iat", proofSpec{claims: map[string]any{"iat": now.Add(-71 * time.Second).Unix()}}, "too old"},
		{"fail/dpop/future-iat", proofSpec{claims: map[string]any{"iat": now.Add(11 * time.Second).Unix()}}, "in the future"},
		{"fail/dpop/missing-iat", proofSpec{claims: map[string]any{"iat": nil}}, "iat"},
		{"fail/dpop/iat-string", proofSpec{claims: map[string]any{"iat": "now"}}, "iat"},
		{"fail/dpop/missing-jti", proofSpec{claims: map[string]any{"jti": nil}}, "jti"},
		{"fail/dpop/jti-too-long", proofSpec{claims: map[string]any{"jti": strings.Repeat("j", 256)}}, "jti"},
		{"fail/dpop/jwk-with-private-part", proofSpec{key: "ec256", hdr: map[string]any{"jwk": privateJWK(t, "ec256")}}, "private key part"},
		{"fail/dpop/rsa-jwk-with-private-part", proofSpec{key: "rsa", hdr: map[string]any{"jwk": privateJWK(t, "rsa")}}, "private key part"},
		{"fail/dpop/symmetric-jwk", proofSpec{hdr: map[string]any{"jwk": map[string]any{"kty": "oct", "k": "c2VjcmV0"}}}, "private key part"},
		{"fail/dpop/signed-by-another-key", proofSpec{key: "ec256", signer: "other"}, "signature does not verify"},
		{"fail/dpop/missing-typ", proofSpec{hdr: map[string]any{"typ": nil}}, "typ header must be"},
		{"fail/dpop/typ-jwt", proofSpec{hdr: map[string]any{"typ": "JWT"}}, "typ"},
		{"fail/dpop/alg-none", proofSpec{alg: "none"}, "alg is not allowed"},
		{"fail/dpop/hs256", proofSpec{alg: "HS256", hmac: true}, "alg is not allowed"},
		{"fail/dpop/es512", proofSpec{key: "ec521"}, "alg is not allowed"},
		{"fail/dpop/alg-does-not-fit-key", proofSpec{key: "ec256", signer: "ec384"}, "does not fit"},
		{"fail/dpop/rsa-1024", proofSpec{key: "rsa1024"}, "shorter than 2048"},
		{"fail/dpop/missing-jwk", proofSpec{hdr: map[string]any{"jwk": nil}}, "jwk header"},
		{"fail/dpop/jwk-string", proofSpec{hdr: map[string]any{"jwk": "key"}}, "jwk header"},
		{"fail/dpop/crit", proofSpec{hdr: map[string]any{"crit": []string{"exp"}}}, "crit"},
		{"fail/dpop/rsa-over-8192-bits", proofSpec{key: "rsa", hdr: map[string]any{"jwk": map[string]any{"kty": "RSA", "e": "AQAB",
			"n": base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 1100))}}}, "at most 8192 bits"},
		{"fail/dpop/rsa-even-exponent", proofSpec{key: "rsa", hdr: map[string]any{"jwk": map[string]any{"kty": "RSA", "e": "Ag",
			"n": base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 256))}}}, "odd exponent"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.grantDPoP(id, e.proof(tc.spec))
			wantDPoPError(t, r, "invalid_dpop_proof", tc.desc)
		})
	}
	raw := []struct {
		name   string
		proofs []string
		desc   string
	}{
		{"fail/dpop/two-headers", []string{e.proof(proofSpec{}), e.proof(proofSpec{})}, "2 DPoP headers"},
		{"fail/dpop/empty-header", []string{""}, "empty"},
		{"fail/dpop/too-large", []string{strings.Repeat("a", dpop.MaxProofBytes+1)}, "larger than"},
		{"fail/dpop/not-a-jwt", []string{"not a jwt"}, "compact serialization"},
		{"fail/dpop/two-parts", []string{"a.b"}, "compact serialization"},
		{"fail/dpop/padding", []string{e.proof(proofSpec{}) + "="}, "compact serialization"},
	}
	for _, tc := range raw {
		t.Run(tc.name, func(t *testing.T) {
			r := e.grantDPoP(id, tc.proofs...)
			wantDPoPError(t, r, "invalid_dpop_proof", tc.desc)
		})
	}
	if n := e.issued(); n != 0 {
		t.Fatalf("refused requests left %d issued-token rows", n)
	}
}

// wantDPoPError checks a refused token request.
func wantDPoPError(t *testing.T, r response, code, desc string) {
	t.Helper()
	// The description ends with the id of the request's log line.
	if r.status != 400 || r.code() != code || !strings.Contains(r.desc(), desc) || !strings.Contains(r.desc(), "_id: ") {
		t.Fatalf("got %d %s %q, want 400 %s containing %q", r.status, r.code(), r.desc(), code, desc)
	}
}

func privateJWK(t testing.TB, name string) map[string]any {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKey{Key: proofKey(t, name)})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["d"]; !ok {
		t.Fatalf("private JWK without d: %v", m)
	}
	return m
}

// A proof is single use, on both engines: the same proof with a fresh
// assertion is refused and leaves no issued-token row; the refused
// request's assertion stays usable.
func TestDPoPReusedJTI(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			e := newDPoPEnv(t, engine, false)
			id := e.ids["kid-ec256"]
			p := e.proof(proofSpec{})
			e.wantBound(t, e.grantDPoP(id, p), "ec256")
			wantDPoPError(t, e.grantDPoP(id, p), "invalid_dpop_proof", "used before")
			if n := e.issued(); n != 1 {
				t.Fatalf("%d issued-token rows, want 1", n)
			}
			// The same jti under another key is another proof.
			jti := uuid.NewString()
			e.wantBound(t, e.grantDPoP(id, e.proof(proofSpec{key: "ec256", claims: map[string]any{"jti": jti}})), "ec256")
			e.wantBound(t, e.grantDPoP(id, e.proof(proofSpec{key: "other", claims: map[string]any{"jti": jti}})), "other")
			wantDPoPError(t, e.grantDPoP(id, e.proof(proofSpec{key: "other", claims: map[string]any{"jti": jti}})), "invalid_dpop_proof", "used before")
		})
	}
}

// Concurrent requests with one proof get one token between them.
func TestDPoPConcurrentReplayIssuesOneToken(t *testing.T) {
	e := newDPoPEnv(t, "sqlite", false)
	id := e.ids["kid-ec256"]
	p := e.proof(proofSpec{})
	const n = 8
	codes := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r := e.grantDPoP(id, p)
			codes[i] = r.code()
			if r.status == 200 {
				codes[i] = "ok"
			}
		})
	}
	wg.Wait()
	ok := 0
	for _, c := range codes {
		switch c {
		case "ok":
			ok++
		case "invalid_dpop_proof":
		default:
			t.Fatalf("unexpected answer %q", c)
		}
	}
	if ok != 1 || e.issued() != 1 {
		t.Fatalf("%d tokens and %d rows for one proof sent %d times, want 1", ok, e.issued(), n)
	}
}

func TestDPoPNonce(t *testing.T) {
	e := newDPoPEnv(t, "sqlite", true)
	id := e.ids["kid-rsa"]
	t.Run("fail/dpop/nonce-required-and-missing", func(t *testing.T) {
		r := e.grantDPoP(id, e.proof(proofSpec{}))
		wantDPoPError(t, r, "use_dpop_nonce", "requires a nonce")
		if got := r.header.Get("DPoP-Nonce"); got != e.nonces.Current() {
			t.Fatalf("DPoP-Nonce %q, want the current nonce %q", got, e.nonces.Current())
		}
	})
	t.Run("fail/dpop/wrong-nonce", func(t *testing.T) {
		r := e.grantDPoP(id, e.proof(proofSpec{claims: map[string]any{"nonce": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}))
		wantDPoPError(t, r, "use_dpop_nonce", "stale or not this server's")
		if r.header.Get("DPoP-Nonce") == "" {
			t.Fatal("no DPoP-Nonce on use_dpop_nonce")
		}
	})
	t.Run("fail/dpop/nonce-of-another-secret", func(t *testing.T) {
		other, err := dpop.NewNonces([]byte(strings.Repeat("o", 32)), time.Minute, e.clock.Now)
		if err != nil {
			t.Fatal(err)
		}
		r := e.grantDPoP(id, e.proof(proofSpec{claims: map[string]any{"nonce": other.Current()}}))
		wantDPoPError(t, r, "use_dpop_nonce", "stale")
	})
	t.Run("ok/dpop/with-nonce", func(t *testing.T) {
		r := e.grantDPoP(id, e.proof(proofSpec{key: "rsa", claims: map[string]any{"nonce": e.nonces.Current()}}))
		e.wantBound(t, r, "rsa")
		if r.header.Get("DPoP-Nonce") != e.nonces.Current() {
			t.Fatal("no DPoP-Nonce on a DPoP answer")
		}
	})
	t.Run("ok/dpop/nonce-of-previous-window", func(t *testing.T) {
		n := e.nonces.Current()
		e.clock.Set(e.clock.Now().Add(time.Minute))
		e.wantBound(t, e.grantDPoP(id, e.proof(proofSpec{claims: map[string]any{"nonce": n}})), "ec256")
	})
	t.Run("fail/dpop/stale-nonce", func(t *testing.T) {
		n := e.nonces.Current()
		e.clock.Set(e.clock.Now().Add(2 * time.Minute))
		wantDPoPError(t, e.grantDPoP(id, e.proof(proofSpec{claims: map[string]any{"nonce": n}})), "use_dpop_nonce", "stale")
	})
	t.Run("ok/bearer-unaffected-by-nonces", func(t *testing.T) {
		r := e.grantDPoP(id)
		if r.status != 200 || r.body["token_type"] != "Bearer" || r.header.Get("DPoP-Nonce") != "" {
			t.Fatalf("%d %s, DPoP-Nonce %q", r.status, r.raw, r.header.Get("DPoP-Nonce"))
		}
	})
}

// The proof's checks come after the form's and the rate limit's, and
// before the client's: a bad proof with an unknown client is a bad proof.
func TestDPoPCheckedBeforeTheClient(t *testing.T) {
	e := newDPoPEnv(t, "sqlite", false)
	id := &identity{clientID: "no-such-client", key: proofKey(t, "rsa"), kid: "k"}
	r := e.grantDPoP(id, e.proof(proofSpec{claims: map[string]any{"htm": "GET"}}))
	wantDPoPError(t, r, "invalid_dpop_proof", "htm")
	r = e.grantDPoP(id, e.proof(proofSpec{}))
	if r.status != 400 || r.code() != "invalid_grant" {
		t.Fatalf("unknown client with a good proof: %d %s", r.status, r.raw)
	}
}

func TestMetadataListsDPoPAlgorithms(t *testing.T) {
	e := newDPoPEnv(t, "sqlite", false)
	resp, err := e.srv.Client().Get(e.srv.URL + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var md map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&md); err != nil {
		t.Fatal(err)
	}
	algs, _ := md["dpop_signing_alg_values_supported"].([]any)
	want := map[string]bool{"RS256": true, "PS256": true, "ES256": true, "ES384": true}
	for _, a := range algs {
		delete(want, a.(string))
		if a == "none" || strings.HasPrefix(a.(string), "HS") {
			t.Fatalf("metadata lists %v", a)
		}
	}
	if len(want) > 0 {
		t.Fatalf("dpop_signing_alg_values_supported %v lacks %v", algs, want)
	}
}
