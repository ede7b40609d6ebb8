package resource

import (
	"context"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portvakt/portvakt/internal/testpki"
)

// TestKeySets runs one table against each KeySet: the remote one fetched
// from a JWKS URL and the static one in memory, both under NoLeeway.
func TestKeySets(t *testing.T) {
	rsaKey, ecKey := newRSAKey(t, "rsa-1"), newECKey(t, "ec-1")
	srv := newAuthServer(t, rsaKey, ecKey)
	clk := newClock()
	now := clk.Now()
	static, err := NewStaticKeySet(
		PublicKey{KID: rsaKey.kid, Alg: rsaKey.alg, Key: rsaKey.priv.Public()},
		PublicKey{KID: ecKey.kid, Alg: ecKey.alg, Key: ecKey.priv.Public()},
	)
	if err != nil {
		t.Fatal(err)
	}
	remote, err := NewRemoteKeySet(t.Context(), RemoteKeySetConfig{JWKSURL: srv.URL + "/jwk", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}

	with := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := baseClaims(srv.issuer, now)
		mod(c)
		return c
	}
	// hmacWithPublicKey is the classic confusion: the RSA public key, as
	// published, used as an HMAC secret.
	hmacWithPublicKey := func() string {
		der, err := x509.MarshalPKIXPublicKey(rsaKey.priv.Public())
		if err != nil {
			t.Fatal(err)
		}
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, baseClaims(srv.issuer, now))
		tok.Header["typ"], tok.Header["kid"] = "at+jwt", rsaKey.kid
		s, err := tok.SignedString(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	none := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodNone, baseClaims(srv.issuer, now))
		tok.Header["typ"], tok.Header["kid"] = "at+jwt", rsaKey.kid
		s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ps256 := rsaKey
	ps256.alg = "PS256" // the RSA key, but not the algorithm it is published for
	rs512 := rsaKey
	rs512.alg = "RS512"

	tests := []struct {
		name        string
		token       string
		wantDesc    string // "" = valid
		wantExpired bool
	}{
		{"ok/rs256", mint(t, rsaKey, baseClaims(srv.issuer, now), nil), "", false},
		{"ok/es256", mint(t, ecKey, baseClaims(srv.issuer, now), nil), "", false},
		{"ok/exp-one-second-ahead", mint(t, rsaKey, with(func(c jwt.MapClaims) { c["exp"] = now.Add(time.Second).Unix() }), nil), "", false},
		{"ok/iat-now", mint(t, rsaKey, with(func(c jwt.MapClaims) { c["iat"] = now.Unix() }), nil), "", false},
		{"fail/exp-exactly-now", mint(t, rsaKey, with(func(c jwt.MapClaims) { c["exp"] = now.Unix() }), nil), "token expired", true},
		{"fail/exp-one-second-ago", mint(t, rsaKey, with(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Second).Unix() }), nil), "token expired", true},
		{"fail/iat-one-second-ahead", mint(t, rsaKey, with(func(c jwt.MapClaims) { c["iat"] = now.Add(time.Second).Unix() }), nil), "issued in the future", false},
		{"fail/nbf-one-second-ahead", mint(t, rsaKey, with(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Second).Unix() }), nil), "not valid yet", false},
		{"fail/unknown-kid", mint(t, newRSAKey(t, "stranger"), baseClaims(srv.issuer, now), nil), "unknown signing key", false},
		{"fail/unpublished-key-under-a-published-kid", mint(t, newRSAKey(t, rsaKey.kid), baseClaims(srv.issuer, now), nil), "invalid signature", false},
		{"fail/alg-not-the-keys-ps256", mint(t, ps256, baseClaims(srv.issuer, now), nil), "algorithm does not match", false},
		{"fail/alg-not-the-keys-rs512", mint(t, rs512, baseClaims(srv.issuer, now), nil), "algorithm does not match", false},
		// ES384 cannot be signed with a P-256 key: claim it over an ES256 signature.
		{"fail/alg-not-the-keys-es384", forgeAlg(t, mint(t, ecKey, baseClaims(srv.issuer, now), nil), "ES384"), "algorithm does not match", false},
		{"fail/alg-off-the-list-es512", forgeAlg(t, mint(t, ecKey, baseClaims(srv.issuer, now), nil), "ES512"), "signature algorithm not allowed", false},
		{"fail/alg-off-the-list-eddsa", forgeAlg(t, mint(t, rsaKey, baseClaims(srv.issuer, now), nil), "EdDSA"), "signature algorithm not allowed", false},
		{"fail/alg-none", none(), "signature algorithm not allowed", false},
		{"fail/hs256-public-key-as-secret", hmacWithPublicKey(), "signature algorithm not allowed", false},
		{"fail/typ-jwt", mint(t, rsaKey, baseClaims(srv.issuer, now), map[string]any{"typ": "JWT"}), "typ", false},
		{"fail/typ-missing", mint(t, rsaKey, baseClaims(srv.issuer, now), map[string]any{"typ": nil}), "typ", false},
		{"fail/iss-other", mint(t, rsaKey, with(func(c jwt.MapClaims) { c["iss"] = "https://evil.example/" }), nil), "wrong issuer", false},
		{"fail/iss-without-slash", mint(t, rsaKey, with(func(c jwt.MapClaims) { c["iss"] = strings.TrimSuffix(srv.issuer, "/") }), nil), "wrong issuer", false},
	}
	for _, ks := range []struct {
		name string
		set  KeySet
	}{{"static", static}, {"remote", remote}} {
		v, err := NewVerifier(t.Context(), VerifierConfig{Issuer: srv.issuer, KeySet: ks.set, NoLeeway: true, Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range tests {
			t.Run(ks.name+"/"+tt.name, func(t *testing.T) {
				c, err := v.Verify(t.Context(), tt.token)
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
				if errors.Is(err, ErrTokenExpired) != tt.wantExpired {
					t.Fatalf("errors.Is(err, ErrTokenExpired) = %v, want %v (err %v)", !tt.wantExpired, tt.wantExpired, err)
				}
			})
		}
	}
}

// forgeAlg rewrites a token's header alg, keeping its signature.
func forgeAlg(t *testing.T, token, alg string) string {
	t.Helper()
	h, rest, _ := strings.Cut(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	var hdr map[string]any
	if err := json.Unmarshal(b, &hdr); err != nil {
		t.Fatal(err)
	}
	hdr["alg"] = alg
	if b, err = json.Marshal(hdr); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b) + "." + rest
}

func TestNewStaticKeySet(t *testing.T) {
	rsaKey, ecKey := newRSAKey(t, "rsa-1"), newECKey(t, "ec-1")
	short, err := testpki.RSAKey(1024)
	if err != nil {
		t.Fatal(err)
	}
	p521, err := testpki.ECKey(elliptic.P521())
	if err != nil {
		t.Fatal(err)
	}
	rsaPub, ecPub := rsaKey.priv.Public(), ecKey.priv.Public()
	tests := []struct {
		name    string
		keys    []PublicKey
		wantErr string
	}{
		{"ok/empty", nil, ""},
		{"ok/rsa-and-ec", []PublicKey{{KID: "a", Alg: "RS256", Key: rsaPub}, {KID: "b", Alg: "ES256", Key: ecPub}}, ""},
		{"ok/no-alg", []PublicKey{{KID: "a", Key: rsaPub}}, ""},
		{"fail/no-kid", []PublicKey{{Alg: "RS256", Key: rsaPub}}, "no kid"},
		{"fail/kid-twice", []PublicKey{{KID: "a", Alg: "RS256", Key: rsaPub}, {KID: "a", Alg: "ES256", Key: ecPub}}, "taken"},
		{"fail/alg-none", []PublicKey{{KID: "a", Alg: "none", Key: rsaPub}}, "not allowed"},
		{"fail/alg-hs256", []PublicKey{{KID: "a", Alg: "HS256", Key: rsaPub}}, "not allowed"},
		{"fail/alg-does-not-fit", []PublicKey{{KID: "a", Alg: "ES256", Key: rsaPub}}, "does not fit"},
		{"fail/es384-on-p256", []PublicKey{{KID: "a", Alg: "ES384", Key: ecPub}}, "does not fit"},
		{"fail/rsa-1024", []PublicKey{{KID: "a", Key: short.Public()}}, "fits no allowed algorithm"},
		{"fail/p521", []PublicKey{{KID: "a", Key: p521.Public()}}, "fits no allowed algorithm"},
		{"fail/private-key", []PublicKey{{KID: "a", Alg: "RS256", Key: rsaKey.priv}}, "does not fit"},
		{"fail/hmac-secret", []PublicKey{{KID: "a", Key: []byte("secret")}}, "fits no allowed algorithm"},
		{"fail/every-problem-reported", []PublicKey{{Alg: "RS256", Key: rsaPub}, {KID: "b", Alg: "none", Key: rsaPub}}, "no kid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewStaticKeySet(tt.keys...)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				for _, k := range tt.keys {
					if got, err := s.LookupKey(t.Context(), k.KID); err != nil || got != k {
						t.Fatalf("LookupKey(%q) = %+v, %v", k.KID, got, err)
					}
				}
				if _, err := s.LookupKey(t.Context(), "nope"); !errors.Is(err, ErrKeyNotFound) {
					t.Fatalf("LookupKey(nope): %v, want ErrKeyNotFound", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if tt.name == "fail/every-problem-reported" && !strings.Contains(err.Error(), "not allowed") {
				t.Fatalf("err = %v, want both problems", err)
			}
		})
	}
}

// TestKeyWithoutAlg: a key set that does not name a key's algorithm lets
// any algorithm on the list that fits the key through, and no other.
func TestKeyWithoutAlg(t *testing.T) {
	rsaKey, ecKey := newRSAKey(t, "rsa-1"), newECKey(t, "ec-1")
	clk := newClock()
	const issuer = "https://auth.example.no/"
	set, err := NewStaticKeySet(PublicKey{KID: rsaKey.kid, Key: rsaKey.priv.Public()}, PublicKey{KID: ecKey.kid, Key: ecKey.priv.Public()})
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(t.Context(), VerifierConfig{Issuer: issuer, KeySet: set, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ps512 := rsaKey
	ps512.alg = "PS512"
	tests := []struct {
		name  string
		token string
		ok    bool
	}{
		{"ok/rs256", mint(t, rsaKey, baseClaims(issuer, clk.Now()), nil), true},
		{"ok/ps512", mint(t, ps512, baseClaims(issuer, clk.Now()), nil), true},
		{"ok/es256", mint(t, ecKey, baseClaims(issuer, clk.Now()), nil), true},
		{"fail/es384-claimed-for-p256", forgeAlg(t, mint(t, ecKey, baseClaims(issuer, clk.Now()), nil), "ES384"), false},
		{"fail/es256-claimed-for-rsa", forgeAlg(t, mint(t, rsaKey, baseClaims(issuer, clk.Now()), nil), "ES256"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(t.Context(), tt.token)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// TestLeeway: the zero config keeps the 5 s default; NoLeeway allows none.
func TestLeeway(t *testing.T) {
	k := newRSAKey(t, "k1")
	clk := newClock()
	const issuer = "https://auth.example.no/"
	set, err := NewStaticKeySet(PublicKey{KID: k.kid, Alg: k.alg, Key: k.priv.Public()})
	if err != nil {
		t.Fatal(err)
	}
	expiredBy := func(d time.Duration) string {
		c := baseClaims(issuer, clk.Now())
		c["exp"] = clk.Now().Add(-d).Unix()
		return mint(t, k, c, nil)
	}
	tests := []struct {
		name string
		cfg  VerifierConfig
		tok  string
		ok   bool
	}{
		{"ok/default-expired-4s", VerifierConfig{}, expiredBy(4 * time.Second), true},
		{"ok/default-expired-now", VerifierConfig{}, expiredBy(0), true},
		{"fail/default-expired-5s", VerifierConfig{}, expiredBy(5 * time.Second), false},
		{"ok/leeway-30s-expired-29s", VerifierConfig{Leeway: 30 * time.Second}, expiredBy(29 * time.Second), true},
		{"fail/no-leeway-expired-now", VerifierConfig{NoLeeway: true}, expiredBy(0), false},
		{"fail/no-leeway-expired-1s", VerifierConfig{NoLeeway: true}, expiredBy(time.Second), false},
		{"ok/no-leeway-expires-in-1s", VerifierConfig{NoLeeway: true}, expiredBy(-time.Second), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Issuer, cfg.KeySet, cfg.Now = issuer, set, clk.Now
			v, err := NewVerifier(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.Verify(t.Context(), tt.tok)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if !tt.ok && !errors.Is(err, ErrTokenExpired) {
				t.Fatalf("err = %v, want ErrTokenExpired", err)
			}
		})
	}
}

func TestVerifierKeySetConfig(t *testing.T) {
	k := newRSAKey(t, "k1")
	set, err := NewStaticKeySet(PublicKey{KID: k.kid, Alg: k.alg, Key: k.priv.Public()})
	if err != nil {
		t.Fatal(err)
	}
	const issuer = "https://auth.example.no/"
	tests := []struct {
		name    string
		cfg     VerifierConfig
		wantErr string
	}{
		// No discovery: the issuer need not answer.
		{"ok/key-set", VerifierConfig{Issuer: issuer, KeySet: set}, ""},
		{"ok/key-set-no-leeway", VerifierConfig{Issuer: issuer, KeySet: set, NoLeeway: true}, ""},
		{"fail/key-set-and-jwks-url", VerifierConfig{Issuer: issuer, KeySet: set, JWKSURL: issuer + "jwk"}, "KeySet replaces"},
		{"fail/key-set-and-refresh", VerifierConfig{Issuer: issuer, KeySet: set, RefreshInterval: time.Minute}, "KeySet replaces"},
		{"fail/no-leeway-and-leeway", VerifierConfig{Issuer: issuer, KeySet: set, NoLeeway: true, Leeway: time.Second}, "contradict"},
		{"fail/key-set-no-issuer", VerifierConfig{KeySet: set}, "Issuer"},
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

func TestNewRemoteKeySetConfig(t *testing.T) {
	srv := newAuthServer(t, newRSAKey(t, "k1"))
	tests := []struct {
		name    string
		cfg     RemoteKeySetConfig
		wantErr string
	}{
		{"ok/url", RemoteKeySetConfig{JWKSURL: srv.URL + "/jwk"}, ""},
		{"fail/no-url", RemoteKeySetConfig{}, "JWKSURL"},
		{"fail/relative-url", RemoteKeySetConfig{JWKSURL: "/jwk"}, "JWKSURL"},
		{"fail/negative-refresh", RemoteKeySetConfig{JWKSURL: srv.URL + "/jwk", RefreshInterval: -time.Second}, "negative"},
		{"fail/404", RemoteKeySetConfig{JWKSURL: srv.URL + "/nope"}, "404"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewRemoteKeySet(t.Context(), tt.cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if k, err := s.LookupKey(t.Context(), "k1"); err != nil || k.KID != "k1" || k.Alg != "RS256" {
					t.Fatalf("LookupKey(k1) = %+v, %v", k, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// TestRemoteKeySetCancelledLookup: a caller that gives up gets an error,
// not a key.
func TestRemoteKeySetCancelledLookup(t *testing.T) {
	srv := newAuthServer(t, newRSAKey(t, "k1"))
	s, err := NewRemoteKeySet(t.Context(), RemoteKeySetConfig{JWKSURL: srv.URL + "/jwk"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	srv.gate = make(chan struct{})
	defer close(srv.gate)
	if _, err := s.LookupKey(ctx, "unknown"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("err = %v, want ErrKeyNotFound", err)
	}
}
