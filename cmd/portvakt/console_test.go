package main

import (
	"strings"
	"testing"

	"github.com/portvakt/portvakt/internal/devmode"
)

// The dev login: console/ sends a person without a session to log in; the
// dev login lists the demo orgs and logs in as a dev person of the one
// picked, whose home page shows what the org's roles allow.
func TestConsoleDevLogin(t *testing.T) {
	_, _, url := consoleDev(t)
	tab := newTab(t)
	visit(t, tab, url, "login")
	waitText(t, tab, "h1", "Log in")
	screenshot(t, tab, "login", true)
	click(t, tab, `a[href$="dev-login"]`)
	waitText(t, tab, "h1", "Dev login")
	for _, org := range []string{devmode.PlatformOrg, devmode.ProviderOrg, devmode.ConsumerOrg, devmode.VendorOrg} {
		if textOf(t, tab, `button[data-dev-org="`+org+`"]`) == "" {
			t.Fatalf("the dev login does not offer demo org %s", org)
		}
	}
	devLogin(t, tab, url, devmode.ProviderOrg)
	waitText(t, tab, "h1", "Organisation "+devmode.ProviderOrg)
	visit(t, tab, url, "home")
	for _, want := range []string{"Scopes", "Access requests", "Audit trail", "Webhooks"} {
		waitText(t, tab, "nav", want)
	}
	if nav := textOf(t, tab, "nav"); strings.Contains(nav, "Prefixes") {
		t.Fatalf("a provider's navigation offers the platform's prefixes: %s", nav)
	}
	screenshot(t, tab, "home", true)
}
