package selfservice_test

import (
	"bytes"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/selfservice"
	"github.com/portvakt/portvakt/internal/store"
)

// world is a small populated platform: the provider owns acme:api with an
// access row for the consumer; the consumer owns a client with a key and a
// delegation of acme:api to the vendor.
type world struct {
	*env
	admin, provider, consumer, vendor, other string
	clientID                                 string
}

func newWorld(t *testing.T, eng engine) *world {
	t.Helper()
	e := newEnv(t, eng)
	w := &world{env: e, admin: e.adminToken()}
	e.must(w.admin, "PUT", "/prefixes/acme", map[string]string{"owner_org": providerOrg}, http.StatusOK, nil)
	e.must(w.admin, "PUT", "/prefixes/other", map[string]string{"owner_org": otherOrg}, http.StatusOK, nil)
	_, w.provider = e.onboard(w.admin, providerOrg)
	_, w.consumer = e.onboard(w.admin, consumerOrg)
	_, w.vendor = e.onboard(w.admin, vendorOrg)
	_, w.other = e.onboard(w.admin, otherOrg)
	e.must(w.provider, "POST", "/scopes", map[string]any{
		"prefix": "acme", "subscope": "api", "description": "The ACME API", "delegation_source": e.issuer,
	}, http.StatusCreated, nil)
	e.must(w.provider, "PUT", "/scopes/access/"+consumerOrg+"?scope=acme:api", nil, http.StatusOK, nil)
	var cl store.Client
	e.must(w.consumer, "POST", "/clients", map[string]any{
		"client_name": "acme", "description": "calls ACME", "scopes": []string{"acme:api"},
	}, http.StatusCreated, &cl)
	w.clientID = cl.ClientID
	_, jwk := ecJWK(t, "k1")
	e.must(w.consumer, "POST", "/clients/"+cl.ClientID+"/jwks", map[string]any{"keys": []any{jwk}}, http.StatusOK, nil)
	e.must(w.consumer, "PUT", "/delegations/"+vendorOrg+"?scope=acme:api", nil, http.StatusOK, nil)
	return w
}

// ownerView reads every record of the world as its owners see them.
func (w *world) ownerView() string {
	w.t.Helper()
	var b bytes.Buffer
	for _, r := range []struct{ tok, path string }{
		{w.provider, "/scopes?scope=acme:api"},
		{w.provider, "/scopes?inactive=true"},
		{w.provider, "/scopes/access?scope=acme:api&inactive=true"},
		{w.consumer, "/clients/" + w.clientID},
		{w.consumer, "/clients/" + w.clientID + "/jwks"},
		{w.consumer, "/clients?inactive=true"},
		{w.consumer, "/delegations?inactive=true"},
		{w.vendor, "/delegations?inactive=true"},
		{w.consumer, "/scopes/access/all?inactive=true"},
		{w.consumer, "/members"},
	} {
		rep := w.must(r.tok, "GET", r.path, nil, http.StatusOK, nil)
		b.WriteString(r.path + " " + string(rep.body) + "\n")
	}
	evs, err := w.db.ListAudit(w.t.Context(), store.AuditFilter{Limit: 1000})
	if err != nil {
		w.t.Fatal(err)
	}
	b.WriteString("audit events: " + strconv.Itoa(len(evs)) + "\n")
	return b.String()
}

// TestTenantIsolation: for every endpoint and record kind, another org gets
// 404 (exactly as for a record that does not exist) and nothing changes.
func TestTenantIsolation(t *testing.T) { eachEngine(t, testTenantIsolation) }

func testTenantIsolation(t *testing.T, eng engine) {
	w := newWorld(t, eng)
	const member, missingMember = "kari@idp.example", "nobody@idp.example"
	w.must(w.consumer, "PUT", "/members/"+member, map[string]any{"roles": []string{records.MembersWrite}}, http.StatusOK, nil)
	before := w.ownerView()
	_, jwk := ecJWK(t, "intruder")
	const missingClient = "00000000-0000-4000-8000-00000000dead"
	scopeBody := map[string]any{"description": "taken over", "delegation_source": w.issuer}
	clientBody := map[string]any{"client_name": "x", "description": "taken over", "scopes": []string{}}
	cases := []struct {
		name         string
		method, path string
		missing      string // the same request for a record that does not exist
		body         any
	}{
		{"scope/get", "GET", "/scopes?scope=acme:api", "/scopes?scope=other:none", nil},
		{"scope/put", "PUT", "/scopes?scope=acme:api", "/scopes?scope=other:none", scopeBody},
		{"scope/delete", "DELETE", "/scopes?scope=acme:api", "/scopes?scope=other:none", nil},
		{"access/list", "GET", "/scopes/access?scope=acme:api", "/scopes/access?scope=other:none", nil},
		{"access/grant", "PUT", "/scopes/access/" + otherOrg + "?scope=acme:api", "/scopes/access/" + otherOrg + "?scope=other:none", nil},
		{"access/revoke", "DELETE", "/scopes/access/" + consumerOrg + "?scope=acme:api", "/scopes/access/" + consumerOrg + "?scope=other:none", nil},
		{"client/get", "GET", "/clients/" + w.clientID, "/clients/" + missingClient, nil},
		{"client/put", "PUT", "/clients/" + w.clientID, "/clients/" + missingClient, clientBody},
		{"client/delete", "DELETE", "/clients/" + w.clientID, "/clients/" + missingClient, nil},
		{"jwks/get", "GET", "/clients/" + w.clientID + "/jwks", "/clients/" + missingClient + "/jwks", nil},
		{"jwks/post", "POST", "/clients/" + w.clientID + "/jwks", "/clients/" + missingClient + "/jwks", map[string]any{"keys": []any{jwk}}},
		{"jwks/delete", "DELETE", "/clients/" + w.clientID + "/jwks", "/clients/" + missingClient + "/jwks", nil},
		{"delegation/revoke", "DELETE", "/delegations/" + vendorOrg + "?scope=acme:api", "/delegations/" + vendorOrg + "?scope=other:none", nil},
		{"member/get", "GET", "/members/" + member, "/members/" + missingMember, nil},
		{"member/delete", "DELETE", "/members/" + member, "/members/" + missingMember, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := w.do(w.other, tc.method, tc.path, tc.body)
			miss := w.do(w.other, tc.method, tc.missing, tc.body)
			if got.status != http.StatusNotFound || miss.status != http.StatusNotFound {
				t.Fatalf("status %d (missing: %d), want 404: %s", got.status, miss.status, got.body)
			}
			gp, mp := problemOf(t, got), problemOf(t, miss)
			// Only the name of the record asked for differs.
			norm := func(p selfservice.Problem) selfservice.Problem {
				for _, s := range []string{"acme:api", "other:none", w.clientID, missingClient, member, missingMember} {
					p.Detail = strings.ReplaceAll(p.Detail, s, "X")
				}
				return p
			}
			if g, m := norm(gp), norm(mp); g.Type != m.Type || g.Title != m.Title || g.Detail != m.Detail {
				t.Errorf("another org's record answers\n %+v\nbut a missing one\n %+v", g, m)
			}
		})
	}
	// Lists show nothing of the others' records.
	for _, path := range []string{"/scopes?inactive=true", "/clients?inactive=true", "/delegations?inactive=true", "/scopes/access/all?inactive=true", "/members"} {
		rep := w.must(w.other, "GET", path, nil, http.StatusOK, nil)
		for _, s := range []string{"acme:api", w.clientID, providerOrg, consumerOrg, vendorOrg, member} {
			if bytes.Contains(rep.body, []byte(s)) {
				t.Errorf("GET %s as another org shows %s: %s", path, s, rep.body)
			}
		}
	}
	var page struct{ Events []store.AuditEvent }
	w.must(w.other, "GET", "/audit", nil, http.StatusOK, &page)
	for _, ev := range page.Events {
		if !slices.Contains(ev.Orgs, otherOrg) {
			t.Errorf("another org sees audit event %s %s of %v", ev.Action, ev.Target, ev.Orgs)
		}
	}
	// Creating under someone else's prefix is 403, as docs/selfservice.md says.
	if rep := w.do(w.other, "POST", "/scopes", map[string]any{"prefix": "acme", "subscope": "mine", "description": "x"}); rep.status != http.StatusForbidden {
		t.Errorf("scope under another org's prefix: %d, want 403", rep.status)
	}
	// A vendor with a delegation does not see the consumer's records.
	if rep := w.do(w.vendor, "GET", "/clients/"+w.clientID, nil); rep.status != http.StatusNotFound {
		t.Errorf("vendor reads consumer's client without acting for it: %d", rep.status)
	}
	if after := w.ownerView(); after != before {
		t.Errorf("records changed:\nbefore\n%s\nafter\n%s", before, after)
	}
	// The platform admin is no exception outside prefixes.
	if rep := w.do(w.certToken(platformClient, platformOrg, "", records.AdminScopes...), "GET", "/clients/"+w.clientID, nil); rep.status != http.StatusNotFound {
		t.Errorf("platform admin reads consumer's client: %d", rep.status)
	}
}
