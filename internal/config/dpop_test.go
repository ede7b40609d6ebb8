package config

import (
	"strings"
	"testing"
	"time"
)

func TestDPoPConfig(t *testing.T) {
	t.Run("ok/defaults", func(t *testing.T) {
		c, err := Parse(nil, "", true)
		if err != nil {
			t.Fatal(err)
		}
		d := c.DPoP
		if d.RequireNonce || d.NonceSecret != "" || d.NonceLifetime != 5*time.Minute || d.ProofMaxAge != time.Minute {
			t.Fatalf("defaults %+v", d)
		}
	})
	t.Run("ok/file-and-environment", func(t *testing.T) {
		t.Setenv("PORTVAKT_DPOP_NONCE_SECRET", strings.Repeat("e", 40))
		c, err := Parse([]byte("dpop:\n  require_nonce: true\n  nonce_lifetime: 2m\n  proof_max_age: 30s\n"), "", true)
		if err != nil {
			t.Fatal(err)
		}
		d := c.DPoP
		if !d.RequireNonce || d.NonceSecret != strings.Repeat("e", 40) || d.NonceLifetime != 2*time.Minute || d.ProofMaxAge != 30*time.Second {
			t.Fatalf("parsed %+v", d)
		}
	})
	for _, tc := range []struct {
		name, yaml, key string
	}{
		{"fail/short-secret", "dpop:\n  nonce_secret: short\n", "dpop.nonce_secret"},
		{"fail/nonce-lifetime", "dpop:\n  nonce_lifetime: 2h\n", "dpop.nonce_lifetime"},
		{"fail/proof-max-age", "dpop:\n  proof_max_age: 10m\n", "dpop.proof_max_age"},
	} {
		t.Run(tc.name, func(t *testing.T) { wantProblem(t, tc.yaml, tc.key) })
	}
}

// wantProblem checks that the (dev) config yaml parses and that Validate
// names key among its problems.
func wantProblem(t *testing.T, yaml, key string) {
	t.Helper()
	c, err := Parse([]byte(yaml), "", true)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), key) {
		t.Fatalf("Validate() = %v, want a problem with %s", err, key)
	}
}
