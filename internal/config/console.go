package config

import (
	"fmt"
	"net/url"
	"time"

	"github.com/portvakt/portvakt/internal/records"
)

// Console configures the web console, under console. Every field works at
// its zero value.
type Console struct {
	// PlatformMembers are the subjects (ids at the console's identity
	// provider) of the people who act for the platform admin org in the
	// console with every admin scope, portvakt:admin included: how the
	// platform is run before anyone is a member. Each is checked as a
	// member's subject is.
	PlatformMembers []string `mapstructure:"platform_members"`
	// OIDC is the identity provider people log in at; without an issuer
	// the console has no OpenID Connect login (the dev login of --dev
	// only).
	OIDC ConsoleOIDC `mapstructure:"oidc"`
	// Session bounds the console's sessions.
	Session ConsoleSession `mapstructure:"session"`
}

// ConsoleOIDC is the console's OpenID Connect login (authorization code
// with PKCE).
type ConsoleOIDC struct {
	Issuer       string `mapstructure:"issuer"`
	ClientID     string `mapstructure:"client_id"`
	ClientSecret string `mapstructure:"client_secret"`
	// OrgsClaim names an ID-token claim holding an org number or a list of
	// them; the person acts for each with ClaimRoles (default: the read
	// roles). Empty: no claim is read, membership alone counts.
	OrgsClaim  string   `mapstructure:"orgs_claim"`
	ClaimRoles []string `mapstructure:"claim_roles"`
}

// ConsoleSession bounds a console session: it ends after IdleTimeout
// unused, and MaxAge after login whatever happens.
type ConsoleSession struct {
	IdleTimeout time.Duration `mapstructure:"idle_timeout"`
	MaxAge      time.Duration `mapstructure:"max_age"`
}

func (c *Console) defaults() {
	if c.Session.IdleTimeout == 0 {
		c.Session.IdleTimeout = 30 * time.Minute
	}
	if c.Session.MaxAge == 0 {
		c.Session.MaxAge = 12 * time.Hour
	}
}

func (c Console) validate(bad func(key, format string, args ...any)) {
	seen := make(map[string]bool, len(c.PlatformMembers))
	for i, s := range c.PlatformMembers {
		key := fmt.Sprintf("console.platform_members[%d]", i)
		for _, e := range records.CheckSubject(key, s) {
			bad(e.Field, "%s", e.Detail)
		}
		if seen[s] {
			bad(key, "%q is listed twice", records.Clip(s))
		}
		seen[s] = true
	}
	o := c.OIDC
	if o.Issuer != "" {
		u, err := url.Parse(o.Issuer)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
			bad("console.oidc.issuer", "must be the identity provider's issuer URL, got %q", records.Clip(o.Issuer))
		case u.Scheme != "https" && !isLoopback(u.Hostname()):
			bad("console.oidc.issuer", "must use https (http only on loopback), got %q", records.Clip(o.Issuer))
		}
		if o.ClientID == "" {
			bad("console.oidc.client_id", "is required with console.oidc.issuer")
		}
	} else if o.ClientID != "" || o.ClientSecret != "" || o.OrgsClaim != "" {
		bad("console.oidc.issuer", "is required when other console.oidc keys are set")
	}
	// The roles a claim gives hold in any org it names: never portvakt:admin.
	for _, e := range records.CheckRoles("console.oidc.claim_roles", o.ClaimRoles, false) {
		bad(e.Field, "%s", e.Detail)
	}
	if c.Session.IdleTimeout < time.Minute {
		bad("console.session.idle_timeout", "must be at least 1m, got %s", c.Session.IdleTimeout)
	}
	if c.Session.MaxAge < c.Session.IdleTimeout {
		bad("console.session.max_age", "must be at least console.session.idle_timeout (%s), got %s", c.Session.IdleTimeout, c.Session.MaxAge)
	}
}
