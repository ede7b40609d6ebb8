package selfservice_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/portvakt/portvakt/internal/store"
)

// TestScopeChecksReadTheTransaction: the scope rules of clients and
// delegations are checked on the records of the write transaction, not on
// the rules cache. The consumer's access is revoked behind the cache's back
// (straight in the store, as a concurrent writer or another replica would),
// so the cache still grants it; every write that relies on it must still be
// refused, naming the scope, and change nothing.
func TestScopeChecksReadTheTransaction(t *testing.T) {
	eachEngine(t, testScopeChecksReadTheTransaction)
}

func testScopeChecksReadTheTransaction(t *testing.T, eng engine) {
	w := newWorld(t, eng)
	ctx := t.Context()
	var plain, direct store.Client
	w.must(w.consumer, "POST", "/clients", map[string]any{
		"client_name": "plain", "description": "no scopes yet", "scopes": []string{},
	}, http.StatusCreated, &plain)
	w.must(w.consumer, "POST", "/clients", map[string]any{
		"client_name": "direct", "description": "certificate client", "scopes": []string{"acme:api"},
	}, http.StatusCreated, &direct)
	// Loads the cache with the access in it.
	w.certToken(direct.ClientID, consumerOrg, "", "acme:api")

	err := w.db.Update(ctx, func(tx store.Tx) error {
		a, err := tx.GetAccess(ctx, "acme:api", consumerOrg)
		if err != nil {
			return err
		}
		a.State = store.AccessDenied
		return tx.PutAccess(ctx, a)
	})
	if err != nil {
		t.Fatal(err)
	}
	// The cache has not seen the revoke: the token endpoint still grants.
	w.certToken(direct.ClientID, consumerOrg, "", "acme:api")
	before := w.ownerView()

	cases := []struct {
		name         string
		token        string
		method, path string
		body         any
		field        string
	}{
		{"fail/client-create", w.consumer, "POST", "/clients",
			map[string]any{"client_name": "new", "description": "calls ACME", "scopes": []string{"acme:api"}}, "scopes[0]"},
		{"fail/client-update", w.consumer, "PUT", "/clients/" + plain.ClientID,
			map[string]any{"client_name": "plain", "description": "now with ACME", "scopes": []string{"acme:api"}}, "scopes[0]"},
		{"fail/vendor-client-create", w.vendor, "POST", "/clients",
			map[string]any{"client_name": "for consumer", "description": "delegated ACME", "scopes": []string{"acme:api"}}, "scopes[0]"},
		{"fail/delegation-put", w.consumer, "PUT", "/delegations/" + otherOrg + "?scope=acme:api", nil, "scope"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := w.do(tc.token, tc.method, tc.path, tc.body)
			if r.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", r.status, r.body)
			}
			p := problemOf(t, r)
			if len(p.Errors) != 1 || p.Errors[0].Field != tc.field || !strings.Contains(p.Errors[0].Detail, "acme:api") {
				t.Fatalf("errors %+v, want one on %s naming acme:api", p.Errors, tc.field)
			}
		})
	}
	if after := w.ownerView(); after != before {
		t.Errorf("records changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}
