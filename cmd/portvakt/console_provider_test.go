package main

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portvakt/portvakt/internal/devmode"
	"github.com/portvakt/portvakt/internal/manage"
	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/store"
)

// The provider's flows in the browser, each asserting what the page shows
// and then what the store holds: a scope created (a validation error from
// the core first), edited, its allow-list granted and removed, deactivated;
// the inbox approving one request and denying another; the tokens page.
func TestConsoleProvider(t *testing.T) {
	cfg, a, url := consoleDev(t)
	tab := newTab(t)
	devLogin(t, tab, url, devmode.ProviderOrg)
	ctx := t.Context()

	t.Run("ok/create-scope-after-a-validation-error", func(t *testing.T) {
		visit(t, tab, url+"scopes", "scopes")
		waitText(t, tab, `tr[data-scope="demo:read"]`, "Read the demo API")
		screenshot(t, tab, "scopes", true)
		click(t, tab, `a[href$="scopes/new"]`)
		waitText(t, tab, "h1", "New scope")
		fill(t, tab, "#f-subscope", "bad name")
		fill(t, tab, "#f-description", "")
		click(t, tab, `#scope-form button[type="submit"]`)
		waitText(t, tab, "#err-subscope", "must match")
		waitText(t, tab, "#err-description", "is required")
		if got := textOf(t, tab, `[role="alert"]`); !strings.Contains(got, "Please correct") {
			t.Fatalf("no error banner: %q", got)
		}
		screenshot(t, tab, "scope-new-invalid", true)
		if _, err := a.store.GetScope(ctx, "demo:bad name"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the refused scope is in the store: %v", err)
		}
		fill(t, tab, "#f-subscope", "orders")
		fill(t, tab, "#f-description", "Orders API")
		fill(t, tab, "#f-at_max_age", "300")
		click(t, tab, "#f-delegation_source")
		click(t, tab, `#scope-form button[type="submit"]`)
		waitText(t, tab, "h1", "Scope demo:orders")
		sc, err := a.store.GetScope(ctx, "demo:orders")
		if err != nil || sc.Description != "Orders API" || sc.ATMaxAge != 300 || sc.DelegationSource != cfg.Issuer ||
			sc.OwnerOrgno != devmode.ProviderOrg || !sc.Active {
			t.Fatalf("stored scope %+v (%v)", sc, err)
		}
	})

	t.Run("ok/edit-scope", func(t *testing.T) {
		visit(t, tab, url+"scopes/demo:orders", "scope")
		fill(t, tab, "#f-description", "Orders API, version 2")
		click(t, tab, `#scope-form button[type="submit"]`)
		waitText(t, tab, `[role="status"]`, "Saved.")
		if sc, err := a.store.GetScope(ctx, "demo:orders"); err != nil || sc.Description != "Orders API, version 2" || sc.ATMaxAge != 300 {
			t.Fatalf("stored scope after edit %+v (%v)", sc, err)
		}
		fill(t, tab, "#f-at_max_age", "9000")
		click(t, tab, `#scope-form button[type="submit"]`)
		waitText(t, tab, "#err-at_max_age", "between 0")
		if sc, _ := a.store.GetScope(ctx, "demo:orders"); sc.ATMaxAge != 300 {
			t.Fatalf("a refused edit changed the scope: %+v", sc)
		}
	})

	t.Run("ok/allow-list-grant-and-remove", func(t *testing.T) {
		visit(t, tab, url+"scopes/demo:orders", "scope")
		fill(t, tab, "#grant-form #f-org", "123")
		click(t, tab, `#grant-form button[type="submit"]`)
		waitText(t, tab, "#grant-form #err-org", "not a valid organisation number")
		fill(t, tab, "#grant-form #f-org", devmode.ConsumerOrg)
		fill(t, tab, "#grant-form #f-reason", "pilot")
		click(t, tab, `#grant-form button[type="submit"]`)
		waitText(t, tab, `tr[data-access-org="`+devmode.ConsumerOrg+`"] .state`, store.AccessApproved)
		screenshot(t, tab, "scope", true)
		if ac, err := a.store.GetAccess(ctx, "demo:orders", devmode.ConsumerOrg); err != nil || ac.State != store.AccessApproved || ac.Reason != "pilot" {
			t.Fatalf("stored access %+v (%v)", ac, err)
		}
		click(t, tab, `tr[data-access-org="`+devmode.ConsumerOrg+`"] button`)
		waitText(t, tab, `tr[data-access-org="`+devmode.ConsumerOrg+`"] .state`, store.AccessDenied)
		if ac, _ := a.store.GetAccess(ctx, "demo:orders", devmode.ConsumerOrg); ac.State != store.AccessDenied {
			t.Fatalf("stored access after remove %+v", ac)
		}
	})

	t.Run("ok/deactivate-scope", func(t *testing.T) {
		visit(t, tab, url+"scopes/demo:orders", "scope")
		click(t, tab, `button.danger`)
		waitText(t, tab, "[data-state]", "deactivated")
		if sc, _ := a.store.GetScope(ctx, "demo:orders"); sc.Active {
			t.Fatalf("the scope is still active: %+v", sc)
		}
	})

	t.Run("ok/inbox-approve-and-deny", func(t *testing.T) {
		prov := &manage.Actor{Org: devmode.ProviderOrg, Scopes: []string{records.ScopesWrite}}
		if _, err := a.core.CreateScope(ctx, prov, manage.ScopeInput{Prefix: "demo", Subscope: "invoices", Description: "Invoices"}); err != nil {
			t.Fatal(err)
		}
		for _, org := range []string{devmode.ConsumerOrg, devmode.VendorOrg} {
			if _, err := a.core.RequestAccess(ctx, &manage.Actor{Org: org, Scopes: []string{records.AccessRequest}}, "demo:invoices",
				manage.AccessInput{Reason: "we need it, " + org}); err != nil {
				t.Fatal(err)
			}
		}
		visit(t, tab, url+"inbox", "inbox")
		row := func(org string) string { return `tr[data-request="demo:invoices ` + org + `"]` }
		waitText(t, tab, row(devmode.ConsumerOrg), "we need it, "+devmode.ConsumerOrg)
		waitText(t, tab, row(devmode.VendorOrg), "we need it, "+devmode.VendorOrg)
		screenshot(t, tab, "inbox", true)
		fill(t, tab, row(devmode.ConsumerOrg)+` input[name="reason"]`, "welcome")
		click(t, tab, row(devmode.ConsumerOrg)+` button[value="approve"]`)
		waitText(t, tab, `[role="status"]`, "Request approved.")
		fill(t, tab, row(devmode.VendorOrg)+` input[name="reason"]`, "not for vendors")
		click(t, tab, row(devmode.VendorOrg)+` button[value="deny"]`)
		waitText(t, tab, `[role="status"]`, "Request denied.")
		waitText(t, tab, "main", "No open requests.")
		for org, want := range map[string][2]string{devmode.ConsumerOrg: {store.AccessApproved, "welcome"}, devmode.VendorOrg: {store.AccessDenied, "not for vendors"}} {
			if ac, err := a.store.GetAccess(ctx, "demo:invoices", org); err != nil || ac.State != want[0] || ac.Reason != want[1] {
				t.Fatalf("stored access of %s: %+v (%v), want %v", org, ac, err, want)
			}
		}
	})

	t.Run("ok/tokens-for-its-scopes", func(t *testing.T) {
		pki := filepath.Join(cfg.DataDir, "pki")
		cli(t, 0, "token", "--issuer", cfg.Issuer, "--client-id", devmode.ConsumerCertClient,
			"--cert", filepath.Join(pki, "consumer", "chain.pem"), "--key", filepath.Join(pki, "consumer", "key.pem"), "--scope", "demo:read")
		visit(t, tab, url+"tokens", "tokens")
		waitText(t, tab, `tr[data-token-org="`+devmode.ConsumerOrg+`"]`, "1")
		screenshot(t, tab, "tokens", true)
		toks, err := a.store.ListIssuedTokens(ctx, store.IssuedTokenFilter{Org: devmode.ConsumerOrg})
		if err != nil || len(toks) != 1 || toks[0].Scopes[0] != "demo:read" {
			t.Fatalf("issued tokens %+v (%v)", toks, err)
		}
	})
}
