package main

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/portvakt/portvakt/internal/devmode"
	"github.com/portvakt/portvakt/internal/manage"
	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/store"
)

// What every org does in the browser: its webhooks (a refused URL, one
// added, its deliveries, deactivated), its members (added, roles set,
// removed) and its audit trail with filters (naming the person who acted);
// and the platform admin's prefixes. Each asserts the page, then the store.
func TestConsoleEveryone(t *testing.T) {
	_, a, url := consoleDev(t)
	tab := newTab(t)
	devLogin(t, tab, url, devmode.ProviderOrg)
	ctx := t.Context()
	person := "dev:" + devmode.ProviderOrg

	t.Run("ok/webhooks-create-deliveries-deactivate", func(t *testing.T) {
		var got atomic.Int32
		rx := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got.Add(1)
			w.WriteHeader(http.StatusAccepted)
		}))
		t.Cleanup(rx.Close)
		visit(t, tab, url+"webhooks", "webhooks")
		fill(t, tab, "#f-url", "http://hooks.example.no/in")
		click(t, tab, `#webhook-form button[type="submit"]`)
		waitText(t, tab, "#err-url", "https")
		fill(t, tab, "#f-url", rx.URL+"/events")
		click(t, tab, `#ev-access\.requested`)
		click(t, tab, `#webhook-form button[type="submit"]`)
		waitText(t, tab, "[data-url]", rx.URL+"/events")
		hooks, err := a.store.PageWebhooks(ctx, store.WebhookFilter{Org: devmode.ProviderOrg}, store.Page{})
		if err != nil || len(hooks) != 1 || hooks[0].URL != rx.URL+"/events" || len(hooks[0].Events) != 1 || hooks[0].Events[0] != store.EventAccessRequested {
			t.Fatalf("stored webhooks %+v (%v)", hooks, err)
		}
		// An event for the provider: a consumer asks for one of its scopes.
		if _, err := a.core.CreateScope(ctx, &manage.Actor{Org: devmode.ProviderOrg, Scopes: []string{records.ScopesWrite}},
			manage.ScopeInput{Prefix: "demo", Subscope: "hooked", Description: "Hooked"}); err != nil {
			t.Fatal(err)
		}
		if _, err := a.core.RequestAccess(ctx, &manage.Actor{Org: devmode.ConsumerOrg, Scopes: []string{records.AccessRequest}}, "demo:hooked", manage.AccessInput{}); err != nil {
			t.Fatal(err)
		}
		for range 100 {
			if n, _ := a.store.ListDeliveryAttempts(ctx, hooks[0].ID, 1); len(n) > 0 {
				break
			}
			waitABit()
		}
		visit(t, tab, url+"webhooks/"+hooks[0].ID, "webhook")
		waitText(t, tab, "#deliveries", store.EventAccessRequested)
		waitText(t, tab, "#deliveries", "202")
		screenshot(t, tab, "webhook", true)
		if got.Load() == 0 {
			t.Fatal("the receiver got nothing")
		}
		click(t, tab, "button.danger")
		waitText(t, tab, "[data-state]", "deactivated")
		if h, err := a.store.GetWebhook(ctx, hooks[0].ID); err != nil || h.Active {
			t.Fatalf("the webhook is still active: %+v (%v)", h, err)
		}
	})

	t.Run("ok/members-add-set-roles-remove", func(t *testing.T) {
		visit(t, tab, url+"members", "members")
		fill(t, tab, "#member-form #f-subject", "kari@example.no")
		click(t, tab, "#new-scopes\\.read")
		click(t, tab, `#member-form button[type="submit"]`)
		row := `tr[data-member="kari@example.no"]`
		waitText(t, tab, row, "kari@example.no")
		m, err := a.store.GetMember(ctx, devmode.ProviderOrg, "kari@example.no")
		if err != nil || len(m.Roles) != 1 || m.Roles[0] != records.ScopesRead {
			t.Fatalf("stored member %+v (%v)", m, err)
		}
		click(t, tab, row+` input[value="portvakt:audit.read"]`)
		click(t, tab, row+` .roles-form button`)
		waitText(t, tab, `[role="status"]`, "Saved.")
		screenshot(t, tab, "members", true)
		if m, _ := a.store.GetMember(ctx, devmode.ProviderOrg, "kari@example.no"); len(m.Roles) != 2 {
			t.Fatalf("stored roles after the change %v", m.Roles)
		}
		click(t, tab, row+` form.inline button`)
		waitText(t, tab, `[role="status"]`, "Member removed.")
		if _, err := a.store.GetMember(ctx, devmode.ProviderOrg, "kari@example.no"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the member is still stored: %v", err)
		}
	})

	t.Run("ok/audit-filters", func(t *testing.T) {
		visit(t, tab, url+"audit", "audit")
		waitText(t, tab, "#audit-events", "member.delete")
		fill(t, tab, "#f-action", "member.create")
		click(t, tab, `#audit-filters button[type="submit"]`)
		waitNoText(t, tab, "#audit-events tbody", "member.delete")
		waitText(t, tab, `#audit-events tr[data-action="member.create"]`, person)
		if actions := textOf(t, tab, "#audit-events tbody"); strings.Contains(actions, "webhook.create") {
			t.Fatalf("the action filter let other actions through: %s", actions)
		}
		screenshot(t, tab, "audit", true)
		fill(t, tab, "#f-from", "yesterday")
		click(t, tab, `#audit-filters button[type="submit"]`)
		waitText(t, tab, "#err-from", "RFC 3339")
		evs, err := a.store.ListAudit(ctx, store.AuditFilter{Org: devmode.ProviderOrg, Action: "member.create"})
		if err != nil || len(evs) != 1 || evs[0].ActorPerson != person {
			t.Fatalf("stored audit events %+v (%v)", evs, err)
		}
	})

	t.Run("ok/platform-prefixes", func(t *testing.T) {
		admin := newTab(t)
		devLogin(t, admin, url, devmode.PlatformOrg)
		visit(t, admin, url+"prefixes", "prefixes")
		waitText(t, admin, `tr[data-prefix="demo"] .owner`, devmode.ProviderOrg)
		fill(t, admin, "#f-prefix", "newco")
		fill(t, admin, "#f-owner_org", "123")
		click(t, admin, `#prefix-form button[type="submit"]`)
		waitText(t, admin, "#err-owner_org", "not a valid organisation number")
		fill(t, admin, "#f-owner_org", devmode.ConsumerOrg)
		click(t, admin, `#prefix-form button[type="submit"]`)
		waitText(t, admin, `tr[data-prefix="newco"] .owner`, devmode.ConsumerOrg)
		screenshot(t, admin, "prefixes", true)
		if p, err := a.store.GetPrefix(ctx, "newco"); err != nil || p.OwnerOrg != devmode.ConsumerOrg {
			t.Fatalf("stored prefix %+v (%v)", p, err)
		}
		// The provider has no prefixes page.
		visit(t, tab, url+"prefixes", "prefixes-refused")
		waitText(t, tab, "h1", "Not allowed")
	})
}
