package signer

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/portvakt/portvakt/pkg/resource"
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

// TestSignRoundTrip: what Sign and SignType make verifies against the set's
// own KeySet with the resource verifier, the header carries the active
// key's kid and alg and the typ asked for, and the claims come back whole.
func TestSignRoundTrip(t *testing.T) {
	const issuer = "https://auth.example.no/"
	now := time.Unix(1_700_000_000, 0)
	for _, alg := range Algorithms() {
		t.Run("ok/"+alg, func(t *testing.T) {
			active, err := Generate(alg)
			if err != nil {
				t.Fatal(err)
			}
			next, err := Generate("ES256")
			if err != nil {
				t.Fatal(err)
			}
			s, err := NewSet(active, next)
			if err != nil {
				t.Fatal(err)
			}
			claims := map[string]any{
				"iss": issuer, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "client_id": "c1",
				"consumer": map[string]string{"authority": "iso6523-actorid-upis", "ID": "0192:910000001"},
			}
			tok, err := s.Sign(claims)
			if err != nil {
				t.Fatal(err)
			}
			v, err := resource.NewVerifier(t.Context(), resource.VerifierConfig{
				Issuer: issuer, KeySet: s.KeySet(), NoLeeway: true, Now: func() time.Time { return now },
			})
			if err != nil {
				t.Fatal(err)
			}
			c, err := v.Verify(t.Context(), tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if c.ClientID != "c1" || c.ConsumerOrg != "910000001" || !c.ExpiresAt.Equal(now.Add(time.Minute)) {
				t.Fatalf("claims %+v", c)
			}
			hdr := header(t, tok)
			if hdr["alg"] != alg || hdr["kid"] != active.ID || hdr["typ"] != "at+jwt" || len(hdr) != 3 {
				t.Fatalf("header %v", hdr)
			}
			set, err := s.SignType("secevent+jwt", map[string]any{"iss": issuer, "jti": "e1"})
			if err != nil {
				t.Fatal(err)
			}
			if hdr := header(t, set); hdr["alg"] != alg || hdr["kid"] != active.ID || hdr["typ"] != "secevent+jwt" {
				t.Fatalf("SignType header %v", hdr)
			}
			// The access-token verifier refuses the other type.
			if _, err := v.Verify(t.Context(), set); err == nil {
				t.Fatal("a secevent+jwt verified as an access token")
			}
		})
	}
}

func TestSignTypeFails(t *testing.T) {
	k, err := Generate("ES256")
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSet(k)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		typ    string
		claims any
	}{
		{"fail/no-typ", "", map[string]any{"iss": "x"}},
		{"fail/claims-not-json", "at+jwt", map[string]any{"f": func() {}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tok, err := s.SignType(tt.typ, tt.claims); err == nil {
				t.Fatalf("signed %q", tok)
			}
		})
	}
}

// TestKeySetIsWhatIsPublished: the in-process key set holds exactly the
// JWKS's keys, each pinned to its algorithm; a key given twice is one key.
func TestKeySetIsWhatIsPublished(t *testing.T) {
	active, err := Generate("RS256")
	if err != nil {
		t.Fatal(err)
	}
	next, err := Generate("ES256")
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := Generate("RS256")
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSet(active, next, active)
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(s.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 2 {
		t.Fatalf("JWKS has %d keys, want 2: %s", len(set.Keys), s.JWKS())
	}
	for _, jwk := range set.Keys {
		k, err := s.KeySet().LookupKey(t.Context(), jwk.KeyID)
		if err != nil || k.Alg != jwk.Algorithm {
			t.Fatalf("ok/%s: %+v, %v", jwk.KeyID, k, err)
		}
	}
	if _, err := s.KeySet().LookupKey(t.Context(), stranger.ID); !errors.Is(err, resource.ErrKeyNotFound) {
		t.Fatalf("fail/unpublished: %v", err)
	}
}

func TestNewKeyOnlySignableAlgorithms(t *testing.T) {
	rsaKey, err := Generate("RS256")
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := Generate("ES256")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		key  *Key
		alg  string
		ok   bool
	}{
		{"ok/rs256", rsaKey, "RS256", true},
		{"ok/es256", ecKey, "ES256", true},
		{"fail/ps256-accepted-not-signed", rsaKey, "PS256", false},
		{"fail/rs512", rsaKey, "RS512", false},
		{"fail/hs256", rsaKey, "HS256", false},
		{"fail/none", rsaKey, "none", false},
		{"fail/es256-rsa-key", rsaKey, "ES256", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewKey(tt.key.Private, tt.alg)
			if (err == nil) != tt.ok {
				t.Fatalf("NewKey(%s): %v", tt.alg, err)
			}
		})
	}
	a := Algorithms()
	a[0] = "HS256"
	if Algorithms()[0] != "RS256" {
		t.Fatal("a caller changed the signer's list")
	}
}

func header(t *testing.T, tok string) map[string]any {
	t.Helper()
	h, _, _ := strings.Cut(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
