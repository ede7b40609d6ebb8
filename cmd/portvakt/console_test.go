package main

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/portvakt/portvakt/internal/devmode"
	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/store"
)

// The dev login: console/ sends a person without a session to log in; the
// dev login lists the demo orgs and logs in as a dev person of the one
// picked, whose home page shows what the org's roles allow. htmx runs
// under the CSP and loads the navigation's pages in place.
func TestConsoleDevLogin(t *testing.T) {
	_, a, url := consoleDev(t)
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
	for _, want := range []string{"Scopes", "Access requests", "Audit trail", "Webhooks", "Members"} {
		waitText(t, tab, "nav", want)
	}
	if nav := textOf(t, tab, "nav"); strings.Contains(nav, "Prefixes") {
		t.Fatalf("a provider's navigation offers the platform's prefixes: %s", nav)
	}
	screenshot(t, tab, "home", true)

	// A link of the navigation loads in place: the document (its
	// navigation entry) stays the home page's while the address changes.
	click(t, tab, `nav a[href$="/audit"]`)
	waitText(t, tab, "h1", "Audit trail")
	inPlace, err := chromedp.Run(tab, chromedp.Evaluate[bool](`typeof htmx === "object" &&
		performance.getEntriesByType("navigation")[0].name.endsWith("/console/") && location.pathname.endsWith("/console/audit")`))
	if err != nil || !inPlace {
		t.Fatalf("the navigation did not load in place with htmx (%v)", err)
	}

	id := cookie(t, tab, url, "portvakt_console")
	h := sha256.Sum256([]byte(id))
	s, err := a.store.GetConsoleSession(t.Context(), hex.EncodeToString(h[:]))
	if err != nil || s.Subject != "dev:"+devmode.ProviderOrg || s.Org != devmode.ProviderOrg || !strings.Contains(string(s.Data), records.MembersWrite) ||
		s.Kind != store.ConsoleSessionPerson || !s.Expires.After(s.LastSeen) {
		t.Fatalf("stored session %+v (%v)", s, err)
	}
}
