package console_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/portvakt/portvakt/internal/console"
	"github.com/portvakt/portvakt/internal/manage"
	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/rules"
	"github.com/portvakt/portvakt/internal/store"
	"github.com/portvakt/portvakt/internal/store/sqlstore"
)

// The console's security over plain HTTP (no browser): CSRF, cross-origin
// requests, isolation between orgs on every route, session expiry and
// logout, the dev login's absence outside dev mode, the CSP on every page,
// membership checked on every request, and the OpenID Connect login
// against a real provider in the test (mockoidc, with PKCE).

const (
	platform = "310000019"
	provider = "310000027"
	consumer = "310000035"
	vendor   = "310000043"
)

// clock is the console's injected clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is a console served over real HTTP on a real SQLite store.
type env struct {
	t     *testing.T
	srv   *httptest.Server
	url   string // the console's root URL
	db    *sqlstore.Store
	core  *manage.Service
	clock *clock
}

type options struct {
	dev  bool
	oidc *mockoidc.MockOIDC
	// claim is the ID-token claim naming orgs.
	claim string
	// replicas > 1 serves the console from that many instances over the
	// one store, each request going to the next (a load balancer).
	replicas int
}

func newEnv(t *testing.T, o options) *env {
	t.Helper()
	db, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: filepath.Join(t.TempDir(), "c.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: time.Now().UTC()}
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String() + "/"
	st := store.WithStatic(db, records.Builtin(issuer, platform, clk.Now()))
	core, err := manage.New(manage.Config{Issuer: issuer, PlatformOrg: platform, Now: clk.Now, PlatformMembers: []string{"root@example.no"}},
		st, rules.NewCache(st, rules.CacheConfig{}))
	if err != nil {
		t.Fatal(err)
	}
	cfg := console.Config{Issuer: issuer, Now: clk.Now, IdleTimeout: 30 * time.Minute, MaxAge: 12 * time.Hour,
		Log: slog.New(slog.DiscardHandler)}
	if o.dev {
		cfg.DevOrgs = []console.DevOrg{
			{Org: platform, Name: "Platform", Role: console.DevPlatform},
			{Org: provider, Name: "Provider", Role: "provider"},
			{Org: consumer, Name: "Consumer", Role: "consumer"},
			{Org: vendor, Name: "Vendor", Role: "vendor"},
		}
	}
	if o.oidc != nil {
		oc := o.oidc.Config()
		cfg.OIDC = console.OIDC{Issuer: oc.Issuer, ClientID: oc.ClientID, ClientSecret: oc.ClientSecret, OrgsClaim: o.claim}
	}
	var handlers []http.Handler
	for range max(o.replicas, 1) {
		c, err := console.New(cfg, core, st)
		if err != nil {
			t.Fatal(err)
		}
		handlers = append(handlers, c.Handler())
	}
	var next atomic.Int64
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handlers[int(next.Add(1))%len(handlers)].ServeHTTP(w, r)
	})
	srv.Start()
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, url: issuer + "console/", db: db, core: core, clock: clk}
}

// browser is a cookie jar and the CSRF token of the last page it read.
type browser struct {
	e    *env
	c    *http.Client
	csrf string
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// do sends a request and returns the status, the final page and headers;
// it does not follow redirects.
func (b *browser) do(method, path string, form url.Values, hdr ...string) (int, string, http.Header) {
	b.e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.e.url+path, body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	if m := csrfRE.FindSubmatch(page); m != nil {
		b.csrf = string(m[1])
	}
	return resp.StatusCode, string(page), resp.Header
}

func (b *browser) get(path string) (int, string) {
	b.e.t.Helper()
	code, page, _ := b.do("GET", path, nil)
	return code, page
}

// post posts form with the browser's CSRF token.
func (b *browser) post(path string, form url.Values) (int, string) {
	b.e.t.Helper()
	form.Set("csrf_token", b.csrf)
	code, page, _ := b.do("POST", path, form)
	return code, page
}

// devLogin logs in with the dev login as org's dev person, and reads a page
// for the CSRF token.
func (e *env) devLogin(org string) *browser {
	e.t.Helper()
	b := e.browser()
	if code, _, _ := b.do("POST", "dev-login", url.Values{"org": {org}}); code != http.StatusSeeOther {
		e.t.Fatalf("dev login as %s: %d", org, code)
	}
	if code, _ := b.get(""); code != http.StatusOK || b.csrf == "" {
		e.t.Fatalf("home page after dev login: %d", code)
	}
	return b
}

var admin = &manage.Actor{Org: platform, Scopes: []string{records.AdminScope}}

func (e *env) assignPrefix(prefix, owner string) {
	e.t.Helper()
	if _, err := e.core.AssignPrefix(e.t.Context(), admin, prefix, manage.PrefixInput{OwnerOrg: owner}); err != nil {
		e.t.Fatal(err)
	}
}

// all is an actor of org holding every org admin scope.
func all(org string) *manage.Actor { return &manage.Actor{Org: org, Scopes: records.AdminScopes} }

func wantCode(t *testing.T, what string, got, want int) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: status %d, want %d", what, got, want)
	}
}

func TestCSRF(t *testing.T) {
	e := newEnv(t, options{dev: true})
	b := e.devLogin(provider)
	form := func() url.Values {
		return url.Values{"prefix": {"demo"}, "subscope": {"x"}, "description": {"d"}, "visibility": {"PUBLIC"}, "at_max_age": {"0"}}
	}
	e.assignPrefix("demo", provider)
	cases := []struct {
		name string
		hdr  []string
		tok  string
		want int
	}{
		{"fail/no-token", nil, "", http.StatusForbidden},
		{"fail/wrong-token", nil, "AAAA", http.StatusForbidden},
		{"fail/another-sessions-token", nil, e.devLogin(consumer).csrf, http.StatusForbidden},
		{"fail/cross-origin-with-the-token", []string{"Sec-Fetch-Site", "cross-site"}, b.csrf, http.StatusForbidden},
		{"fail/foreign-origin-with-the-token", []string{"Origin", "https://evil.example"}, b.csrf, http.StatusForbidden},
		{"ok/token", nil, b.csrf, http.StatusSeeOther},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := form()
			if tc.tok != "" {
				f.Set("csrf_token", tc.tok)
			}
			code, _, _ := b.do("POST", "scopes/new", f, tc.hdr...)
			wantCode(t, tc.name, code, tc.want)
			_, err := e.db.GetScope(t.Context(), "demo:x")
			if created := err == nil; created != (tc.want == http.StatusSeeOther) {
				t.Fatalf("scope created: %v", created)
			}
		})
	}
	t.Run("ok/htmx-header", func(t *testing.T) {
		f := form()
		f.Set("subscope", "y")
		code, _, _ := b.do("POST", "scopes/new", f, "X-CSRF-Token", b.csrf)
		wantCode(t, "header token", code, http.StatusSeeOther)
	})
}

// A person of one org cannot see or change another org's records through
// any console URL: each is "not found", exactly as a record that does not
// exist, and the store is unchanged.
func TestIsolation(t *testing.T) {
	e := newEnv(t, options{dev: true})
	ctx := t.Context()
	e.assignPrefix("bee", consumer)
	if _, err := e.core.CreateScope(ctx, all(consumer), manage.ScopeInput{Prefix: "bee", Subscope: "api", Description: "B's API"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.core.RequestAccess(ctx, all(vendor), "bee:api", manage.AccessInput{Reason: "please"}); err != nil {
		t.Fatal(err)
	}
	hook, err := e.core.CreateWebhook(ctx, all(consumer), manage.WebhookInput{URL: "https://b.example/hook"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.core.PutMember(ctx, all(consumer), "ola@b.example", manage.MemberInput{Roles: []string{records.AuditRead}}); err != nil {
		t.Fatal(err)
	}
	a := e.devLogin(provider)
	cases := []struct {
		name, method, path string
		form               url.Values
		want               int
	}{
		{"fail/get-scope", "GET", "scopes/bee:api", nil, http.StatusNotFound},
		{"fail/update-scope", "POST", "scopes/bee:api", url.Values{"action": {"update"}, "description": {"mine"}, "visibility": {"PUBLIC"}}, http.StatusNotFound},
		{"fail/deactivate-scope", "POST", "scopes/bee:api", url.Values{"action": {"deactivate"}}, http.StatusNotFound},
		{"fail/grant-on-scope", "POST", "scopes/bee:api", url.Values{"action": {"grant"}, "org": {provider}}, http.StatusNotFound},
		{"fail/remove-from-scope", "POST", "scopes/bee:api", url.Values{"action": {"remove"}, "org": {vendor}}, http.StatusNotFound},
		{"fail/approve-request", "POST", "inbox", url.Values{"decision": {"approve"}, "scope": {"bee:api"}, "org": {vendor}}, http.StatusNotFound},
		{"fail/deny-request", "POST", "inbox", url.Values{"decision": {"deny"}, "scope": {"bee:api"}, "org": {vendor}}, http.StatusNotFound},
		{"fail/get-webhook", "GET", "webhooks/" + hook.ID, nil, http.StatusNotFound},
		{"fail/deactivate-webhook", "POST", "webhooks/" + hook.ID, url.Values{"action": {"deactivate"}}, http.StatusNotFound},
		{"fail/remove-member", "POST", "members", url.Values{"action": {"remove"}, "subject": {"ola@b.example"}}, http.StatusNotFound},
		{"fail/create-scope-under-b-prefix", "POST", "scopes/new", url.Values{"prefix": {"bee"}, "subscope": {"mine"}, "description": {"d"}, "visibility": {"PUBLIC"}}, http.StatusUnprocessableEntity},
		{"fail/prefixes", "GET", "prefixes", nil, http.StatusForbidden},
		{"fail/assign-prefix", "POST", "prefixes", url.Values{"prefix": {"bee"}, "owner_org": {provider}}, http.StatusForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var code int
			var page string
			if tc.method == "GET" {
				code, page = a.get(tc.path)
			} else {
				code, page = a.post(tc.path, tc.form)
			}
			wantCode(t, tc.method+" "+tc.path, code, tc.want)
			if strings.Contains(page, "B&#39;s API") || strings.Contains(page, "b.example/hook") || strings.Contains(page, "ola@b.example") {
				t.Fatalf("the page shows org B's record:\n%s", page)
			}
		})
	}
	t.Run("ok/lists-show-nothing-of-b", func(t *testing.T) {
		for _, path := range []string{"scopes?inactive=true", "inbox", "webhooks?inactive=true", "members", "audit", "audit?target=bee:api&limit=500", "tokens"} {
			code, page := a.get(path)
			wantCode(t, path, code, http.StatusOK)
			if strings.Contains(page, `data-scope="bee:api"`) || strings.Contains(page, `data-request="bee:api`) ||
				strings.Contains(page, "b.example/hook") || strings.Contains(page, "ola@b.example") || strings.Contains(page, `data-action=`) {
				t.Fatalf("%s shows org B's records:\n%s", path, page)
			}
		}
	})
	t.Run("ok/b-unchanged", func(t *testing.T) {
		if sc, err := e.db.GetScope(ctx, "bee:api"); err != nil || !sc.Active || sc.Description != "B's API" {
			t.Fatalf("B's scope %+v (%v)", sc, err)
		}
		if ac, err := e.db.GetAccess(ctx, "bee:api", vendor); err != nil || ac.State != store.AccessRequested {
			t.Fatalf("B's access row %+v (%v)", ac, err)
		}
		if ac, err := e.db.GetAccess(ctx, "bee:api", provider); err == nil {
			t.Fatalf("A put itself on B's allow-list: %+v", ac)
		}
		if h, err := e.db.GetWebhook(ctx, hook.ID); err != nil || !h.Active {
			t.Fatalf("B's webhook %+v (%v)", h, err)
		}
		if _, err := e.db.GetMember(ctx, consumer, "ola@b.example"); err != nil {
			t.Fatalf("B's member: %v", err)
		}
		if _, err := e.db.GetScope(ctx, "bee:mine"); err == nil {
			t.Fatal("A created a scope under B's prefix")
		}
		if p, err := e.db.GetPrefix(ctx, "bee"); err != nil || p.OwnerOrg != consumer {
			t.Fatalf("B's prefix %+v (%v)", p, err)
		}
	})
}

// A session ends when idle for the idle timeout, and at its maximum age
// however busy; logout ends it at once, and its cookie is refused after.
func TestSessionExpiryAndLogout(t *testing.T) {
	e := newEnv(t, options{dev: true})
	t.Run("fail/idle", func(t *testing.T) {
		b := e.devLogin(provider)
		e.clock.advance(29 * time.Minute)
		code, _ := b.get("scopes")
		wantCode(t, "after 29m idle", code, http.StatusOK)
		e.clock.advance(31 * time.Minute)
		code, _, hdr := b.do("GET", "scopes", nil)
		wantCode(t, "after 31m idle", code, http.StatusSeeOther)
		if loc := hdr.Get("Location"); !strings.Contains(loc, "/console/login") {
			t.Fatalf("an expired session went to %q, not the login", loc)
		}
		code, _ = b.post("scopes/new", url.Values{"subscope": {"x"}})
		wantCode(t, "a post after expiry", code, http.StatusUnauthorized)
	})
	t.Run("fail/max-age", func(t *testing.T) {
		b := e.devLogin(provider)
		for range 12 * 3 {
			e.clock.advance(20 * time.Minute)
			code, _ := b.get("")
			if code != http.StatusOK {
				break
			}
		}
		code, _ := b.get("")
		wantCode(t, "after 12h of use", code, http.StatusSeeOther)
	})
	t.Run("ok/logout", func(t *testing.T) {
		b := e.devLogin(provider)
		old := b.c.Jar.Cookies(mustURL(t, e.url))
		code, _ := b.post("logout", url.Values{})
		wantCode(t, "logout", code, http.StatusSeeOther)
		code, _ = b.get("")
		wantCode(t, "after logout", code, http.StatusSeeOther)
		// The old cookie, replayed, is refused: the session is gone.
		replay := e.browser()
		replay.c.Jar.SetCookies(mustURL(t, e.url), old)
		code, _ = replay.get("scopes")
		wantCode(t, "the old cookie", code, http.StatusSeeOther)
	})
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// The dev login exists in dev mode only.
func TestDevLoginOnlyInDevMode(t *testing.T) {
	e := newEnv(t, options{})
	b := e.browser()
	code, _ := b.get("dev-login")
	wantCode(t, "GET dev-login", code, http.StatusNotFound)
	code, _, _ = b.do("POST", "dev-login", url.Values{"org": {provider}})
	wantCode(t, "POST dev-login", code, http.StatusNotFound)
	code, page := b.get("login")
	wantCode(t, "login", code, http.StatusOK)
	if strings.Contains(page, "dev-login") {
		t.Fatal("the login page offers the dev login outside dev mode")
	}
	d := newEnv(t, options{dev: true})
	code, _ = d.browser().get("dev-login")
	wantCode(t, "GET dev-login in dev mode", code, http.StatusOK)
}

// Every page, and every refusal, carries the strict CSP and its siblings.
func TestSecurityHeadersOnEveryPage(t *testing.T) {
	e := newEnv(t, options{dev: true})
	b := e.devLogin(platform)
	paths := []string{"", "login", "dev-login", "orgs", "scopes", "scopes/new", "inbox", "tokens", "audit", "webhooks",
		"members", "prefixes", "catalogue", "requests", "clients", "delegations", "received", "no-such-page", "scopes/none:x",
		"assets/console.css", "assets/htmx.min.js"}
	for _, p := range paths {
		_, _, hdr := b.do("GET", p, nil)
		csp := hdr.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self'",
			"form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'"} {
			if !strings.Contains(csp, want) {
				t.Fatalf("%s: CSP %q lacks %s", p, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe") {
			t.Fatalf("%s: CSP %q allows unsafe code", p, csp)
		}
		if hdr.Get("X-Content-Type-Options") != "nosniff" || hdr.Get("Referrer-Policy") == "" {
			t.Fatalf("%s: headers %v", p, hdr)
		}
	}
	// The cookie: HttpOnly, SameSite=Lax, scoped to the console (Secure
	// only off loopback: this issuer is http on loopback).
	_, _, hdr := e.browser().do("POST", "dev-login", url.Values{"org": {provider}})
	sc := hdr.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Lax", "Path=/console/"} {
		if !strings.Contains(sc, want) {
			t.Fatalf("session cookie %q lacks %s", sc, want)
		}
	}
}

// mockUser is a person at the identity provider, with the orgs claim.
type mockUser struct {
	mockoidc.MockUser
	Orgs any
}

func (u *mockUser) Claims(scope []string, c *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	return &struct {
		*mockoidc.IDTokenClaims
		Email string `json:"email,omitempty"`
		Orgs  any    `json:"orgs,omitempty"`
	}{c, u.Email, u.Orgs}, nil
}

func startOIDC(t *testing.T) *mockoidc.MockOIDC {
	t.Helper()
	m, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	return m
}

// oidcLogin logs user in through the identity provider: the console's
// login, the provider's authorize endpoint, the callback. It returns the
// browser and where the callback sent it.
func (e *env) oidcLogin(m *mockoidc.MockOIDC, user mockoidc.User) (*browser, string) {
	e.t.Helper()
	m.QueueUser(user)
	b := e.browser()
	b.c.CheckRedirect = nil // follow: console -> provider -> callback -> ...
	var last string
	b.c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		last = req.URL.Path
		if strings.HasSuffix(req.URL.Path, "/console/orgs") || len(via) > 10 {
			return http.ErrUseLastResponse
		}
		return nil
	}
	code, _, _ := b.do("GET", "login/oidc", nil)
	b.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if code != http.StatusSeeOther && code != http.StatusOK {
		e.t.Fatalf("oidc login of %s: %d at %s", user.ID(), code, last)
	}
	return b, last
}

func TestOIDCLogin(t *testing.T) {
	m := startOIDC(t)
	e := newEnv(t, options{oidc: m, claim: "orgs"})
	ctx := t.Context()
	for _, org := range []string{provider, consumer} {
		if _, _, err := e.core.PutMember(ctx, all(org), "kari", manage.MemberInput{Roles: []string{records.ScopesRead, records.AuditRead}}); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("ok/member-of-two-orgs-picks-one", func(t *testing.T) {
		b, last := e.oidcLogin(m, &mockUser{MockUser: mockoidc.MockUser{Subject: "kari", Email: "kari@example.no"}})
		if !strings.HasSuffix(last, "/console/orgs") {
			t.Fatalf("the login ended at %s, not the org picker", last)
		}
		code, page := b.get("orgs")
		wantCode(t, "orgs", code, http.StatusOK)
		if !strings.Contains(page, `data-pick-org="`+provider+`"`) || !strings.Contains(page, `data-pick-org="`+consumer+`"`) {
			t.Fatalf("the picker does not offer both orgs:\n%s", page)
		}
		code, _ = b.post("orgs", url.Values{"org": {consumer}})
		wantCode(t, "pick", code, http.StatusSeeOther)
		code, page = b.get("")
		wantCode(t, "home", code, http.StatusOK)
		if !strings.Contains(page, "<strong data-org>"+consumer) || !strings.Contains(page, "kari@example.no") {
			t.Fatalf("home does not show the org and the person:\n%s", page)
		}
		code, _ = b.post("orgs", url.Values{"org": {vendor}})
		wantCode(t, "picking an org not one's own", code, http.StatusNotFound)
		// A removed member loses the org at once: the next request sends
		// the person to pick again, where the other org is left.
		if err := e.core.DeleteMember(ctx, all(consumer), "kari"); err != nil {
			t.Fatal(err)
		}
		code, _, hdr := b.do("GET", "audit", nil)
		wantCode(t, "a page of the org left", code, http.StatusSeeOther)
		if loc := hdr.Get("Location"); !strings.HasSuffix(loc, "/console/orgs") {
			t.Fatalf("went to %q", loc)
		}
		code, _ = b.post("members", url.Values{"action": {"set"}, "subject": {"x"}})
		wantCode(t, "a post for the org left", code, http.StatusNotFound)
	})
	t.Run("fail/not-a-member", func(t *testing.T) {
		b, _ := e.oidcLogin(m, &mockUser{MockUser: mockoidc.MockUser{Subject: "nobody"}})
		code, page := b.get("orgs")
		wantCode(t, "orgs", code, http.StatusForbidden)
		if !strings.Contains(page, "no organisation lists you as a member") {
			t.Fatalf("no clear page:\n%s", page)
		}
		code, _ = b.get("scopes")
		wantCode(t, "a page", code, http.StatusSeeOther)
	})
	t.Run("ok/claim-names-the-org", func(t *testing.T) {
		b, _ := e.oidcLogin(m, &mockUser{MockUser: mockoidc.MockUser{Subject: "claimed"}, Orgs: []any{vendor, "not-an-org"}})
		code, _ := b.get("orgs") // one org: picked at once
		wantCode(t, "orgs", code, http.StatusSeeOther)
		code, page := b.get("")
		wantCode(t, "home", code, http.StatusOK)
		if !strings.Contains(page, "<strong data-org>"+vendor) || !strings.Contains(page, "scopes.read, clients.read, audit.read") {
			t.Fatalf("the claim's org and read roles are not shown:\n%s", page)
		}
		code, _ = b.get("webhooks")
		wantCode(t, "webhooks with read roles", code, http.StatusForbidden)
	})
	t.Run("ok/claim-as-a-number", func(t *testing.T) {
		b, _ := e.oidcLogin(m, &mockUser{MockUser: mockoidc.MockUser{Subject: "numbered"}, Orgs: 310000043})
		b.get("orgs")
		code, page := b.get("")
		wantCode(t, "home", code, http.StatusOK)
		if !strings.Contains(page, "<strong data-org>"+vendor) {
			t.Fatalf("the claim's org is not shown:\n%s", page)
		}
	})
	t.Run("ok/platform-member-from-config", func(t *testing.T) {
		b, _ := e.oidcLogin(m, &mockUser{MockUser: mockoidc.MockUser{Subject: "root@example.no"}})
		b.get("orgs")
		code, _ := b.get("prefixes")
		wantCode(t, "prefixes", code, http.StatusOK)
	})
	t.Run("fail/callback-without-the-login-cookie", func(t *testing.T) {
		code, _ := e.browser().get("callback?code=x&state=y")
		wantCode(t, "callback", code, http.StatusBadRequest)
	})
	t.Run("fail/callback-with-another-state", func(t *testing.T) {
		b := e.browser()
		code, _, hdr := b.do("GET", "login/oidc", nil)
		wantCode(t, "login start", code, http.StatusSeeOther)
		auth, _ := url.Parse(hdr.Get("Location"))
		if q := auth.Query(); q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" || q.Get("state") == "" {
			t.Fatalf("the authorization request lacks PKCE, nonce or state: %s", auth)
		}
		code, _ = b.get("callback?code=x&state=forged")
		wantCode(t, "callback", code, http.StatusBadRequest)
		// The login under way was used up by the forged callback.
		code, _ = b.get("callback?code=x&state=" + url.QueryEscape(auth.Query().Get("state")))
		wantCode(t, "callback again", code, http.StatusBadRequest)
	})
}

// The session cookie is Secure off loopback, and takes the __Host- prefix
// (with Path=/) when the issuer is at the root; under a path it is scoped
// to the console's path.
func TestSessionCookieAttributes(t *testing.T) {
	db, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: filepath.Join(t.TempDir(), "c.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, issuer string
		want         []string
	}{
		{"ok/https-at-the-root", "https://auth.example.no/", []string{"__Host-portvakt_console=", "Path=/;", "Secure", "HttpOnly", "SameSite=Lax"}},
		{"ok/https-under-a-path", "https://auth.example.no/pv/", []string{"portvakt_console=", "Path=/pv/console/", "Secure", "HttpOnly", "SameSite=Lax"}},
		{"ok/http-on-loopback", "http://127.0.0.1:8080/", []string{"portvakt_console=", "Path=/console/", "HttpOnly", "SameSite=Lax"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := store.WithStatic(db, records.Builtin(tc.issuer, platform, time.Now()))
			core, err := manage.New(manage.Config{Issuer: tc.issuer, PlatformOrg: platform}, st, rules.NewCache(st, rules.CacheConfig{}))
			if err != nil {
				t.Fatal(err)
			}
			c, err := console.New(console.Config{Issuer: tc.issuer, DevOrgs: []console.DevOrg{{Org: provider, Name: "P"}}}, core, st)
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(tc.issuer)
			req := httptest.NewRequest("POST", c.Root()+"dev-login", strings.NewReader("org="+provider))
			req.Host = u.Host
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			w := httptest.NewRecorder()
			c.Handler().ServeHTTP(w, req)
			sc := w.Header().Get("Set-Cookie")
			for _, want := range tc.want {
				if !strings.Contains(sc, want) {
					t.Fatalf("Set-Cookie %q lacks %q", sc, want)
				}
			}
			if strings.HasPrefix(tc.issuer, "http:") && strings.Contains(sc, "Secure") {
				t.Fatalf("Set-Cookie %q is Secure on http loopback", sc)
			}
		})
	}
}

// A login started at one replica finishes at another, and the session
// then serves at each: the login state and the sessions live in the store.
func TestLoginAcrossReplicas(t *testing.T) {
	m := startOIDC(t)
	e := newEnv(t, options{oidc: m, replicas: 2})
	if _, _, err := e.core.PutMember(t.Context(), all(provider), "kari", manage.MemberInput{Roles: []string{records.ScopesRead}}); err != nil {
		t.Fatal(err)
	}
	b, last := e.oidcLogin(m, &mockUser{MockUser: mockoidc.MockUser{Subject: "kari"}})
	if !strings.HasSuffix(last, "/console/orgs") {
		t.Fatalf("the login ended at %s", last)
	}
	b.get("orgs")
	for i := range 4 { // two rounds over both replicas
		code, page := b.get("scopes")
		wantCode(t, fmt.Sprintf("scopes, request %d", i), code, http.StatusOK)
		if !strings.Contains(page, "<strong data-org>"+provider) {
			t.Fatalf("request %d does not act for the org", i)
		}
	}
}

// Every page's markup is accessible where a machine can tell: one h1, a
// label for every input, a scope on every table header.
func TestAccessibleMarkup(t *testing.T) {
	e := newEnv(t, options{dev: true})
	e.assignPrefix("demo", provider)
	if _, err := e.core.CreateScope(t.Context(), all(provider), manage.ScopeInput{Prefix: "demo", Subscope: "a", Description: "A"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.core.RequestAccess(t.Context(), all(consumer), "demo:a", manage.AccessInput{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.core.PutMember(t.Context(), all(provider), "kari", manage.MemberInput{Roles: []string{records.AuditRead}}); err != nil {
		t.Fatal(err)
	}
	hook, err := e.core.CreateWebhook(t.Context(), all(provider), manage.WebhookInput{URL: "https://p.example/hook"})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := e.core.CreateClient(t.Context(), all(consumer), manage.ClientInput{ClientName: "c", Description: "C", Scopes: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	p := e.devLogin(provider)
	pl := e.devLogin(platform)
	pages := map[*browser][]string{
		p:                    {"", "scopes", "scopes/new", "scopes/demo:a", "inbox", "tokens", "audit", "webhooks", "webhooks/" + hook.ID, "members"},
		pl:                   {"prefixes"},
		e.devLogin(consumer): {"catalogue", "requests", "clients", "clients/" + cl.ClientID, "delegations"},
		e.devLogin(vendor):   {"received"},
	}
	idRE := regexp.MustCompile(`\bid="([^"]+)"`)
	inputs, headers := 0, 0
	for b, paths := range pages {
		for _, path := range paths {
			code, page := b.get(path)
			wantCode(t, path, code, http.StatusOK)
			if n := strings.Count(page, "<h1"); n != 1 {
				t.Errorf("%s: %d h1", path, n)
			}
			for _, th := range regexp.MustCompile(`<th[ >][^>]*`).FindAllString(page, -1) {
				headers++
				if !strings.Contains(th, "scope=") {
					t.Errorf("%s: table header without scope: %s", path, th)
				}
			}
			for _, in := range regexp.MustCompile(`<(input|select|textarea)\b[^>]*>`).FindAllString(page, -1) {
				if strings.Contains(in, `type="hidden"`) || strings.Contains(in, `type="submit"`) {
					continue
				}
				inputs++
				m := idRE.FindStringSubmatch(in)
				if m == nil || !strings.Contains(page, `<label for="`+m[1]+`"`) {
					t.Errorf("%s: an input without a label: %s", path, in)
				}
			}
		}
	}
	if inputs < 30 || headers < 20 {
		t.Fatalf("checked %d inputs and %d table headers: the pages lack what they should show", inputs, headers)
	}
}
