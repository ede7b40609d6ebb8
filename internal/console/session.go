package console

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/portvakt/portvakt/internal/manage"
	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/store"
)

// sessionData is what a person's session keeps besides its columns.
type sessionData struct {
	// Name is how the person is shown (the ID token's name or email).
	Name string `json:"name,omitempty"`
	// Grants are orgs the login itself gave: those an ID-token claim
	// named, or the dev login's org. The members of an org are read
	// again on every request instead.
	Grants []grant `json:"grants,omitempty"`
}

// grant is an org a person acts for, with the roles (admin scopes) held.
type grant struct {
	Org   string   `json:"org"`
	Roles []string `json:"roles"`
}

// pageInfo is what every page knows of its request: the session, the org
// acted for, the CSRF token. The layout and the form helpers read it from
// the context.
type pageInfo struct {
	Root    string // the console's root path
	CSRF    string
	Person  string // the person's name, or subject
	Subject string
	Org     string
	Roles   []string
	// Orgs are every org the person may act for.
	Orgs []grant
	Path string // the request's path, for aria-current
}

// may reports whether the person holds one of need in the org acted for.
func (p *pageInfo) may(need manage.Need) bool {
	return slices.ContainsFunc(need, func(s string) bool { return slices.Contains(p.Roles, s) })
}

// requestState is a logged-in request's session.
type requestState struct {
	sess  store.ConsoleSession
	data  sessionData
	actor *manage.Actor
	page  *pageInfo
}

type stateKey struct{}

func stateOf(r *http.Request) *requestState {
	st, _ := r.Context().Value(stateKey{}).(*requestState)
	return st
}

// actor is the person acting for the org picked: what every page hands
// the core. Only routes registered with get or post have one.
func actor(r *http.Request) *manage.Actor {
	if st := stateOf(r); st != nil && st.actor != nil {
		return st.actor
	}
	return &manage.Actor{} // holds nothing: the core refuses it
}

// newID returns a random 256-bit id, base64url, and its SHA-256 (hex): the
// id goes to the browser, the hash to the store.
func newID() (id, hash string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	id = base64.RawURLEncoding.EncodeToString(b)
	return id, hashID(id)
}

func hashID(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:])
}

// csrfToken is the session's synchronizer token: derived from the cookie's
// id, which only the browser holds, so the store keeps nothing more and a
// copy of the table forges no form.
func csrfToken(id string) string {
	h := sha256.Sum256([]byte("portvakt console csrf\x00" + id))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// expiry is when a session seen at seen expires: idle timeout or absolute
// lifetime, whichever comes first.
func (c *Console) expiry(created, seen time.Time) time.Time {
	idle, abs := seen.Add(c.cfg.IdleTimeout), created.Add(c.cfg.MaxAge)
	if abs.Before(idle) {
		return abs
	}
	return idle
}

// touchEvery is how stale LastSeen may get before a request writes it: a
// page view costs a write at most this often.
func (c *Console) touchEvery() time.Duration {
	return min(time.Minute, c.cfg.IdleTimeout/10)
}

// startSession stores a new person session and sets its cookie.
func (c *Console) startSession(w http.ResponseWriter, r *http.Request, subject, org string, data sessionData) error {
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	id, hash := newID()
	now := c.cfg.Now()
	if err := c.sessions.CreateConsoleSession(r.Context(), store.ConsoleSession{
		IDHash: hash, Kind: store.ConsoleSessionPerson, Subject: subject, Org: org, Data: b,
		Created: now, LastSeen: now, Expires: c.expiry(now, now),
	}); err != nil {
		return err
	}
	http.SetCookie(w, c.sessionCookie(id, int(c.cfg.MaxAge.Seconds())))
	return nil
}

func (c *Console) sessionCookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: c.cookie, Value: value, Path: c.cookiePath, MaxAge: maxAge,
		HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteLaxMode}
}

// loadSession reads the request's live person session: ErrNotFound when
// there is none (no cookie, logged out, expired).
func (c *Console) loadSession(r *http.Request) (store.ConsoleSession, string, error) {
	ck, err := r.Cookie(c.cookie)
	if err != nil || len(ck.Value) != 43 {
		return store.ConsoleSession{}, "", store.ErrNotFound
	}
	s, err := c.sessions.GetConsoleSession(r.Context(), hashID(ck.Value))
	if err != nil {
		return s, "", err
	}
	if s.Kind != store.ConsoleSessionPerson || !c.cfg.Now().Before(s.Expires) {
		return s, "", store.ErrNotFound
	}
	return s, ck.Value, nil
}

// withSession loads the person's session and the orgs they act for
// (checked again on every request, so a removed member loses the org at
// once), and, when needOrg, the org picked. It returns the request with
// the session in its context, or nil after redirecting: to log in when
// there is no session, to the org picker when the org is gone.
func (c *Console) withSession(w http.ResponseWriter, r *http.Request, needOrg bool) (*http.Request, error) {
	s, id, err := c.loadSession(r)
	if errors.Is(err, store.ErrNotFound) {
		if r.Method != http.MethodGet {
			return r, errLoggedOut
		}
		c.toLogin(w, r)
		return nil, nil
	}
	if err != nil {
		return r, err
	}
	var data sessionData
	if len(s.Data) > 0 {
		if err := json.Unmarshal(s.Data, &data); err != nil {
			return r, err
		}
	}
	orgs, err := c.orgsOf(r.Context(), s.Subject, data.Grants)
	if err != nil {
		return r, err
	}
	now := c.cfg.Now()
	i := slices.IndexFunc(orgs, func(g grant) bool { return g.Org == s.Org })
	if s.Org != "" && i < 0 {
		s.Org = "" // no longer a member: pick again
		s.LastSeen = time.Time{}
	}
	if now.Sub(s.LastSeen) >= c.touchEvery() {
		s.LastSeen, s.Expires = now, c.expiry(s.Created, now)
		if err := c.sessions.UpdateConsoleSession(r.Context(), s); err != nil {
			return r, err
		}
	}
	name := data.Name
	if name == "" {
		name = s.Subject
	}
	st := &requestState{sess: s, data: data, page: &pageInfo{
		Root: c.root, CSRF: csrfToken(id), Person: name, Subject: s.Subject, Org: s.Org, Orgs: orgs, Path: r.URL.Path,
	}}
	if s.Org != "" {
		st.page.Roles = orgs[i].Roles
		st.actor = &manage.Actor{Org: s.Org, Scopes: slices.Clone(orgs[i].Roles)}
		withPerson(st.actor, s.Subject)
	}
	if needOrg && s.Org == "" {
		if r.Method != http.MethodGet {
			return r, errNotFound
		}
		http.Redirect(w, r, c.root+"orgs", http.StatusSeeOther)
		return nil, nil
	}
	ctx := context.WithValue(r.Context(), stateKey{}, st)
	ctx = context.WithValue(ctx, pageKey, st.page)
	return r.WithContext(ctx), nil
}

// toLogin sends a person without a session to log in, and back to where
// they were going afterwards.
func (c *Console) toLogin(w http.ResponseWriter, r *http.Request) {
	to := c.root + "login"
	if r.URL.Path != c.root {
		to += "?return=" + url.QueryEscape(r.URL.RequestURI())
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// checkCSRF refuses a state-changing request without the session's token
// (the form's csrf_token, or the X-CSRF-Token header htmx sends).
func (c *Console) checkCSRF(r *http.Request) error {
	st := stateOf(r)
	if st == nil {
		return errCSRF
	}
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		// A form over the body's bound is refused as too large (413), not
		// as a stale form: its token may lie past the bound.
		if err := r.ParseMultipartForm(maxBody); err != nil {
			if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
				return err
			}
		}
		got = r.PostFormValue("csrf_token") // "" when the body is not a form
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(st.page.CSRF)) != 1 {
		return errCSRF
	}
	return nil
}

// orgsOf are the orgs a person acts for, with their roles: the core's
// memberships and the login's grants, an org named twice holding the
// union of its roles, in a stable order.
func (c *Console) orgsOf(ctx context.Context, subject string, grants []grant) ([]grant, error) {
	members, err := c.memberships(ctx, subject)
	if err != nil {
		return nil, err
	}
	var out []grant
	for _, g := range append(members, grants...) {
		i := slices.IndexFunc(out, func(o grant) bool { return o.Org == g.Org })
		if i < 0 {
			out = append(out, grant{Org: g.Org, Roles: slices.Clone(g.Roles)})
			continue
		}
		for _, role := range g.Roles {
			if !slices.Contains(out[i].Roles, role) {
				out[i].Roles = append(out[i].Roles, role)
			}
		}
	}
	for i := range out {
		slices.SortFunc(out[i].Roles, roleOrder)
	}
	slices.SortFunc(out, func(a, b grant) int { return cmp.Compare(a.Org, b.Org) })
	return out, nil
}

// roleOrder lists roles as the admin scopes are listed, portvakt:admin
// first.
func roleOrder(a, b string) int {
	rank := func(s string) int {
		if s == records.AdminScope {
			return -1
		}
		if i := slices.Index(records.AdminScopes, s); i >= 0 {
			return i
		}
		return len(records.AdminScopes)
	}
	return rank(a) - rank(b)
}

// allRoles are every admin role an org can hold (portvakt:admin only the
// platform org): the dev login's grant.
func allRoles(platform bool) []string {
	roles := slices.Clone(records.AdminScopes)
	if platform {
		roles = append([]string{records.AdminScope}, roles...)
	}
	return roles
}
