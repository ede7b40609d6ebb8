package rules_test

import (
	"testing"

	"github.com/portvakt/portvakt/internal/rules"
	"github.com/portvakt/portvakt/internal/store"
)

// Only APPROVED grants: a request (REQUESTED), a withdrawn request, a
// denial and a state this binary does not know are all no access, whether
// the snapshot is loaded whole or brought up to date from the change log.
func TestOnlyApprovedGrants(t *testing.T) {
	for _, state := range []string{store.AccessRequested, store.AccessWithdrawn, store.AccessDenied, "SUSPENDED", ""} {
		name := state
		if name == "" {
			name = "empty"
		}
		t.Run("fail/"+name, func(t *testing.T) {
			s := openStore(t, newDB(t))
			seed(t, s)
			c := rules.NewCache(s, rules.CacheConfig{})
			setAccess(t, s, consumer, store.AccessApproved)
			snap, err := c.Snapshot(t.Context())
			if err != nil || !snap.HasAccess("acme:a", consumer) {
				t.Fatalf("APPROVED: HasAccess false (err %v): the test grants nothing", err)
			}

			setAccess(t, s, consumer, state)
			c.Invalidate()
			if snap, err := c.Snapshot(t.Context()); err != nil || snap.HasAccess("acme:a", consumer) {
				t.Fatalf("%q from the change log: access granted (err %v)", state, err)
			}
			fresh, err := rules.NewCache(s, rules.CacheConfig{}).Snapshot(t.Context())
			if err != nil || fresh.HasAccess("acme:a", consumer) {
				t.Fatalf("%q in a full load: access granted (err %v)", state, err)
			}
		})
	}
}
