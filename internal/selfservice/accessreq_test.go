package selfservice_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/selfservice"
	"github.com/portvakt/portvakt/internal/store"
	"github.com/portvakt/portvakt/pkg/client"
)

// requests is a platform for access requests: the provider owns acme:api
// and acme:billing (public, for those it lets in), acme:secret (private),
// acme:open (accessible for all) and acme:old (deactivated). The consumer,
// the vendor and a third org are onboarded with every delegable admin
// scope; none has asked for anything yet.
type requests struct {
	*env
	admin, provider, consumer, vendor, other string // tokens of each org's admin client
	consumerAdmin, vendorAdmin               string // client ids
}

func newRequests(t *testing.T, eng engine) *requests {
	t.Helper()
	e := newEnv(t, eng)
	w := &requests{env: e, admin: e.adminToken()}
	e.must(w.admin, "PUT", "/prefixes/acme", map[string]string{"owner_org": providerOrg}, http.StatusOK, nil)
	_, w.provider = e.onboard(w.admin, providerOrg)
	w.consumerAdmin, w.consumer = e.onboard(w.admin, consumerOrg)
	w.vendorAdmin, w.vendor = e.onboard(w.admin, vendorOrg)
	_, w.other = e.onboard(w.admin, otherOrg)
	for _, sc := range []map[string]any{
		{"subscope": "api", "description": "The ACME API"},
		{"subscope": "billing", "description": "ACME billing"},
		{"subscope": "secret", "description": "not in the catalogue", "visibility": store.VisibilityPrivate},
		{"subscope": "open", "description": "for everyone", "accessible_for_all": true},
		{"subscope": "old", "description": "retired"},
	} {
		sc["prefix"] = "acme"
		e.must(w.provider, "POST", "/scopes", sc, http.StatusCreated, nil)
	}
	e.must(w.provider, "DELETE", "/scopes?scope=acme:old", nil, http.StatusNoContent, nil)
	return w
}

// ask is POST /scopes/access/requests.
func (w *requests) ask(tok, scope, reason string) reply {
	w.t.Helper()
	return w.do(tok, "POST", "/scopes/access/requests", map[string]string{"scope": scope, "reason": reason})
}

// withdraw is DELETE /scopes/access/requests?scope=.
func (w *requests) withdraw(tok, scope string) reply {
	w.t.Helper()
	return w.do(tok, "DELETE", "/scopes/access/requests?scope="+url.QueryEscape(scope), nil)
}

// rows reads a list of access rows.
func (w *requests) rows(tok, path string) []store.Access {
	w.t.Helper()
	var out []store.Access
	w.must(tok, "GET", path, nil, http.StatusOK, &out)
	return out
}

// row is the consumer org's row for scope as the given list shows it; ok
// is false when the list has none.
func row(rows []store.Access, scope, consumer string) (store.Access, bool) {
	i := slices.IndexFunc(rows, func(a store.Access) bool { return a.Scope == scope && a.ConsumerOrgno == consumer })
	if i < 0 {
		return store.Access{}, false
	}
	return rows[i], true
}

// every lists every row of both sides, in every state.
const everyState = "state=APPROVED,DENIED,REQUESTED,WITHDRAWN"

// wantRow checks the consumer's row for scope, as both the consumer and the
// provider list it.
func (w *requests) wantRow(scope, state, reason string) store.Access {
	w.t.Helper()
	var seen []store.Access
	for _, l := range []struct{ tok, path string }{
		{w.consumer, "/scopes/access/all?" + everyState},
		{w.provider, "/scopes/access?" + everyState},
		{w.provider, "/scopes/access?scope=" + scope + "&" + everyState},
	} {
		a, ok := row(w.rows(l.tok, l.path), scope, consumerOrg)
		if !ok {
			w.t.Fatalf("GET %s: no row for %s", l.path, scope)
		}
		if a.State != state || a.Reason != reason || a.OwnerOrgno != providerOrg {
			w.t.Fatalf("GET %s: row %+v, want %s with reason %q", l.path, a, state, reason)
		}
		seen = append(seen, a)
	}
	if seen[0] != seen[1] || seen[1] != seen[2] {
		w.t.Fatalf("the lists disagree: %+v", seen)
	}
	return seen[0]
}

// TestAccessRequestStory: a consumer finds a scope, asks, is denied, asks
// again, is approved and gets a token; then asks for another scope and
// withdraws. Every transition is an audit event both orgs see.
func TestAccessRequestStory(t *testing.T) { eachEngine(t, testAccessRequestStory) }

func testAccessRequestStory(t *testing.T, eng engine) {
	w := newRequests(t, eng)

	// The consumer finds acme:api in the catalogue; the private and the
	// deactivated scopes are not there.
	var cat []store.Scope
	w.must(w.consumer, "GET", "/scopes/all?q=acme", nil, http.StatusOK, &cat)
	var names []string
	for _, sc := range cat {
		names = append(names, sc.Name)
	}
	if !slices.Contains(names, "acme:api") || slices.Contains(names, "acme:secret") || slices.Contains(names, "acme:old") {
		t.Fatalf("catalogue %v", names)
	}

	// It cannot put the scope on a client before it has access.
	r := w.do(w.consumer, "POST", "/clients", map[string]any{
		"client_name": "acme", "description": "calls ACME", "scopes": []string{"acme:api"},
	})
	wantProblem(t, r, http.StatusBadRequest, "acme:api")

	// It asks, with a reason.
	var asked store.Access
	if r := w.ask(w.consumer, "acme:api", "we invoice through ACME"); r.status != http.StatusCreated {
		t.Fatalf("ask: %d %s", r.status, r.body)
	} else if err := json.Unmarshal(r.body, &asked); err != nil {
		t.Fatal(err)
	}
	if asked.Scope != "acme:api" || asked.ConsumerOrgno != consumerOrg || asked.OwnerOrgno != providerOrg ||
		asked.State != store.AccessRequested || asked.Reason != "we invoice through ACME" || asked.Created.IsZero() {
		t.Fatalf("asked %+v", asked)
	}
	w.wantRow("acme:api", store.AccessRequested, "we invoice through ACME")

	// The provider's inbox, across its scopes and for the one scope. A
	// request grants nothing: the allow-list (APPROVED) does not show it.
	for _, path := range []string{"/scopes/access?state=REQUESTED", "/scopes/access?scope=acme:api&state=REQUESTED"} {
		inbox := w.rows(w.provider, path)
		if len(inbox) != 1 || inbox[0] != asked {
			t.Fatalf("GET %s: %+v, want the request %+v", path, inbox, asked)
		}
	}
	if got := w.rows(w.provider, "/scopes/access?scope=acme:api"); len(got) != 0 {
		t.Fatalf("allow-list with a request only: %+v", got)
	}
	if got := w.rows(w.consumer, "/scopes/access/all"); len(got) != 0 {
		t.Fatalf("the consumer's access with a request only: %+v", got)
	}

	// The provider denies, with a reason; the inbox is empty again and the
	// consumer reads the reason.
	w.must(w.provider, "DELETE", "/scopes/access/"+consumerOrg+"?scope=acme:api",
		map[string]string{"reason": "send us a signed agreement first"}, http.StatusNoContent, nil)
	if got := w.rows(w.provider, "/scopes/access?state=REQUESTED"); len(got) != 0 {
		t.Fatalf("inbox after the denial: %+v", got)
	}
	denied := w.wantRow("acme:api", store.AccessDenied, "send us a signed agreement first")
	if got := w.rows(w.consumer, "/scopes/access/all?state=DENIED"); len(got) != 1 || got[0] != denied {
		t.Fatalf("the consumer's DENIED rows: %+v", got)
	}

	// It asks again: the row reopens, created stays.
	w.must(w.consumer, "POST", "/scopes/access/requests", map[string]string{"scope": "acme:api", "reason": "agreement signed"}, http.StatusCreated, nil)
	reopened := w.wantRow("acme:api", store.AccessRequested, "agreement signed")
	if !reopened.Created.Equal(asked.Created) || reopened.LastUpdated.Before(denied.LastUpdated) {
		t.Fatalf("reopened %+v after %+v", reopened, denied)
	}

	// The provider approves with a reason: the consumer now has access and
	// its token for the scope works.
	var approved store.Access
	w.must(w.provider, "PUT", "/scopes/access/"+consumerOrg+"?scope=acme:api",
		map[string]string{"reason": "welcome"}, http.StatusOK, &approved)
	if approved.State != store.AccessApproved || approved.Reason != "welcome" {
		t.Fatalf("approved %+v", approved)
	}
	w.wantRow("acme:api", store.AccessApproved, "welcome")
	if got := w.rows(w.consumer, "/scopes/access/all"); len(got) != 1 || got[0] != approved {
		t.Fatalf("the consumer's access: %+v", got)
	}
	var cl store.Client
	w.must(w.consumer, "POST", "/clients", map[string]any{
		"client_name": "acme", "description": "calls ACME", "scopes": []string{"acme:api"},
	}, http.StatusCreated, &cl)
	tok := w.certToken(cl.ClientID, consumerOrg, "", "acme:api")
	if c := tokenClaims(t, tok); c["scope"] != "acme:api" {
		t.Fatalf("token claims %v", c)
	}

	// A second request, on another scope, withdrawn: the provider's inbox
	// empties and the row stays WITHDRAWN; no token for it.
	w.must(w.consumer, "POST", "/scopes/access/requests", map[string]string{"scope": "acme:billing"}, http.StatusCreated, nil)
	if got := w.rows(w.provider, "/scopes/access?state=REQUESTED"); len(got) != 1 || got[0].Scope != "acme:billing" || got[0].Reason != "" {
		t.Fatalf("inbox: %+v", got)
	}
	if r := w.withdraw(w.consumer, "acme:billing"); r.status != http.StatusNoContent || len(r.body) != 0 {
		t.Fatalf("withdraw: %d %s", r.status, r.body)
	}
	w.wantRow("acme:billing", store.AccessWithdrawn, "")
	if got := w.rows(w.provider, "/scopes/access?state=REQUESTED"); len(got) != 0 {
		t.Fatalf("inbox after the withdrawal: %+v", got)
	}
	r = w.do(w.consumer, "PUT", "/clients/"+cl.ClientID, map[string]any{
		"client_name": "acme", "description": "calls ACME", "scopes": []string{"acme:api", "acme:billing"},
	})
	wantProblem(t, r, http.StatusBadRequest, "acme:billing")

	// Every transition is an audit event that both orgs see, in order,
	// with the row before and after.
	type step struct{ action, target, actor, state, reason string }
	want := []step{
		{"access.request", "acme:api", consumerOrg, store.AccessRequested, "we invoice through ACME"},
		{"access.revoke", "acme:api", providerOrg, store.AccessDenied, "send us a signed agreement first"},
		{"access.request", "acme:api", consumerOrg, store.AccessRequested, "agreement signed"},
		{"access.grant", "acme:api", providerOrg, store.AccessApproved, "welcome"},
		{"access.request", "acme:billing", consumerOrg, store.AccessRequested, ""},
		{"access.withdraw", "acme:billing", consumerOrg, store.AccessWithdrawn, ""},
	}
	for _, viewer := range []struct{ name, tok string }{{"consumer", w.consumer}, {"provider", w.provider}} {
		var page struct {
			Events []struct {
				Action, Target string
				ActorOrg       string   `json:"actor_org"`
				Orgs           []string `json:"orgs"`
				Before, After  *store.Access
			} `json:"events"`
		}
		w.must(viewer.tok, "GET", "/audit?limit=500", nil, http.StatusOK, &page)
		var got []step
		asked := map[string]bool{}
		for i := len(page.Events) - 1; i >= 0; i-- { // oldest first
			ev := page.Events[i]
			if !strings.HasPrefix(ev.Action, "access.") {
				continue
			}
			// Only a scope's first request has no row before it.
			first := ev.Action == "access.request" && !asked[ev.Target]
			asked[ev.Target] = true
			if ev.After == nil || ev.After.ConsumerOrgno != consumerOrg ||
				!slices.Contains(ev.Orgs, consumerOrg) || !slices.Contains(ev.Orgs, providerOrg) {
				t.Errorf("%s sees %s on %s: orgs %v, after %+v", viewer.name, ev.Action, ev.Target, ev.Orgs, ev.After)
				continue
			}
			if (ev.Before == nil) != first {
				t.Errorf("%s sees %s on %s with before %+v", viewer.name, ev.Action, ev.Target, ev.Before)
			}
			got = append(got, step{ev.Action, ev.Target, ev.ActorOrg, ev.After.State, ev.After.Reason})
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s's audit view:\n got %+v\nwant %+v", viewer.name, got, want)
		}
	}
}

// TestAccessRequestRefusals: every 409 and 404 of requesting and
// withdrawing, and the 400s; a refused call leaves the row as it was and
// creates none.
func TestAccessRequestRefusals(t *testing.T) { eachEngine(t, testAccessRequestRefusals) }

func testAccessRequestRefusals(t *testing.T, eng engine) {
	w := newRequests(t, eng)
	// acme:api APPROVED (asked and approved), acme:billing REQUESTED.
	w.must(w.consumer, "POST", "/scopes/access/requests", map[string]string{"scope": "acme:api", "reason": "r1"}, http.StatusCreated, nil)
	w.must(w.provider, "PUT", "/scopes/access/"+consumerOrg+"?scope=acme:api", nil, http.StatusOK, nil)
	w.must(w.consumer, "POST", "/scopes/access/requests", map[string]string{"scope": "acme:billing", "reason": "r2"}, http.StatusCreated, nil)
	// The vendor: acme:api DENIED, acme:billing WITHDRAWN.
	w.must(w.vendor, "POST", "/scopes/access/requests", map[string]string{"scope": "acme:api"}, http.StatusCreated, nil)
	w.must(w.provider, "DELETE", "/scopes/access/"+vendorOrg+"?scope=acme:api", map[string]string{"reason": "no"}, http.StatusNoContent, nil)
	w.must(w.vendor, "POST", "/scopes/access/requests", map[string]string{"scope": "acme:billing"}, http.StatusCreated, nil)
	w.must(w.vendor, "DELETE", "/scopes/access/requests?scope=acme:billing", nil, http.StatusNoContent, nil)

	every := func() []store.Access { return w.rows(w.provider, "/scopes/access?inactive=true") }
	before := every()
	if len(before) != 4 {
		t.Fatalf("rows %+v", before)
	}

	cases := []struct {
		name        string
		tok, method string
		path        string
		body        any
		status      int
		words       []string
	}{
		{"fail/request/approved", w.consumer, "POST", "/scopes/access/requests", map[string]string{"scope": "acme:api"}, http.StatusConflict, []string{"already has access"}},
		{"fail/request/requested", w.consumer, "POST", "/scopes/access/requests", map[string]string{"scope": "acme:billing", "reason": "again"}, http.StatusConflict, []string{"asked", "acme:billing"}},
		{"fail/request/accessible-for-all", w.consumer, "POST", "/scopes/access/requests", map[string]string{"scope": "acme:open"}, http.StatusConflict, []string{"accessible for all"}},
		{"fail/request/builtin-accessible-for-all", w.consumer, "POST", "/scopes/access/requests", map[string]string{"scope": records.ScopesRead}, http.StatusConflict, []string{"accessible for all"}},
		{"fail/request/private", w.consumer, "POST", "/scopes/access/requests", map[string]string{"scope": "acme:secret"}, http.StatusNotFound, []string{"acme:secret"}},
		{"fail/request/platform-private", w.consumer, "POST", "/scopes/access/requests", map[string]string{"scope": records.AdminScope}, http.StatusNotFound, nil},
		{"fail/request/unknown", w.consumer, "POST", "/scopes/access/requests", map[string]string{"scope": "acme:nothing"}, http.StatusNotFound, []string{"acme:nothing"}},
		{"fail/request/unknown-prefix", w.consumer, "POST", "/scopes/access/requests", map[string]string{"scope": "nobody:api"}, http.StatusNotFound, nil},
		{"fail/request/inactive", w.consumer, "POST", "/scopes/access/requests", map[string]string{"scope": "acme:old"}, http.StatusNotFound, []string{"acme:old"}},
		{"fail/request/no-scope", w.consumer, "POST", "/scopes/access/requests", map[string]string{"reason": "x"}, http.StatusBadRequest, []string{"scope"}},
		{"fail/request/bad-scope", w.consumer, "POST", "/scopes/access/requests", map[string]string{"scope": "acme api"}, http.StatusBadRequest, []string{"scope"}},
		{"fail/request/reason-control", w.consumer, "POST", "/scopes/access/requests", map[string]string{"scope": "acme:billing", "reason": "a\x00b"}, http.StatusBadRequest, []string{"reason"}},
		{"fail/request/reason-long", w.consumer, "POST", "/scopes/access/requests", map[string]string{"scope": "acme:billing", "reason": strings.Repeat("x", records.MaxReason+1)}, http.StatusBadRequest, []string{"reason"}},
		{"fail/request/unknown-field", w.consumer, "POST", "/scopes/access/requests", map[string]string{"scope": "acme:billing", "state": "APPROVED"}, http.StatusBadRequest, []string{"state"}},
		{"fail/request/no-body", w.consumer, "POST", "/scopes/access/requests", nil, http.StatusBadRequest, []string{"body"}},
		{"fail/request/without-scope", w.admin, "POST", "/scopes/access/requests", map[string]string{"scope": "acme:billing"}, http.StatusForbidden, []string{records.AccessRequest}},

		{"fail/withdraw/approved", w.consumer, "DELETE", "/scopes/access/requests?scope=acme:api", nil, http.StatusConflict, []string{"APPROVED"}},
		{"fail/withdraw/denied", w.vendor, "DELETE", "/scopes/access/requests?scope=acme:api", nil, http.StatusConflict, []string{"DENIED"}},
		{"fail/withdraw/withdrawn", w.vendor, "DELETE", "/scopes/access/requests?scope=acme:billing", nil, http.StatusConflict, []string{"WITHDRAWN"}},
		{"fail/withdraw/no-row", w.other, "DELETE", "/scopes/access/requests?scope=acme:api", nil, http.StatusNotFound, []string{"acme:api"}},
		{"fail/withdraw/unknown", w.consumer, "DELETE", "/scopes/access/requests?scope=acme:nothing", nil, http.StatusNotFound, nil},
		{"fail/withdraw/no-scope", w.consumer, "DELETE", "/scopes/access/requests", nil, http.StatusBadRequest, []string{"scope"}},

		{"fail/deny/no-row", w.provider, "DELETE", "/scopes/access/" + otherOrg + "?scope=acme:api", nil, http.StatusNotFound, []string{otherOrg}},
		{"fail/deny/not-owner", w.other, "DELETE", "/scopes/access/" + consumerOrg + "?scope=acme:billing", nil, http.StatusNotFound, nil},
		{"fail/approve/not-owner", w.consumer, "PUT", "/scopes/access/" + consumerOrg + "?scope=acme:billing", nil, http.StatusNotFound, nil},
		{"fail/approve/reason-control", w.provider, "PUT", "/scopes/access/" + consumerOrg + "?scope=acme:billing", map[string]string{"reason": "\u202e"}, http.StatusBadRequest, []string{"reason"}},
		{"fail/approve/unknown-field", w.provider, "PUT", "/scopes/access/" + consumerOrg + "?scope=acme:billing", map[string]string{"state": "DENIED"}, http.StatusBadRequest, []string{"state"}},
		{"fail/list/bad-state", w.provider, "GET", "/scopes/access?state=PENDING", nil, http.StatusBadRequest, []string{"state", "PENDING"}},
		{"fail/list/too-many-states", w.consumer, "GET", "/scopes/access/all?" + everyState + ",DENIED", nil, http.StatusBadRequest, []string{"state"}},
		{"fail/list/not-owner", w.consumer, "GET", "/scopes/access?scope=acme:api&state=REQUESTED", nil, http.StatusNotFound, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantProblem(t, w.do(tc.tok, tc.method, tc.path, tc.body), tc.status, tc.words...)
		})
	}
	if after := every(); !slices.Equal(after, before) {
		t.Fatalf("refused calls changed the rows:\n got %+v\nwant %+v", after, before)
	}
	for _, tok := range []string{w.consumer, w.vendor, w.other} {
		for _, a := range w.rows(tok, "/scopes/access/all?"+everyState) {
			if a.Scope == "acme:open" || a.Scope == "acme:secret" || a.Scope == "acme:old" || a.Scope == records.ScopesRead {
				t.Errorf("a refused request made a row: %+v", a)
			}
		}
	}

	// The ok cases around them: a row DENIED or WITHDRAWN reopens, and
	// the decisions need no body.
	for _, tc := range []struct{ name, scope string }{{"ok/reopen/denied", "acme:api"}, {"ok/reopen/withdrawn", "acme:billing"}} {
		t.Run(tc.name, func(t *testing.T) {
			var a store.Access
			w.must(w.vendor, "POST", "/scopes/access/requests", map[string]string{"scope": tc.scope}, http.StatusCreated, &a)
			if a.State != store.AccessRequested || a.Reason != "" || a.ConsumerOrgno != vendorOrg {
				t.Fatalf("reopened %+v", a)
			}
		})
	}
	t.Run("ok/decide/no-body", func(t *testing.T) {
		w.must(w.provider, "PUT", "/scopes/access/"+vendorOrg+"?scope=acme:api", nil, http.StatusOK, nil)
		w.must(w.provider, "DELETE", "/scopes/access/"+vendorOrg+"?scope=acme:billing", nil, http.StatusNoContent, nil)
		got := w.rows(w.vendor, "/scopes/access/all?"+everyState)
		if a, _ := row(got, "acme:api", vendorOrg); a.State != store.AccessApproved {
			t.Errorf("acme:api %+v", a)
		}
		if a, _ := row(got, "acme:billing", vendorOrg); a.State != store.AccessDenied {
			t.Errorf("acme:billing %+v", a)
		}
	})
	t.Run("ok/state/comma-or-repeated", func(t *testing.T) {
		comma := w.rows(w.provider, "/scopes/access?state=APPROVED,REQUESTED")
		repeated := w.rows(w.provider, "/scopes/access?state=REQUESTED&state=APPROVED")
		if len(comma) != 3 || !slices.Equal(comma, repeated) {
			t.Fatalf("comma %+v, repeated %+v", comma, repeated)
		}
	})
}

// TestAccessRequestIsolation: a third org never sees a request in any list
// or in its audit trail, cannot withdraw or answer it, and finds the
// provider's private scope missing.
func TestAccessRequestIsolation(t *testing.T) { eachEngine(t, testAccessRequestIsolation) }

func testAccessRequestIsolation(t *testing.T, eng engine) {
	w := newRequests(t, eng)
	w.must(w.consumer, "POST", "/scopes/access/requests", map[string]string{"scope": "acme:api", "reason": "please"}, http.StatusCreated, nil)
	w.must(w.consumer, "POST", "/scopes/access/requests", map[string]string{"scope": "acme:billing"}, http.StatusCreated, nil)
	w.must(w.provider, "DELETE", "/scopes/access/"+consumerOrg+"?scope=acme:billing", nil, http.StatusNoContent, nil)

	for _, path := range []string{
		"/scopes/access?" + everyState,
		"/scopes/access?state=REQUESTED",
		"/scopes/access?inactive=true",
		"/scopes/access/all?" + everyState,
		"/scopes/access/all?inactive=true",
	} {
		if got := w.rows(w.other, path); len(got) != 0 {
			t.Errorf("the other org's GET %s: %+v", path, got)
		}
	}
	for _, path := range []string{"/scopes/access?scope=acme:api&state=REQUESTED", "/scopes/access?scope=acme:secret"} {
		wantProblem(t, w.do(w.other, "GET", path, nil), http.StatusNotFound)
	}
	wantProblem(t, w.withdraw(w.other, "acme:api"), http.StatusNotFound)
	wantProblem(t, w.do(w.other, "PUT", "/scopes/access/"+consumerOrg+"?scope=acme:api", nil), http.StatusNotFound)
	wantProblem(t, w.do(w.other, "DELETE", "/scopes/access/"+consumerOrg+"?scope=acme:api", nil), http.StatusNotFound)
	// The private scope is missing, exactly as one that does not exist.
	priv := problemOf(t, w.ask(w.other, "acme:secret", ""))
	none := problemOf(t, w.ask(w.other, "acme:nosuch", ""))
	if priv.Status != http.StatusNotFound || none.Status != http.StatusNotFound ||
		strings.ReplaceAll(priv.Detail, "acme:secret", "X") != strings.ReplaceAll(none.Detail, "acme:nosuch", "X") {
		t.Errorf("private %+v, unknown %+v", priv, none)
	}

	var page struct {
		Events []struct {
			Action, Target string
		} `json:"events"`
	}
	w.must(w.other, "GET", "/audit?limit=500", nil, http.StatusOK, &page)
	for _, ev := range page.Events {
		if strings.HasPrefix(ev.Action, "access.") || strings.HasPrefix(ev.Target, "acme:") {
			t.Errorf("the other org sees %s %s", ev.Action, ev.Target)
		}
	}
	// The rows are as they were.
	w.wantRow("acme:api", store.AccessRequested, "please")
	w.wantRow("acme:billing", store.AccessDenied, "")
}

// TestAccessRequestByVendor: a vendor holding portvakt:access.request by
// delegation asks, and withdraws, for the consumer; the rows and the audit
// events are the consumer's, and the vendor sees them too. Without the
// delegation it cannot.
func TestAccessRequestByVendor(t *testing.T) { eachEngine(t, testAccessRequestByVendor) }

func testAccessRequestByVendor(t *testing.T, eng engine) {
	w := newRequests(t, eng)
	// Before the delegation: no token for the consumer with the scope.
	if _, err := w.fetchCert(w.vendorAdmin, vendorOrg, consumerOrg, records.AccessRequest); oauthCode(err) == "" {
		t.Fatalf("a vendor token for the consumer without a delegation: %v", err)
	}
	w.must(w.consumer, "PUT", "/delegations/"+vendorOrg+"?scope="+records.AccessRequest, nil, http.StatusOK, nil)
	asConsumer := w.certToken(w.vendorAdmin, vendorOrg, consumerOrg, records.AccessRequest)

	var a store.Access
	w.must(asConsumer, "POST", "/scopes/access/requests", map[string]string{"scope": "acme:api", "reason": "for our customer"}, http.StatusCreated, &a)
	if a.ConsumerOrgno != consumerOrg || a.State != store.AccessRequested {
		t.Fatalf("the vendor's request %+v", a)
	}
	w.wantRow("acme:api", store.AccessRequested, "for our customer")
	if got := w.rows(w.vendor, "/scopes/access/all?"+everyState); len(got) != 0 {
		t.Fatalf("the request landed on the vendor's own rows: %+v", got)
	}
	// The delegated scope is the only one it has for the consumer.
	wantProblem(t, w.do(asConsumer, "GET", "/scopes/access/all?state=REQUESTED", nil), http.StatusForbidden, records.ScopesRead)
	w.must(asConsumer, "DELETE", "/scopes/access/requests?scope=acme:api", nil, http.StatusNoContent, nil)
	w.wantRow("acme:api", store.AccessWithdrawn, "for our customer")

	// The audit events name the consumer, the provider and the vendor.
	for _, tok := range []string{w.consumer, w.provider, w.vendor} {
		var page struct {
			Events []struct {
				Action   string
				ActorOrg string   `json:"actor_org"`
				Orgs     []string `json:"orgs"`
			} `json:"events"`
		}
		w.must(tok, "GET", "/audit?target=acme:api", nil, http.StatusOK, &page)
		var got []string
		for _, ev := range page.Events {
			if !strings.HasPrefix(ev.Action, "access.") {
				continue
			}
			got = append(got, ev.Action)
			if ev.ActorOrg != consumerOrg || !slices.Contains(ev.Orgs, providerOrg) || !slices.Contains(ev.Orgs, vendorOrg) {
				t.Errorf("%s: actor %s, orgs %v", ev.Action, ev.ActorOrg, ev.Orgs)
			}
		}
		if !slices.Equal(got, []string{"access.withdraw", "access.request"}) {
			t.Errorf("audit %v", got)
		}
	}

	// Once the consumer revokes the delegation, the vendor cannot ask.
	w.must(w.consumer, "DELETE", "/delegations/"+vendorOrg+"?scope="+records.AccessRequest, nil, http.StatusNoContent, nil)
	wantProblem(t, w.do(asConsumer, "POST", "/scopes/access/requests", map[string]string{"scope": "acme:api"}), http.StatusForbidden, "no longer delegates")
	w.wantRow("acme:api", store.AccessWithdrawn, "for our customer")
}

// fetchCert asks for a token of a certificate client, returning the error.
func (w *requests) fetchCert(clientID, org, consumer string, scopes ...string) (string, error) {
	w.t.Helper()
	l := w.leaf(org)
	s, err := client.CertificateSigner(l.Key, l.Chain)
	if err != nil {
		w.t.Fatal(err)
	}
	return w.fetch(clientID, s, consumer, scopes...)
}

// TestAccessRequestConcurrent: the consumer asks for the same scope from
// many callers at once; exactly one request is made (201, one audit
// event), every other is a 409.
func TestAccessRequestConcurrent(t *testing.T) { eachEngine(t, testAccessRequestConcurrent) }

func testAccessRequestConcurrent(t *testing.T, eng engine) {
	w := newRequests(t, eng)
	const n = 8
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			body := strings.NewReader(fmt.Sprintf(`{"scope":"acme:api","reason":"caller %d"}`, i))
			req, err := http.NewRequestWithContext(t.Context(), "POST", strings.TrimSuffix(w.issuer, "/")+selfservice.Base+"/scopes/access/requests", body)
			if err != nil {
				t.Error(err)
				return
			}
			req.Header.Set("Authorization", "Bearer "+w.consumer)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		})
	}
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	if count[http.StatusCreated] != 1 || count[http.StatusConflict] != n-1 {
		t.Fatalf("statuses %v, want one 201 and %d 409", count, n-1)
	}
	var page struct {
		Events []struct{ Action string } `json:"events"`
	}
	w.must(w.provider, "GET", "/audit?action=access.request", nil, http.StatusOK, &page)
	if len(page.Events) != 1 {
		t.Fatalf("%d access.request events, want 1", len(page.Events))
	}
	if inbox := w.rows(w.provider, "/scopes/access?state=REQUESTED"); len(inbox) != 1 {
		t.Fatalf("inbox %+v", inbox)
	}
}

// TestAccessDecisionChunkedBody: the optional body of a decision may come
// chunked (no Content-Length), empty or not.
func TestAccessDecisionChunkedBody(t *testing.T) { eachEngine(t, testAccessDecisionChunkedBody) }

func testAccessDecisionChunkedBody(t *testing.T, eng engine) {
	w := newRequests(t, eng)
	w.must(w.consumer, "POST", "/scopes/access/requests", map[string]string{"scope": "acme:api"}, http.StatusCreated, nil)
	w.must(w.consumer, "POST", "/scopes/access/requests", map[string]string{"scope": "acme:billing"}, http.StatusCreated, nil)
	for _, tc := range []struct {
		name, method, scope, body string
		status                    int
		state, reason             string
	}{
		{"ok/chunked-empty", "PUT", "acme:api", "", http.StatusOK, store.AccessApproved, ""},
		{"ok/chunked-reason", "DELETE", "acme:billing", `{"reason":"not now"}`, http.StatusNoContent, store.AccessDenied, "not now"},
		{"fail/chunked-not-json", "PUT", "acme:billing", `{"reason":`, http.StatusBadRequest, store.AccessDenied, "not now"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A reader of unknown length, sent chunked.
			body := io.MultiReader(strings.NewReader(tc.body))
			req, err := http.NewRequestWithContext(t.Context(), tc.method,
				strings.TrimSuffix(w.issuer, "/")+selfservice.Base+"/scopes/access/"+consumerOrg+"?scope="+tc.scope, body)
			if err != nil {
				t.Fatal(err)
			}
			req.TransferEncoding = []string{"chunked"}
			req.Header.Set("Authorization", "Bearer "+w.provider)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			w.wantRow(tc.scope, tc.state, tc.reason)
		})
	}
}
