package main

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/portvakt/portvakt/internal/devmode"
	"github.com/portvakt/portvakt/internal/manage"
	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/store"
)

// oidcUser is a person at the test's identity provider.
type oidcUser struct{ mockoidc.MockUser }

func (u *oidcUser) Claims(_ []string, c *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	return &struct {
		*mockoidc.IDTokenClaims
		Name string `json:"name"`
	}{c, u.PreferredUsername}, nil
}

// The OpenID Connect login in the browser, against a real provider in the
// test (mockoidc, authorization code with PKCE): a member of two orgs logs
// in, picks one at the org picker and acts for it; the store holds the
// session under the SHA-256 of the cookie.
func TestConsoleOIDCLogin(t *testing.T) {
	chromiumPath(t)
	m, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	oc := m.Config()
	t.Setenv("PORTVAKT_CONSOLE_OIDC_ISSUER", oc.Issuer)
	t.Setenv("PORTVAKT_CONSOLE_OIDC_CLIENT_ID", oc.ClientID)
	t.Setenv("PORTVAKT_CONSOLE_OIDC_CLIENT_SECRET", oc.ClientSecret)
	_, a, url := consoleDev(t)
	ctx := t.Context()
	for _, org := range []string{devmode.ProviderOrg, devmode.ConsumerOrg} {
		if _, _, err := a.core.PutMember(ctx, &manage.Actor{Org: org, Scopes: records.AdminScopes}, "kari-1",
			manage.MemberInput{Roles: []string{records.ScopesRead, records.ScopesWrite, records.AuditRead}}); err != nil {
			t.Fatal(err)
		}
	}
	m.QueueUser(&oidcUser{mockoidc.MockUser{Subject: "kari-1", PreferredUsername: "Kari Nordmann"}})
	tab := newTab(t)
	visit(t, tab, url+"scopes", "login")
	waitText(t, tab, "h1", "Log in")
	click(t, tab, `a[href*="login/oidc"]`)
	waitText(t, tab, "h1", "Pick an organisation")
	pageLoad(t, tab, "orgs")
	screenshot(t, tab, "orgs", true)
	click(t, tab, `button[data-pick-org="`+devmode.ProviderOrg+`"]`)
	// Back where the person was going, acting for the org picked.
	waitText(t, tab, "h1", "Scopes")
	waitText(t, tab, "[data-org]", devmode.ProviderOrg)
	waitText(t, tab, "header", "Kari Nordmann")
	id := cookie(t, tab, url, "portvakt_console")
	h := sha256.Sum256([]byte(id))
	s, err := a.store.GetConsoleSession(ctx, hex.EncodeToString(h[:]))
	if err != nil || s.Subject != "kari-1" || s.Org != devmode.ProviderOrg || s.Kind != store.ConsoleSessionPerson {
		t.Fatalf("stored session %+v (%v)", s, err)
	}
	// Logging out ends it in the store too.
	click(t, tab, `header button`)
	waitText(t, tab, "main", "You are logged out.")
	if _, err := a.store.GetConsoleSession(ctx, hex.EncodeToString(h[:])); err == nil {
		t.Fatal("the session is still stored after logout")
	}
}
