package signer

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

func TestSignVerifiesWithPublishedJWKS(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256"} {
		t.Run("ok/"+alg, func(t *testing.T) {
			k, err := LoadOrGenerate(filepath.Join(t.TempDir(), "k.pem"), alg)
			if err != nil {
				t.Fatal(err)
			}
			s, err := NewSet(k)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := s.Sign(map[string]any{"iss": "https://x/", "exp": 4102444800})
			if err != nil {
				t.Fatal(err)
			}
			var set jose.JSONWebKeySet
			if err := json.Unmarshal(s.JWKS(), &set); err != nil {
				t.Fatal(err)
			}
			if len(set.Keys) != 1 || set.Keys[0].Use != "sig" || set.Keys[0].Algorithm != alg || set.Keys[0].KeyID != k.ID {
				t.Fatalf("jwks = %s", s.JWKS())
			}
			parsed, err := jwt.Parse(tok, func(tk *jwt.Token) (any, error) {
				if tk.Header["typ"] != "at+jwt" {
					t.Fatalf("typ = %v", tk.Header["typ"])
				}
				return set.Key(tk.Header["kid"].(string))[0].Key, nil
			}, jwt.WithValidMethods([]string{alg}))
			if err != nil || !parsed.Valid {
				t.Fatalf("verify: %v", err)
			}
		})
	}
}

func TestLoadOrGenerateReloadsSameKey(t *testing.T) {
	p := filepath.Join(t.TempDir(), "k.pem")
	a, err := LoadOrGenerate(p, "RS256")
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrGenerate(p, "RS256")
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != b.ID {
		t.Fatalf("kid changed across loads: %s != %s", a.ID, b.ID)
	}
}

func TestNewKeyRejectsMismatch(t *testing.T) {
	k, err := Generate("ES256")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewKey(k.Private, "RS256"); err == nil {
		t.Fatal("EC key accepted for RS256")
	}
}
