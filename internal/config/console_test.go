package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestConsolePlatformMembers(t *testing.T) {
	t.Run("ok/none", func(t *testing.T) {
		c, err := Parse(nil, "", true)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Console.PlatformMembers) != 0 {
			t.Fatalf("default %v", c.Console.PlatformMembers)
		}
	})
	t.Run("ok/file", func(t *testing.T) {
		c, err := Parse([]byte("platform: {org: \"310000019\"}\nconsole:\n  platform_members: [kari@example.no, \"auth0|5f7c8ec7\"]\n"), "", true)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if want := []string{"kari@example.no", "auth0|5f7c8ec7"}; !slices.Equal(c.Console.PlatformMembers, want) {
			t.Fatalf("parsed %v, want %v", c.Console.PlatformMembers, want)
		}
	})
	t.Run("ok/environment", func(t *testing.T) {
		t.Setenv("PORTVAKT_CONSOLE_PLATFORM_MEMBERS", "kari@example.no,ola@example.no")
		c, err := Parse(nil, "", true)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"kari@example.no", "ola@example.no"}; !slices.Equal(c.Console.PlatformMembers, want) {
			t.Fatalf("parsed %v, want %v", c.Console.PlatformMembers, want)
		}
	})
	for _, tc := range []struct {
		name, yaml, key string
	}{
		{"fail/empty", "console:\n  platform_members: [kari, \"\"]\n", "console.platform_members[1]"},
		{"fail/control", "console:\n  platform_members: [\"kari\\u0007\"]\n", "console.platform_members[0]"},
		{"fail/bidi", "console:\n  platform_members: [\"kari\\u202e\"]\n", "console.platform_members[0]"},
		{"fail/too-long", "console:\n  platform_members: [" + strings.Repeat("a", 256) + "]\n", "console.platform_members[0]"},
		{"fail/twice", "console:\n  platform_members: [kari, ola, kari]\n", "console.platform_members[2]"},
	} {
		t.Run(tc.name, func(t *testing.T) { wantProblem(t, tc.yaml, tc.key) })
	}
}

func TestConsoleLoginAndSessions(t *testing.T) {
	t.Run("ok/defaults", func(t *testing.T) {
		c, err := Parse(nil, "", true)
		if err != nil {
			t.Fatal(err)
		}
		if c.Console.Session.IdleTimeout != 30*time.Minute || c.Console.Session.MaxAge != 12*time.Hour || c.Console.OIDC.Issuer != "" {
			t.Fatalf("defaults %+v", c.Console)
		}
	})
	t.Run("ok/environment", func(t *testing.T) {
		t.Setenv("PORTVAKT_CONSOLE_OIDC_ISSUER", "https://login.example.no/")
		t.Setenv("PORTVAKT_CONSOLE_OIDC_CLIENT_ID", "portvakt")
		t.Setenv("PORTVAKT_CONSOLE_OIDC_CLIENT_SECRET", "s3cret")
		t.Setenv("PORTVAKT_CONSOLE_OIDC_ORGS_CLAIM", "orgno")
		t.Setenv("PORTVAKT_CONSOLE_OIDC_CLAIM_ROLES", "portvakt:scopes.read,portvakt:scopes.write")
		t.Setenv("PORTVAKT_CONSOLE_SESSION_IDLE_TIMEOUT", "10m")
		c, err := Parse([]byte("platform: {org: \"310000019\"}\n"), "", true)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		o := c.Console.OIDC
		if o.Issuer != "https://login.example.no/" || o.ClientID != "portvakt" || o.ClientSecret != "s3cret" || o.OrgsClaim != "orgno" ||
			!slices.Equal(o.ClaimRoles, []string{"portvakt:scopes.read", "portvakt:scopes.write"}) || c.Console.Session.IdleTimeout != 10*time.Minute {
			t.Fatalf("parsed %+v", c.Console)
		}
	})
	for _, tc := range []struct {
		name, yaml, key string
	}{
		{"fail/issuer-not-https", "console:\n  oidc: {issuer: \"http://login.example.no/\", client_id: x}\n", "console.oidc.issuer"},
		{"fail/issuer-not-a-url", "console:\n  oidc: {issuer: \"login\", client_id: x}\n", "console.oidc.issuer"},
		{"fail/no-client-id", "console:\n  oidc: {issuer: \"https://login.example.no/\"}\n", "console.oidc.client_id"},
		{"fail/client-id-without-issuer", "console:\n  oidc: {client_id: x}\n", "console.oidc.issuer"},
		{"fail/claim-role-not-an-org-scope", "console:\n  oidc: {claim_roles: [\"portvakt:admin\"]}\n", "console.oidc.claim_roles[0]"},
		{"fail/idle-too-short", "console:\n  session: {idle_timeout: 10s}\n", "console.session.idle_timeout"},
		{"fail/max-age-under-idle", "console:\n  session: {idle_timeout: 1h, max_age: 30m}\n", "console.session.max_age"},
	} {
		t.Run(tc.name, func(t *testing.T) { wantProblem(t, tc.yaml, tc.key) })
	}
	t.Run("ok/http-issuer-on-loopback", func(t *testing.T) {
		c, err := Parse([]byte("platform: {org: \"310000019\"}\nconsole:\n  oidc: {issuer: \"http://127.0.0.1:5556/\", client_id: x}\n"), "", true)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
	})
}
