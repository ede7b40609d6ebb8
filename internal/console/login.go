package console

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/portvakt/portvakt/internal/norid"
	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/store"
)

// loginTTL bounds a login under way: from the redirect to the identity
// provider to the person's return.
const loginTTL = 10 * time.Minute

// loginCookie holds the id of the login under way in this browser, which
// binds the callback to the browser that started the login.
const loginCookie = "portvakt_console_login"

// loginState is a login under way, kept in the store (any replica
// finishes it).
type loginState struct {
	State    string `json:"state"`
	Nonce    string `json:"nonce"`
	Verifier string `json:"verifier"`
	Return   string `json:"return,omitempty"`
}

// oidcLogin is the OpenID Connect login: authorization code with PKCE
// (S256), state and nonce, the ID token verified by go-oidc.
type oidcLogin struct {
	cfg      OIDC
	redirect string
	now      func() time.Time

	mu       sync.Mutex
	provider *oidc.Provider // discovered at the first login, so start-up needs no identity provider
}

func newOIDCLogin(cfg OIDC, redirect string, now func() time.Time) (*oidcLogin, error) {
	if cfg.ClientID == "" {
		return nil, errors.New("console: console.oidc.client_id is required with console.oidc.issuer")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if len(cfg.ClaimRoles) == 0 {
		cfg.ClaimRoles = ReadRoles
	}
	return &oidcLogin{cfg: cfg, redirect: redirect, now: now}, nil
}

// ReadRoles are the roles an org named by the ID-token claim gives by
// default: reading only.
var ReadRoles = []string{records.ScopesRead, records.ClientsRead, records.AuditRead}

func (l *oidcLogin) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, l.cfg.HTTPClient)
}

func (l *oidcLogin) discover(ctx context.Context) (*oidc.Provider, *oauth2.Config, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.provider == nil {
		p, err := oidc.NewProvider(l.ctx(ctx), l.cfg.Issuer)
		if err != nil {
			return nil, nil, fmt.Errorf("console: discover the identity provider %s: %w", l.cfg.Issuer, err)
		}
		l.provider = p
	}
	return l.provider, &oauth2.Config{
		ClientID: l.cfg.ClientID, ClientSecret: l.cfg.ClientSecret, RedirectURL: l.redirect,
		Endpoint: l.provider.Endpoint(), Scopes: []string{oidc.ScopeOpenID, "profile", "email"},
	}, nil
}

func (c *Console) loginRoutes(rt *routes) {
	rt.handle("GET", "login", needNothing, c.loginPage)
	rt.handle("GET", "login/oidc", needNothing, c.loginStart)
	rt.handle("GET", "callback", needNothing, c.callback)
	rt.handle("POST", "logout", needPerson, c.logout)
	rt.handle("GET", "orgs", needPerson, c.orgsPage)
	rt.handle("POST", "orgs", needPerson, c.pickOrg)
	if len(c.cfg.DevOrgs) > 0 {
		rt.handle("GET", "dev-login", needNothing, c.devLoginPage)
		rt.handle("POST", "dev-login", needNothing, c.devLogin)
	}
}

// safeReturn is where to go after login: a path of the console's own, or
// its home.
func (c *Console) safeReturn(ret string) string {
	if !strings.HasPrefix(ret, c.root) || strings.ContainsAny(ret, "\\\r\n") || strings.HasPrefix(ret, "//") {
		return c.root
	}
	return ret
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) error {
	if _, _, err := c.loadSession(r); err == nil {
		http.Redirect(w, r, c.safeReturn(r.URL.Query().Get("return")), http.StatusSeeOther)
		return nil
	}
	ret := c.safeReturn(r.URL.Query().Get("return"))
	return c.ok(w, r, loginView(c.login != nil, len(c.cfg.DevOrgs) > 0, c.root+"login/oidc?return="+url.QueryEscape(ret), r.URL.Query().Has("out")))
}

// loginStart keeps a new login's state, nonce and PKCE verifier in the
// store, binds it to this browser with a cookie and sends the person to
// the identity provider.
func (c *Console) loginStart(w http.ResponseWriter, r *http.Request) error {
	if c.login == nil {
		return errNotFound
	}
	_, oc, err := c.login.discover(r.Context())
	if err != nil {
		return err
	}
	state, _ := newID()
	nonce, _ := newID()
	ls := loginState{State: state, Nonce: nonce, Verifier: oauth2.GenerateVerifier(), Return: c.safeReturn(r.URL.Query().Get("return"))}
	b, err := json.Marshal(ls)
	if err != nil {
		return err
	}
	id, hash := newID()
	now := c.cfg.Now()
	if err := c.sessions.CreateConsoleSession(r.Context(), store.ConsoleSession{
		IDHash: hash, Kind: store.ConsoleSessionLogin, Data: b, Created: now, LastSeen: now, Expires: now.Add(loginTTL),
	}); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: id, Path: c.root, MaxAge: int(loginTTL.Seconds()),
		HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, oc.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(ls.Verifier)), http.StatusSeeOther)
	return nil
}

// errLogin is a login that did not complete; the cause goes to the log.
var errLogin = &consoleError{http.StatusBadRequest, "Login failed",
	"The login could not be completed (it took too long, was started in another browser, or the identity provider refused it). Try again."}

// callback finishes a login: the login under way (single use) must be this
// browser's, the state must match, the code is exchanged with the PKCE
// verifier and the ID token verified, nonce included.
func (c *Console) callback(w http.ResponseWriter, r *http.Request) error {
	if c.login == nil {
		return errNotFound
	}
	ls, err := c.takeLogin(w, r)
	if err != nil {
		c.cfg.Log.Info("console: login refused", "err", err)
		return errLogin
	}
	q := r.URL.Query()
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(ls.State)) != 1 {
		c.cfg.Log.Info("console: login refused", "err", "state does not match")
		return errLogin
	}
	if e := q.Get("error"); e != "" {
		c.cfg.Log.Info("console: login refused by the identity provider", "error", e, "description", q.Get("error_description"))
		return errLogin
	}
	p, oc, err := c.login.discover(r.Context())
	if err != nil {
		return err
	}
	ctx := c.login.ctx(r.Context())
	tok, err := oc.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(ls.Verifier))
	if err != nil {
		c.cfg.Log.Info("console: login refused", "err", fmt.Errorf("code exchange: %w", err))
		return errLogin
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := p.Verifier(&oidc.Config{ClientID: c.login.cfg.ClientID, Now: c.cfg.Now}).Verify(ctx, raw)
	if err != nil {
		c.cfg.Log.Info("console: login refused", "err", fmt.Errorf("id token: %w", err))
		return errLogin
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(ls.Nonce)) != 1 {
		c.cfg.Log.Info("console: login refused", "err", "nonce does not match")
		return errLogin
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return err
	}
	data := sessionData{Name: firstString(claims, "name", "email", "preferred_username")}
	for _, org := range claimOrgs(claims[c.login.cfg.OrgsClaim]) {
		data.Grants = append(data.Grants, grant{Org: org, Roles: slices.Clone(c.login.cfg.ClaimRoles)})
	}
	if len(idt.Subject) == 0 || len(idt.Subject) > 255 {
		return errLogin
	}
	if err := c.startSession(w, r, idt.Subject, "", data); err != nil {
		return err
	}
	http.Redirect(w, r, c.root+"orgs?return="+url.QueryEscape(ls.Return), http.StatusSeeOther)
	return nil
}

// takeLogin reads and deletes the login under way that the browser's
// cookie names: it is used once, whatever comes of it.
func (c *Console) takeLogin(w http.ResponseWriter, r *http.Request) (loginState, error) {
	var ls loginState
	ck, err := r.Cookie(loginCookie)
	if err != nil || len(ck.Value) != 43 {
		return ls, errors.New("no login cookie")
	}
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Path: c.root, MaxAge: -1, HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteLaxMode})
	hash := hashID(ck.Value)
	s, err := c.sessions.GetConsoleSession(r.Context(), hash)
	if err != nil {
		return ls, fmt.Errorf("login state: %w", err)
	}
	if err := c.sessions.DeleteConsoleSession(r.Context(), hash); err != nil {
		return ls, err
	}
	if s.Kind != store.ConsoleSessionLogin || !c.cfg.Now().Before(s.Expires) {
		return ls, errors.New("login state expired")
	}
	return ls, json.Unmarshal(s.Data, &ls)
}

// claimOrgs reads the orgs claim: an org number or a list of them, as
// strings or numbers; anything that is not a valid org is left out.
func claimOrgs(v any) []string {
	var raw []any
	switch v := v.(type) {
	case []any:
		raw = v
	case nil:
	default:
		raw = []any{v}
	}
	var out []string
	for _, x := range raw {
		var s string
		switch x := x.(type) {
		case string:
			s = x
		case float64:
			s = fmt.Sprintf("%09.0f", x)
		}
		if norid.ValidOrg(s) && !slices.Contains(out, s) {
			out = append(out, s)
		}
		if len(out) == 100 {
			break
		}
	}
	return out
}

func firstString(claims map[string]any, names ...string) string {
	for _, n := range names {
		if s, ok := claims[n].(string); ok && s != "" {
			if r := []rune(s); len(r) > 200 {
				s = string(r[:200])
			}
			return s
		}
	}
	return ""
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) error {
	if err := c.sessions.DeleteConsoleSession(r.Context(), stateOf(r).sess.IDHash); err != nil {
		return err
	}
	http.SetCookie(w, c.sessionCookie("", -1))
	http.Redirect(w, r, c.root+"login?out", http.StatusSeeOther)
	return nil
}

// orgsPage lets a person in several orgs pick one; one org is picked at
// once, none is a page that says so.
func (c *Console) orgsPage(w http.ResponseWriter, r *http.Request) error {
	st := stateOf(r)
	ret := c.safeReturn(r.URL.Query().Get("return"))
	if len(st.page.Orgs) == 1 && st.sess.Org == "" {
		if err := c.setOrg(r, st, st.page.Orgs[0].Org); err != nil {
			return err
		}
		http.Redirect(w, r, ret, http.StatusSeeOther)
		return nil
	}
	if len(st.page.Orgs) == 0 {
		return c.render(w, r, http.StatusForbidden, notMemberView())
	}
	return c.ok(w, r, orgsView(st.page.Orgs, ret))
}

func (c *Console) pickOrg(w http.ResponseWriter, r *http.Request) error {
	st := stateOf(r)
	org := r.PostFormValue("org")
	if !slices.ContainsFunc(st.page.Orgs, func(g grant) bool { return g.Org == org }) {
		return errNotFound
	}
	if err := c.setOrg(r, st, org); err != nil {
		return err
	}
	http.Redirect(w, r, c.safeReturn(r.PostFormValue("return")), http.StatusSeeOther)
	return nil
}

func (c *Console) setOrg(r *http.Request, st *requestState, org string) error {
	s := st.sess
	s.Org = org
	return c.sessions.UpdateConsoleSession(r.Context(), s)
}

func (c *Console) devLoginPage(w http.ResponseWriter, r *http.Request) error {
	return c.ok(w, r, devLoginView(c.cfg.DevOrgs))
}

// devLogin logs in as a dev person of the demo org picked, with every admin
// role of that org. It exists only in dev mode.
func (c *Console) devLogin(w http.ResponseWriter, r *http.Request) error {
	org := r.PostFormValue("org")
	i := slices.IndexFunc(c.cfg.DevOrgs, func(d DevOrg) bool { return d.Org == org })
	if i < 0 {
		return errNotFound
	}
	d := c.cfg.DevOrgs[i]
	data := sessionData{Name: "Dev person of " + d.Name, Grants: []grant{{Org: d.Org, Roles: allRoles(d.Role == DevPlatform)}}}
	if err := c.startSession(w, r, "dev:"+d.Org, d.Org, data); err != nil {
		return err
	}
	http.Redirect(w, r, c.root, http.StatusSeeOther)
	return nil
}

// DevPlatform is the Role of the demo platform admin org.
const DevPlatform = "platform"
