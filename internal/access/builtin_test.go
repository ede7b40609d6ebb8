package access_test

import (
	"strings"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/access"
	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/rules"
	"github.com/portvakt/portvakt/internal/store"
)

// The built-in admin scopes (docs/selfservice.md), as config declares them, decide
// as the spec says: the admin scopes are for everyone and delegable,
// portvakt:admin is for the platform admin org only and never delegated.
func TestBuiltinAdminScopes(t *testing.T) {
	const platform = "666666666"
	b := records.Builtin(issuer, platform, time.Unix(0, 0))
	dels := []store.Delegation{
		delegation("portvakt:clients.write", consumer, vendor, store.DelegationActive),
		delegation(records.AdminScope, platform, vendor, store.DelegationActive),
	}
	recs := rules.Build(b.Scopes, b.Access, dels, nil)
	all := []string{"portvakt:scopes.read", "portvakt:clients.write", records.AdminScope}
	withScopes := func(c *store.Client) { c.Scopes = all }

	tests := []struct {
		name string
		req  access.Request
		desc string // "" = granted
	}{
		{"ok/any org gets an admin scope", access.Request{Client: client(stranger, withScopes), Scopes: []string{"portvakt:scopes.read"}}, ""},
		{"ok/the platform org gets portvakt:admin", access.Request{Client: client(platform, withScopes), Scopes: []string{records.AdminScope}}, ""},
		{"ok/admin scope delegated", access.Request{Client: client(vendor, withScopes), Scopes: []string{"portvakt:clients.write"}, ConsumerOrg: consumer}, ""},
		{"fail/another org asks for portvakt:admin", access.Request{Client: client(consumer, withScopes), Scopes: []string{records.AdminScope}}, "has no access"},
		{"fail/portvakt:admin is not delegable", access.Request{Client: client(vendor, withScopes), Scopes: []string{records.AdminScope}, ConsumerOrg: platform}, "cannot be delegated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := access.Decide(policy, tt.req, recs)
			if tt.desc == "" {
				if err != nil {
					t.Fatalf("Decide: %v", err)
				}
				if g.Lifetime != policy.DefaultLifetime {
					t.Errorf("Lifetime = %v, want the default (no cap)", g.Lifetime)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.desc) {
				t.Fatalf("Decide = %v, want an error containing %q", err, tt.desc)
			}
		})
	}
	if !access.ClientMayList(recs, "portvakt:clients.write", vendor) || access.ClientMayList(recs, records.AdminScope, vendor) {
		t.Error("ClientMayList disagrees with the built-in rules")
	}
}
