package selfservice_test

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/store"
)

// auditEventJSON is an event of GET /audit as a client reads it.
type auditEventJSON struct {
	ID            int64     `json:"id"`
	Time          time.Time `json:"time"`
	ActorOrg      string    `json:"actor_org"`
	ActorClientID string    `json:"actor_client_id"`
	Action        string    `json:"action"`
	TargetKind    string    `json:"target_kind"`
	Target        string    `json:"target"`
	Orgs          []string  `json:"orgs"`
	Token         *struct {
		ConsumerOrgno string   `json:"consumer_orgno"`
		SupplierOrgno string   `json:"supplier_orgno"`
		Scopes        []string `json:"scopes"`
		Audience      []string `json:"aud"`
	} `json:"token"`
}

// auditView walks every page of GET /audit?query with page size limit.
func (e *env) auditView(token, query string, limit int) []auditEventJSON {
	e.t.Helper()
	var all []auditEventJSON
	seen := map[string]bool{}
	cursor := ""
	for range 100 {
		var page struct {
			Events     []auditEventJSON `json:"events"`
			NextCursor *string          `json:"next_cursor"`
		}
		q := fmt.Sprintf("limit=%d&cursor=%s", limit, url.QueryEscape(cursor))
		if query != "" {
			q += "&" + query
		}
		e.must(token, "GET", "/audit?"+q, nil, http.StatusOK, &page)
		if page.Events == nil || page.NextCursor == nil {
			e.t.Fatalf("GET /audit?%s: events or next_cursor missing", q)
		}
		if len(page.Events) > limit {
			e.t.Fatalf("GET /audit?%s: %d events, more than the limit", q, len(page.Events))
		}
		for _, ev := range page.Events {
			k := ev.Action + " " + ev.Target + " " + fmt.Sprint(ev.ID)
			if seen[k] {
				e.t.Fatalf("GET /audit?%s: %s twice", query, k)
			}
			seen[k] = true
		}
		all = append(all, page.Events...)
		if *page.NextCursor == "" {
			return all
		}
		cursor = *page.NextCursor
	}
	e.t.Fatalf("GET /audit?%s: more than 100 pages", query)
	return nil
}

// wantEvent is an expected event; the test fills time and id from the store.
type wantEvent struct {
	action, actor, actorClient, target string
	orgs                               []string
	scopes                             []string // token events: the scopes the viewer sees
	time                               time.Time
	id                                 int64
}

func (w wantEvent) String() string {
	return fmt.Sprintf("%s %s by %s/%s orgs=%v scopes=%v", w.action, w.target, w.actor, w.actorClient, w.orgs, w.scopes)
}

func gotEvent(g auditEventJSON) wantEvent {
	w := wantEvent{action: g.Action, actor: g.ActorOrg, actorClient: g.ActorClientID, target: g.Target, orgs: g.Orgs}
	if g.Token != nil {
		w.scopes = slices.Sorted(slices.Values(g.Token.Scopes))
	}
	return w
}

// TestAuditVisibility: after a delegated issuance (the vendor for the
// consumer, of the provider's scope), a direct one and admin changes, the
// consumer, the provider, the vendor and an unrelated org each read the
// audit log through the API and see exactly their events.
func TestAuditVisibility(t *testing.T) { eachEngine(t, testAuditVisibility) }

func testAuditVisibility(t *testing.T, eng engine) {
	e := newEnv(t, eng)
	ctx := t.Context()
	admin := e.adminToken()

	e.must(admin, "PUT", "/prefixes/acme", map[string]string{"owner_org": providerOrg}, http.StatusOK, nil)
	providerAdmin, provider := e.onboard(admin, providerOrg)
	consumerAdmin, consumer := e.onboard(admin, consumerOrg)
	vendorAdmin, vendor := e.onboard(admin, vendorOrg)
	otherAdmin, other := e.onboard(admin, otherOrg)

	e.must(provider, "POST", "/scopes", map[string]any{
		"prefix": "acme", "subscope": "api", "description": "The ACME API", "delegation_source": e.issuer,
	}, http.StatusCreated, nil)
	e.must(provider, "PUT", "/scopes/access/"+consumerOrg+"?scope=acme:api", nil, http.StatusOK, nil)

	// A direct issuance carrying scopes of two providers (acme, and the
	// platform's portvakt); it writes no audit event.
	var direct store.Client
	e.must(consumer, "POST", "/clients", map[string]any{
		"client_name": "direct", "description": "calls ACME", "scopes": []string{"acme:api", "portvakt:audit.read"},
	}, http.StatusCreated, &direct)
	before := len(e.auditAll(ctx))
	directTok := e.certToken(direct.ClientID, consumerOrg, "", "acme:api", "portvakt:audit.read")
	if after := len(e.auditAll(ctx)); after != before {
		t.Fatalf("issuing a token wrote %d audit events; tokens come only from the issued-token record", after-before)
	}

	// The delegated issuance.
	e.must(consumer, "PUT", "/delegations/"+vendorOrg+"?scope=acme:api", nil, http.StatusOK, nil)
	var vclient store.Client
	e.must(vendor, "POST", "/clients", map[string]any{
		"client_name": "for-customers", "description": "vendor integration", "scopes": []string{"acme:api"},
	}, http.StatusCreated, &vclient)
	delegatedTok := e.certToken(vclient.ClientID, vendorOrg, consumerOrg, "acme:api")

	// Ground truth from the store, to fill times and ids.
	events := e.auditAll(ctx)
	rows, err := e.db.ListIssuedTokens(ctx, store.IssuedTokenFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	jti := func(tok string) string { return tokenClaims(t, tok)["jti"].(string) }
	adminEv := func(action, target string) wantEvent {
		t.Helper()
		for _, ev := range events {
			if ev.Action == action && ev.Target == target {
				return wantEvent{action: action, actor: ev.ActorOrg, actorClient: ev.ActorClientID, target: target,
					orgs: ev.Orgs, time: ev.Time, id: ev.ID}
			}
		}
		t.Fatalf("no audit event %s %s", action, target)
		return wantEvent{}
	}
	tokenEv := func(tok, actor, client string, orgs []string, scopes ...string) wantEvent {
		t.Helper()
		j := jti(tok)
		for _, r := range rows {
			if r.TokenJTI == j {
				return wantEvent{action: "token.issue", actor: actor, actorClient: client, target: j,
					orgs: orgs, scopes: slices.Sorted(slices.Values(scopes)), time: r.IssuedAt}
			}
		}
		t.Fatalf("no issued-token row for %s", j)
		return wantEvent{}
	}
	// newestFirst is the API's order: time, then tokens before admin
	// changes, then id (admin) or jti (tokens), descending.
	newestFirst := func(ws ...wantEvent) []wantEvent {
		slices.SortStableFunc(ws, func(a, b wantEvent) int {
			if c := b.time.Compare(a.time); c != 0 {
				return c
			}
			ak, bk := a.action != "token.issue", b.action != "token.issue"
			if ak != bk {
				if ak {
					return 1
				}
				return -1
			}
			return cmp.Or(cmp.Compare(b.id, a.id), strings.Compare(b.target, a.target))
		})
		return ws
	}
	onboardTok := func(tok, org, client string) wantEvent {
		return tokenEv(tok, org, client, []string{org, platformOrg}, "portvakt:access.request", "portvakt:audit.read", "portvakt:clients.read",
			"portvakt:clients.write", "portvakt:delegations.write", "portvakt:members.write", "portvakt:scopes.read", "portvakt:scopes.write",
			"portvakt:webhooks.write")
	}

	consumerView := newestFirst(
		adminEv("client.create", consumerAdmin),
		adminEv("access.grant", "acme:api"),
		adminEv("client.create", direct.ClientID),
		adminEv("delegation.create", "acme:api"),
		onboardTok(consumer, consumerOrg, consumerAdmin),
		tokenEv(directTok, consumerOrg, direct.ClientID, []string{consumerOrg, providerOrg, platformOrg}, "acme:api", "portvakt:audit.read"),
		tokenEv(delegatedTok, vendorOrg, vclient.ClientID, []string{consumerOrg, vendorOrg, providerOrg}, "acme:api"),
	)
	providerView := newestFirst(
		adminEv("prefix.assign", "acme"),
		adminEv("client.create", providerAdmin),
		adminEv("scope.create", "acme:api"),
		adminEv("access.grant", "acme:api"),
		onboardTok(provider, providerOrg, providerAdmin),
		// Only its own scope: not the platform's portvakt:audit.read.
		tokenEv(directTok, consumerOrg, direct.ClientID, []string{consumerOrg, providerOrg}, "acme:api"),
		tokenEv(delegatedTok, vendorOrg, vclient.ClientID, []string{consumerOrg, vendorOrg, providerOrg}, "acme:api"),
	)
	vendorView := newestFirst(
		adminEv("client.create", vendorAdmin),
		adminEv("delegation.create", "acme:api"),
		adminEv("client.create", vclient.ClientID),
		onboardTok(vendor, vendorOrg, vendorAdmin),
		tokenEv(delegatedTok, vendorOrg, vclient.ClientID, []string{consumerOrg, vendorOrg, providerOrg}, "acme:api"),
	)
	// The unrelated org sees its own onboarding and its own token, nothing
	// of the others.
	otherView := newestFirst(
		adminEv("client.create", otherAdmin),
		onboardTok(other, otherOrg, otherAdmin),
	)

	check := func(t *testing.T, got []auditEventJSON, want []wantEvent) {
		t.Helper()
		ok := len(got) == len(want)
		for i := 0; ok && i < len(got); i++ {
			g, w := gotEvent(got[i]), want[i]
			ok = g.action == w.action && g.actor == w.actor && g.actorClient == w.actorClient &&
				g.target == w.target && slices.Equal(g.orgs, w.orgs) && slices.Equal(g.scopes, w.scopes) &&
				got[i].Time.Equal(w.time) && got[i].ID == w.id
		}
		if !ok {
			var gs, ws []string
			for _, g := range got {
				gs = append(gs, gotEvent(g).String())
			}
			for _, w := range want {
				ws = append(ws, w.String())
			}
			t.Errorf("audit view:\n got %s\nwant %s", strings.Join(gs, "\n     "), strings.Join(ws, "\n     "))
		}
	}
	only := func(ws []wantEvent, keep func(wantEvent) bool) []wantEvent {
		return slices.DeleteFunc(slices.Clone(ws), func(w wantEvent) bool { return !keep(w) })
	}
	isToken := func(w wantEvent) bool { return w.action == "token.issue" }
	about := func(target string) func(wantEvent) bool {
		return func(w wantEvent) bool { return w.target == target || slices.Contains(w.scopes, target) }
	}
	latest := consumerView[0].time

	cases := []struct {
		name, token, query string
		limit              int
		want               []wantEvent
	}{
		{"ok/consumer", consumer, "", 500, consumerView},
		{"ok/consumer-pages-of-1", consumer, "", 1, consumerView},
		{"ok/consumer-pages-of-2", consumer, "", 2, consumerView},
		{"ok/provider", provider, "", 500, providerView},
		{"ok/provider-pages-of-3", provider, "", 3, providerView},
		{"ok/vendor", vendor, "", 500, vendorView},
		{"ok/vendor-pages-of-2", vendor, "", 2, vendorView},
		{"ok/unrelated", other, "", 500, otherView},
		{"ok/unrelated-scope-nothing", other, "scope=acme:api", 500, nil},

		{"ok/action-token", consumer, "action=token.issue", 2, only(consumerView, isToken)},
		{"ok/action-admin", consumer, "action=access.grant", 2, only(consumerView, func(w wantEvent) bool { return w.action == "access.grant" })},
		{"ok/action-unknown", consumer, "action=scope.explode", 2, nil},
		{"ok/scope", consumer, "scope=acme:api", 2, only(consumerView, about("acme:api"))},
		{"ok/scope-other-provider", consumer, "scope=portvakt:audit.read", 2, only(consumerView, about("portvakt:audit.read"))},
		// Another provider's scope never widens a provider's view: only its
		// own token carries it as far as it may know.
		{"ok/provider-foreign-scope", provider, "scope=portvakt:audit.read", 2, only(providerView, func(w wantEvent) bool {
			return w.target == jti(provider)
		})},
		{"ok/provider-own-scope", provider, "scope=acme:api", 2, only(providerView, about("acme:api"))},
		{"ok/client", consumer, "client_id=" + direct.ClientID, 1, only(consumerView, func(w wantEvent) bool {
			return w.actorClient == direct.ClientID && isToken(w) || w.target == direct.ClientID
		})},
		{"ok/vendor-client", vendor, "client_id=" + vclient.ClientID + "&action=token.issue", 1, only(vendorView, func(w wantEvent) bool {
			return w.actorClient == vclient.ClientID && isToken(w)
		})},
		{"ok/scope-and-client", consumer, "scope=acme:api&client_id=" + vclient.ClientID, 1, only(consumerView, func(w wantEvent) bool {
			return isToken(w) && w.actorClient == vclient.ClientID
		})},
		{"ok/target-admin-only", consumer, "target=acme:api", 1, only(consumerView, func(w wantEvent) bool { return w.target == "acme:api" })},
		{"ok/from-future", consumer, "from=" + latest.Add(time.Hour).Format(time.RFC3339), 5, nil},
		{"ok/to-past", consumer, "to=2001-01-01T00:00:00Z", 5, nil},
		{"ok/time-range", consumer, "from=2001-01-01T00:00:00Z&to=" + latest.Add(time.Hour).Format(time.RFC3339), 5, consumerView},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			check(t, e.auditView(tc.token, tc.query, tc.limit), tc.want)
		})
	}

	// The provider sees neither the audience nor foreign scopes of tokens
	// it is not a party to; the consumer sees the whole token.
	for _, ev := range e.auditView(provider, "action=token.issue", 500) {
		if ev.Token.ConsumerOrgno != providerOrg && len(ev.Token.Audience) != 0 {
			t.Errorf("provider sees aud %v of %s", ev.Token.Audience, ev.Target)
		}
	}
	for _, ev := range e.auditView(consumer, "action=token.issue", 500) {
		if ev.Token.ConsumerOrgno != consumerOrg || ev.TargetKind != "token" {
			t.Errorf("consumer's token event %+v", ev)
		}
	}

	fails := []struct {
		name, query string
		fields      []string
	}{
		{"fail/limit", "limit=501", []string{"limit"}},
		{"fail/cursor", "cursor=bm90IGEgY3Vyc29y", []string{"cursor"}},
		{"fail/cursor-empty-object", "cursor=e30", []string{"cursor"}},
		{"fail/times", "from=yesterday&to=2020", []string{"from", "to"}},
		{"fail/to-not-after-from", "from=2025-01-01T00:00:00Z&to=2025-01-01T00:00:00Z", []string{"to"}},
		{"fail/action", "action=DROP%20TABLE", []string{"action"}},
		{"fail/scope", "scope=acme", []string{"scope"}},
		{"fail/scope-wildcard", "scope=ac%25:api", []string{"scope"}},
		{"fail/client-id", "client_id=not-a-uuid", []string{"client_id"}},
		{"fail/all", "limit=x&scope=%25&client_id=1&action=x", []string{"limit", "action", "scope", "client_id"}},
	}
	for _, tc := range fails {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(consumer, "GET", "/audit?"+tc.query, nil)
			if r.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", r.status, r.body)
			}
			p := problemOf(t, r)
			var fields []string
			for _, fe := range p.Errors {
				fields = append(fields, fe.Field)
			}
			if !slices.Equal(fields, tc.fields) {
				t.Errorf("fields %v, want %v: %s", fields, tc.fields, r.body)
			}
		})
	}

	// Without portvakt:audit.read: 403.
	if r := e.do(e.certToken(direct.ClientID, consumerOrg, "", "acme:api"), "GET", "/audit", nil); r.status != http.StatusForbidden {
		t.Errorf("without portvakt:audit.read: %d, want 403", r.status)
	}
	var raw map[string]json.RawMessage
	e.must(consumer, "GET", "/audit?limit=1", nil, http.StatusOK, &raw)
	if len(raw) != 2 || raw["events"] == nil || raw["next_cursor"] == nil {
		t.Errorf("page shape %s", raw)
	}
}
