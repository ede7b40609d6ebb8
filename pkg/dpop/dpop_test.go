package dpop

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

func TestProofRoundTrip(t *testing.T) {
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	v, err := NewVerifier(VerifierConfig{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ec384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p256, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	for name, priv := range map[string]any{"ok/es384": ec384, "ok/rs256": rsaKey} {
		t.Run(name, func(t *testing.T) {
			k, err := NewKey(priv)
			if err != nil {
				t.Fatal(err)
			}
			proof, err := k.Proof("GET", "https://api.example/x?y=1", "tok", "", clk.Now())
			if err != nil {
				t.Fatal(err)
			}
			p, err := v.Verify(proof, Request{Method: "GET", URL: "https://api.example/x", AccessToken: "tok"})
			if err != nil {
				t.Fatal(err)
			}
			if p.JKT != k.Thumbprint() || p.JTI == "" || !p.IssuedAt.Equal(clk.Now()) || !p.Until.Equal(clk.Now().Add(70*time.Second)) {
				t.Fatalf("proof %+v, key %s", p, k.Thumbprint())
			}
		})
	}
	t.Run("fail/key-types", func(t *testing.T) {
		ec521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
		small, _ := rsa.GenerateKey(rand.Reader, 1024)
		for _, k := range []any{ec521, small, "key", nil} {
			if _, err := NewKey(k); err == nil {
				t.Errorf("NewKey(%T) accepted", k)
			}
		}
	})
	t.Run("fail/ath", func(t *testing.T) {
		proof, _ := p256.Proof("GET", "https://api.example/x", "other", "", clk.Now())
		_, err := v.Verify(proof, Request{Method: "GET", URL: "https://api.example/x", AccessToken: "tok"})
		if !errors.Is(err, ErrInvalidProof) || errors.Is(err, ErrUseNonce) || !strings.Contains(err.Error(), "ath") {
			t.Fatalf("%v", err)
		}
	})
}

func TestHTU(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://Auth.Example/token", "https://auth.example/token"},
		{"HTTPS://auth.example:443/token?a=b#c", "https://auth.example/token"},
		{"http://auth.example:80", "http://auth.example/"},
		{"http://127.0.0.1:8080/token", "http://127.0.0.1:8080/token"},
		{"https://[::1]:8443/t", "https://[::1]:8443/t"},
		{"https://[::1]/t", "https://[::1]/t"},
		{"https://auth.example/a%2Fb", "https://auth.example/a%2Fb"},
	} {
		got, err := htu(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ok/htu(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "/token", "token", "https://user@auth.example/token", "https:///token", strings.Repeat("a", 3000)} {
		if got, err := htu(in); err == nil {
			t.Errorf("fail/htu(%q) = %q", in, got)
		}
	}
}

func TestThumbprintRFC7638(t *testing.T) {
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON([]byte(`{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB"}`)); err != nil {
		t.Fatal(err)
	}
	if got, err := Thumbprint(k.Key); err != nil || got != "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs" {
		t.Fatalf("%q %v", got, err)
	}
	// RFC 9449 section 7.1's example token hash.
	if got := AccessTokenHash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"); got != "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo" {
		t.Fatalf("ath %q", got)
	}
}

func TestNonces(t *testing.T) {
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	n, err := NewNonces([]byte(strings.Repeat("s", 32)), time.Minute, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	first := n.Current()
	if !n.Valid(first) || n.Current() != first {
		t.Fatal("ok/current: not valid, or not stable within its window")
	}
	clk.t = clk.t.Add(time.Minute)
	if n.Current() == first || !n.Valid(first) {
		t.Fatal("ok/previous-window: the nonce did not turn, or the previous one is refused")
	}
	clk.t = clk.t.Add(time.Minute)
	if n.Valid(first) {
		t.Fatal("fail/two-windows-old: accepted")
	}
	other, _ := NewNonces([]byte(strings.Repeat("o", 32)), time.Minute, clk.Now)
	if n.Valid(other.Current()) {
		t.Fatal("fail/other-secret: accepted")
	}
	replica, _ := NewNonces([]byte(strings.Repeat("s", 32)), time.Minute, clk.Now)
	if !n.Valid(replica.Current()) {
		t.Fatal("ok/replica-with-the-same-secret: refused")
	}
	cur := n.Current()
	for _, bad := range []string{"", "x", cur + "A", cur[:31] + "=", strings.ToUpper(cur)} {
		if bad != cur && n.Valid(bad) {
			t.Errorf("fail/garbage %q accepted", bad)
		}
	}
	if _, err := NewNonces([]byte("short"), 0, nil); err == nil {
		t.Fatal("fail/short-secret: accepted")
	}
}

func TestVerifierConfig(t *testing.T) {
	for _, cfg := range []VerifierConfig{{Algorithms: []string{"HS256"}}, {Algorithms: []string{"none"}}, {MaxAge: -1}} {
		if _, err := NewVerifier(cfg); err == nil {
			t.Errorf("fail/config %+v accepted", cfg)
		}
	}
	v, err := NewVerifier(VerifierConfig{Algorithms: []string{"ES256"}})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := NewKey(must(rsa.GenerateKey(rand.Reader, 2048)))
	proof, _ := k.Proof("POST", "https://a.example/token", "", "", time.Now())
	if _, err := v.Verify(proof, Request{Method: "POST", URL: "https://a.example/token"}); err == nil || !strings.Contains(err.Error(), "alg is not allowed") {
		t.Fatalf("fail/narrowed-algorithms: %v", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
