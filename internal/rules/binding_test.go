package rules_test

import (
	"testing"

	"github.com/portvakt/portvakt/internal/rules"
	"github.com/portvakt/portvakt/internal/store"
)

// The snapshot the token endpoint decides on carries a scope's
// token_binding and a client's require_dpop, from a full load and from a
// catch-up after a change.
func TestSnapshotCarriesBinding(t *testing.T) {
	s := openStore(t, newDB(t))
	seed(t, s)
	edit := func(binding string, requireDPoP bool) {
		t.Helper()
		err := s.Update(t.Context(), func(tx store.Tx) error {
			sc, err := tx.GetScope(t.Context(), "acme:a")
			if err != nil {
				return err
			}
			sc.TokenBinding = binding
			if err := tx.UpdateScope(t.Context(), sc); err != nil {
				return err
			}
			cl, err := tx.GetClient(t.Context(), clientID)
			if err != nil {
				return err
			}
			cl.RequireDPoP = requireDPoP
			return tx.UpdateClient(t.Context(), cl)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	want := func(t *testing.T, c *rules.Cache, binding string, requireDPoP bool) {
		t.Helper()
		snap, err := c.Snapshot(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		sc, _ := snap.Scope("acme:a")
		cl, _ := snap.Client(clientID)
		if sc.TokenBinding != binding || cl.RequireDPoP != requireDPoP {
			t.Fatalf("snapshot: token_binding %q, require_dpop %v; want %q, %v", sc.TokenBinding, cl.RequireDPoP, binding, requireDPoP)
		}
	}
	edit(store.TokenBindingDPoP, true)
	c := rules.NewCache(s, rules.CacheConfig{})
	t.Run("ok/binding/full-load", func(t *testing.T) { want(t, c, "dpop", true) })
	t.Run("ok/binding/catch-up", func(t *testing.T) {
		edit(store.TokenBindingAny, false)
		c.Invalidate()
		want(t, c, "any", false)
	})
}
