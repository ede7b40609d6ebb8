package console_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/portvakt/portvakt/internal/manage"
	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/store"
)

// TestConsumerIsolation: through the consumer and vendor pages, a person
// of org A (the provider) neither sees nor changes org B's (the consumer's)
// clients, keys, delegations or access requests: every URL naming one is
// "not found", the lists show none of them, and the store holds them as
// they were.
func TestConsumerIsolation(t *testing.T) {
	e := newEnv(t, options{dev: true})
	ctx := t.Context()
	b := all(consumer)
	e.assignPrefix("bee", vendor)
	if _, err := e.core.CreateScope(ctx, all(vendor), manage.ScopeInput{Prefix: "bee", Subscope: "api", Description: "The vendor's API"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.core.RequestAccess(ctx, b, "bee:api", manage.AccessInput{Reason: "B-reason-4711"}); err != nil {
		t.Fatal(err)
	}
	cl, err := e.core.CreateClient(ctx, b, manage.ClientInput{ClientName: "B-client-4711", Description: "B's client", Scopes: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := json.Marshal(jose.JSONWebKey{Key: key.Public(), KeyID: "B-key-4711", Use: "sig"})
	if err != nil {
		t.Fatal(err)
	}
	if cl, err = e.core.ReplaceKeys(ctx, b, cl.ClientID, []json.RawMessage{jwk}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.core.GiveDelegation(ctx, b, records.ClientsRead, vendor); err != nil {
		t.Fatal(err)
	}

	a := e.devLogin(provider)
	id := cl.ClientID
	cases := []struct {
		name, method, path string
		form               url.Values
	}{
		{"fail/get-client", "GET", "clients/" + id, nil},
		{"fail/update-client", "POST", "clients/" + id, url.Values{"client_name": {"mine"}, "description": {"mine"}, "access_token_lifetime": {"0"}}},
		{"fail/deactivate-client", "POST", "clients/" + id + "/deactivate", url.Values{}},
		{"fail/add-key", "POST", "clients/" + id + "/keys", url.Values{"jwk": {string(jwk)}}},
		{"fail/remove-key", "POST", "clients/" + id + "/keys/remove", url.Values{"kid": {"B-key-4711"}}},
		{"fail/revoke-delegation", "POST", "delegations/revoke", url.Values{"scope": {records.ClientsRead}, "supplier_org": {vendor}}},
		{"fail/withdraw-request", "POST", "requests/withdraw", url.Values{"scope": {"bee:api"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var code int
			var page string
			if tc.method == "GET" {
				code, page = a.get(tc.path)
			} else {
				code, page = a.post(tc.path, tc.form)
			}
			wantCode(t, tc.method+" "+tc.path, code, http.StatusNotFound)
			if strings.Contains(page, "4711") {
				t.Fatalf("the page shows org B's record:\n%s", page)
			}
		})
	}
	t.Run("ok/lists-show-nothing-of-b", func(t *testing.T) {
		for _, path := range []string{"catalogue", "requests", "clients?inactive=true", "delegations?inactive=true", "received?inactive=true"} {
			code, page := a.get(path)
			wantCode(t, path, code, http.StatusOK)
			if strings.Contains(page, "4711") || strings.Contains(page, id) || strings.Contains(page, `data-customer="`+consumer) {
				t.Fatalf("%s shows org B's records:\n%s", path, page)
			}
		}
	})
	t.Run("ok/b-unchanged", func(t *testing.T) {
		got, err := e.db.GetClient(ctx, id)
		if err != nil || !got.Active || got.ClientName != "B-client-4711" || len(got.Keys) != 1 || !got.LastUpdated.Equal(cl.LastUpdated) {
			t.Fatalf("B's client %+v (%v)", got, err)
		}
		if d, err := e.db.GetDelegation(ctx, records.ClientsRead, consumer, vendor); err != nil || d.State != store.DelegationActive {
			t.Fatalf("B's delegation %+v (%v)", d, err)
		}
		if ac, err := e.db.GetAccess(ctx, "bee:api", consumer); err != nil || ac.State != store.AccessRequested {
			t.Fatalf("B's request %+v (%v)", ac, err)
		}
	})
	// The vendor B delegated to sees B as its customer: the same page,
	// another org.
	t.Run("ok/the-vendor-sees-b", func(t *testing.T) {
		code, page := e.devLogin(vendor).get("received")
		wantCode(t, "received", code, http.StatusOK)
		if !strings.Contains(page, `data-customer="`+consumer+`"`) || !strings.Contains(page, records.ClientsRead) {
			t.Fatalf("the vendor's received page lacks B's delegation:\n%s", page)
		}
	})
}
