package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/portvakt/portvakt/internal/config"
	"github.com/portvakt/portvakt/internal/testserver"
	"github.com/portvakt/portvakt/pkg/client"
)

// A provider deactivates a scope in the config file that a consumer's
// declared client lists. Scopes are never deleted, only deactivated, so the
// server must still start: listing a scope is about access, and the
// deactivated scope is refused at token time while the client's other
// scopes keep working.
func TestDeclaredClientWithDeactivatedScopeStillStarts(t *testing.T) {
	s := testserver.Start(t, testserver.Options{Records: func(r *config.Records) {
		for i := range r.Scopes {
			if r.Scopes[i].Subscope == "write" {
				r.Scopes[i].Inactive = true
			}
		}
	}})
	consumer := s.PKI.ConsumerCert

	t.Run("fail/deactivated-scope/invalid_scope", func(t *testing.T) {
		_, err := s.TokenSource(t, consumer, "demo:write").Fetch(t.Context())
		var oe *client.Error
		if !errors.As(err, &oe) || oe.StatusCode != 400 || oe.Code != "invalid_scope" ||
			!strings.Contains(oe.Description, "demo:write") {
			t.Fatalf("token for a deactivated scope: %v, want 400 invalid_scope naming demo:write", err)
		}
	})
	t.Run("ok/other-scopes-of-the-client", func(t *testing.T) {
		if resp := s.Token(t, consumer, "demo:read", "demo:open"); resp.Scope != "demo:read demo:open" {
			t.Fatalf("scope %q", resp.Scope)
		}
	})
}
