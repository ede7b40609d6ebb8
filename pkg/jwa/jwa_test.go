package jwa

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"slices"
	"testing"
)

func TestFits(t *testing.T) {
	rsa2048, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ec := func(c elliptic.Curve) *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	p256, p384, p521 := ec(elliptic.P256()), ec(elliptic.P384()), ec(elliptic.P521())
	tests := []struct {
		name string
		alg  string
		key  crypto.PublicKey
		want bool
	}{
		{"ok/rs256-rsa", "RS256", &rsa2048.PublicKey, true},
		{"ok/ps512-rsa", "PS512", &rsa2048.PublicKey, true},
		{"ok/es256-p256", "ES256", &p256.PublicKey, true},
		{"ok/es384-p384", "ES384", &p384.PublicKey, true},
		{"fail/none", "none", &rsa2048.PublicKey, false},
		{"fail/hs256-rsa", "HS256", &rsa2048.PublicKey, false},
		{"fail/rs256-lowercase", "rs256", &rsa2048.PublicKey, false},
		{"fail/rs256-rsa-1024", "RS256", &rsa1024.PublicKey, false},
		{"fail/es256-rsa", "ES256", &rsa2048.PublicKey, false},
		{"fail/rs256-p256", "RS256", &p256.PublicKey, false},
		{"fail/es384-p256", "ES384", &p256.PublicKey, false},
		{"fail/es256-p384", "ES256", &p384.PublicKey, false},
		{"fail/es512-p521", "ES512", &p521.PublicKey, false},
		{"fail/private-key", "RS256", rsa2048, false},
		{"fail/nil-key", "RS256", nil, false},
		{"fail/empty-rsa-key", "RS256", &rsa.PublicKey{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Fits(tt.alg, tt.key); got != tt.want {
				t.Fatalf("Fits(%q, %T) = %v, want %v", tt.alg, tt.key, got, tt.want)
			}
			if tt.want && !Allowed(tt.alg) {
				t.Fatalf("%q fits a key but is not Allowed", tt.alg)
			}
		})
	}
}

func TestAllowed(t *testing.T) {
	for _, alg := range Algorithms() {
		if !Allowed(alg) {
			t.Errorf("ok/%s: not Allowed", alg)
		}
	}
	for _, alg := range []string{"", "none", "None", "HS256", "HS384", "HS512", "ES512", "EdDSA", "RS256 "} {
		if Allowed(alg) {
			t.Errorf("fail/%q: Allowed", alg)
		}
	}
}

// TestCopies: what a caller does to a returned slice does not change the
// list for anyone else.
func TestCopies(t *testing.T) {
	want := Algorithms()
	a := Algorithms()
	a[0] = "HS256"
	_ = append(a[:1], "none")
	rsa2048, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	f := ForKey(&rsa2048.PublicKey)
	f[0] = "HS256"
	if got := Algorithms(); !slices.Equal(got, want) {
		t.Fatalf("Algorithms() = %v after a caller wrote to its copy, want %v", got, want)
	}
	if Allowed("HS256") || Allowed("none") || Fits("HS256", &rsa2048.PublicKey) {
		t.Fatal("a caller widened the list")
	}
}
