package conformance

import (
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/store"
)

// bindingCases: a scope's token_binding, a client's require_dpop and the
// binding thumbprints of an issued token round-trip on every engine.
func bindingCases() []testCase {
	return []testCase{
		{"ok/binding/scope-token-binding", testScopeTokenBinding},
		{"ok/binding/client-require-dpop", testClientRequireDPoP},
		{"ok/binding/issued-token-thumbprints", testIssuedThumbprints},
	}
}

// Every binding value is kept, through create, list and update (back to
// none too).
func testScopeTokenBinding(t *testing.T, s store.Store) {
	ctx := t.Context()
	var want []store.Scope
	for _, b := range store.TokenBindings {
		sc := scopeRec("bound-" + b)
		sc.TokenBinding = b
		want = append(want, sc)
	}
	update(t, s, func(tx store.Tx) error {
		for _, sc := range want {
			if err := tx.CreateScope(ctx, sc); err != nil {
				return err
			}
		}
		return nil
	})
	for _, sc := range want {
		got, err := s.GetScope(ctx, sc.Name)
		noErr(t, err, "GetScope "+sc.Name)
		equal(t, got, sc, "GetScope "+sc.Name)
	}
	list, err := s.ListScopes(ctx)
	noErr(t, err, "ListScopes")
	for i, sc := range list {
		if sc.TokenBinding != want[indexOfScope(want, sc.Name)].TokenBinding {
			t.Fatalf("ListScopes[%d] %s: token_binding %q", i, sc.Name, sc.TokenBinding)
		}
	}
	page, err := s.PageScopes(ctx, store.ScopeFilter{OwnerOrgno: "910000001"}, store.Page{Limit: 10})
	noErr(t, err, "PageScopes")
	if len(page) != len(want) {
		t.Fatalf("PageScopes: %d scopes, want %d", len(page), len(want))
	}
	for _, sc := range page {
		equal(t, sc, want[indexOfScope(want, sc.Name)], "PageScopes "+sc.Name)
	}

	x := want[1] // dpop
	x.TokenBinding, x.LastUpdated = store.TokenBindingNone, t0.Add(time.Hour)
	update(t, s, func(tx store.Tx) error { return tx.UpdateScope(ctx, x) })
	got, err := s.GetScope(ctx, x.Name)
	noErr(t, err, "GetScope after update")
	equal(t, got, x, "GetScope after the binding was lifted")
}

func indexOfScope(scopes []store.Scope, name string) int {
	for i, sc := range scopes {
		if sc.Name == name {
			return i
		}
	}
	return -1
}

// require_dpop is kept, set or not, through create, list, page and update.
func testClientRequireDPoP(t *testing.T, s store.Store) {
	ctx := t.Context()
	bound, plain := clientRec("c-bound"), clientRec("c-plain")
	bound.RequireDPoP = true
	update(t, s, func(tx store.Tx) error {
		if err := tx.CreateClient(ctx, bound); err != nil {
			return err
		}
		return tx.CreateClient(ctx, plain)
	})
	got, err := s.GetClient(ctx, bound.ClientID)
	noErr(t, err, "GetClient")
	equal(t, got, bound, "GetClient with require_dpop")
	list, err := s.ListClients(ctx)
	noErr(t, err, "ListClients")
	equal(t, list, []store.Client{bound, plain}, "ListClients")
	page, err := s.PageClients(ctx, store.ClientFilter{}, store.Page{Limit: 10})
	noErr(t, err, "PageClients")
	equal(t, page, []store.Client{bound, plain}, "PageClients")

	bound.RequireDPoP, plain.RequireDPoP = false, true
	update(t, s, func(tx store.Tx) error {
		if err := tx.UpdateClient(ctx, bound); err != nil {
			return err
		}
		return tx.UpdateClient(ctx, plain)
	})
	list, err = s.ListClients(ctx)
	noErr(t, err, "ListClients after update")
	equal(t, list, []store.Client{bound, plain}, "ListClients after require_dpop was swapped")
}

// A token's binding thumbprints are written with it (each, both or
// neither) and read back by the audit list, on both the single and the
// group-committed insert.
func testIssuedThumbprints(t *testing.T, s store.Store) {
	ctx := t.Context()
	jkt := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
	x5t := "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"
	bearer := tokenRec("c1", "bearer", t0)
	dpop := tokenRec("c1", "dpop", t0.Add(time.Second))
	dpop.CnfJKT = jkt
	mtls := tokenRec("c1", "mtls", t0.Add(2*time.Second))
	mtls.CnfX5T = x5t
	both := tokenRec("c1", "both", t0.Add(3*time.Second))
	both.CnfJKT, both.CnfX5T = jkt, x5t
	noErr(t, s.InsertIssuedToken(ctx, bearer), "InsertIssuedToken bearer")
	noErr(t, s.InsertIssuedToken(ctx, dpop), "InsertIssuedToken dpop")
	waits := []func() error{s.StartInsertIssuedToken(ctx, mtls), s.StartInsertIssuedToken(ctx, both)}
	for _, w := range waits {
		noErr(t, w(), "StartInsertIssuedToken")
	}
	got, err := s.ListIssuedTokens(ctx, store.IssuedTokenFilter{})
	noErr(t, err, "ListIssuedTokens")
	equal(t, got, []store.IssuedToken{both, mtls, dpop, bearer}, "ListIssuedTokens with bindings")
	got, err = s.ListIssuedTokens(ctx, store.IssuedTokenFilter{ScopePrefixes: []string{"acme"}, Limit: 1})
	noErr(t, err, "ListIssuedTokens by prefix")
	equal(t, got, []store.IssuedToken{both}, "ListIssuedTokens by prefix (the provider's walk)")
}
