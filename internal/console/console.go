package console

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/a-h/templ"

	"github.com/portvakt/portvakt/internal/manage"
	"github.com/portvakt/portvakt/internal/store"
)

//go:embed assets/htmx.min.js assets/console.css
var assets embed.FS

// Config is the console's own configuration. Every field but Issuer works
// at its zero value.
type Config struct {
	// Issuer is the server's issuer URL: the console lives at
	// {Issuer}console/.
	Issuer string
	// OIDC is the identity provider people log in at; without an issuer
	// the console has no OpenID Connect login (only the dev login, in dev
	// mode).
	OIDC OIDC
	// DevOrgs are the demo orgs the dev login offers. The dev login exists
	// only when they are set (serve --dev).
	DevOrgs []DevOrg
	// IdleTimeout ends a session not used for that long (default 30m);
	// MaxAge ends any session that long after login (default 12h).
	IdleTimeout time.Duration
	MaxAge      time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Log receives what goes wrong (default slog.Default()).
	Log *slog.Logger
}

// OIDC is the OpenID Connect login.
type OIDC struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	// OrgsClaim names an ID-token claim holding an org number or a list of
	// them: the person acts for each with ClaimRoles (default the read
	// roles only). Empty: no claim is read.
	OrgsClaim  string
	ClaimRoles []string
	// HTTPClient talks to the identity provider (default
	// http.DefaultClient).
	HTTPClient *http.Client
}

// DevOrg is a demo org the dev login offers.
type DevOrg struct {
	Org  string
	Name string
	// Role says what the org is in the demo: platform, provider, consumer
	// or vendor.
	Role string
}

// Console serves the web console.
type Console struct {
	cfg      Config
	core     *manage.Service
	sessions store.ConsoleSessions
	// root is the console's path, "/console/" under an issuer at "/".
	root string
	// secure marks the cookies Secure: everywhere but http on loopback.
	secure bool
	// cookie is the session cookie's name and path.
	cookie, cookiePath string
	login              *oidcLogin // nil without OIDC
}

// New returns the console over the core and the session store.
func New(cfg Config, core *manage.Service, sessions store.ConsoleSessions) (*Console, error) {
	u, err := url.Parse(cfg.Issuer)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("console: issuer %q is not a URL", cfg.Issuer)
	}
	if core == nil || sessions == nil {
		return nil, errors.New("console: the core and the session store are required")
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 30 * time.Minute
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 12 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	c := &Console{cfg: cfg, core: core, sessions: sessions}
	base := strings.TrimSuffix(u.Path, "/")
	c.root = base + "/console/"
	c.secure = u.Scheme == "https" || !isLoopback(u.Hostname())
	// The __Host- prefix binds the cookie to this host and needs Path=/:
	// worth its wider path when the issuer is at the root.
	c.cookie, c.cookiePath = "portvakt_console", c.root
	if c.secure && base == "" {
		c.cookie, c.cookiePath = "__Host-portvakt_console", "/"
	}
	if cfg.OIDC.Issuer != "" {
		if c.login, err = newOIDCLogin(cfg.OIDC, cfg.Issuer+"console/callback", cfg.Now); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Root is the console's path under the issuer's host, "/console/" for an
// issuer at "/".
func (c *Console) Root() string { return c.root }

// Handler serves every console route: mount it at Root.
func (c *Console) Handler() http.Handler {
	rt := &routes{c: c, mux: http.NewServeMux()}
	c.loginRoutes(rt)
	c.homeRoutes(rt)
	c.providerRoutes(rt)
	c.consumerRoutes(rt)
	c.vendorRoutes(rt)
	c.everyoneRoutes(rt)
	c.adminRoutes(rt)
	static, _ := fs.Sub(assets, "assets")
	rt.mux.Handle("GET "+c.root+"assets/", http.StripPrefix(c.root+"assets/", assetHandler(http.FileServerFS(static))))
	rt.mux.Handle(c.root, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, errNotFound)
	}))
	cop := http.NewCrossOriginProtection()
	return securityHeaders(cop.Handler(bounded(rt.mux)))
}

// maxBody bounds a request body: a form, or a key upload of at most 64 KiB
// with its fields.
const maxBody = 256 << 10

func bounded(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		h.ServeHTTP(w, r)
	})
}

// csp allows scripts, styles and images from the console's own assets
// only, and requests (htmx) to itself.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", csp)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("X-Frame-Options", "DENY")
		h.ServeHTTP(w, r)
	})
}

func assetHandler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		h.ServeHTTP(w, r)
	})
}

// handler is a console route: it writes its page or returns an error,
// which fail presents.
type handler func(w http.ResponseWriter, r *http.Request) error

// routes registers the console's routes, each under the console's root
// and behind what it needs.
type routes struct {
	c   *Console
	mux *http.ServeMux
}

// get and post register a page of an org: the person is logged in and
// acts for an org (actor(r)); a post also carries the CSRF token. path is
// relative to the console's root ("scopes/{name}").
func (rt *routes) get(path string, h handler)  { rt.handle("GET", path, needOrg, h) }
func (rt *routes) post(path string, h handler) { rt.handle("POST", path, needOrg, h) }

// What a route needs of the session.
const (
	needNothing = iota // no session (login pages, assets)
	needPerson         // a logged-in person, org or not (the org picker, logout)
	needOrg            // a person acting for an org
)

func (rt *routes) handle(method, path string, need int, h handler) {
	c := rt.c
	rt.mux.Handle(method+" "+c.root+path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if need != needNothing {
			var err error
			r, err = c.withSession(w, r, need == needOrg)
			if err != nil {
				c.fail(w, r, err)
				return
			}
			if r == nil { // redirected to log in or to pick an org
				return
			}
			if method != "GET" {
				if err := c.checkCSRF(r); err != nil {
					c.fail(w, r, err)
					return
				}
			}
		}
		if err := h(w, r); err != nil {
			c.fail(w, r, err)
		}
	}))
}

// consoleError is a refusal of the console's own (not the core's), with
// its status and public text.
type consoleError struct {
	status int
	title  string
	detail string
}

func (e *consoleError) Error() string { return e.title + ": " + e.detail }

var (
	errNotFound = &consoleError{http.StatusNotFound, "Not found",
		"There is no such page, or it is not yours to see."}
	errCSRF = &consoleError{http.StatusForbidden, "Refused",
		"The form was stale or did not come from this console. Go back, reload the page and try again."}
	errLoggedOut = &consoleError{http.StatusUnauthorized, "Logged out",
		"Your session has ended. Log in again."}
)

// fail presents err: the core's refusals as the person should see them
// (another org's record as "not found"), anything else as a server error
// whose cause only the log sees.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ce *consoleError
	var me *manage.Error
	switch {
	case errors.As(err, &ce):
	case errors.As(err, &me):
		switch me.Kind {
		case manage.NotFound, manage.Forbidden:
			ce = errNotFound
		case manage.InsufficientScope:
			ce = &consoleError{http.StatusForbidden, "Not allowed",
				fmt.Sprintf("Your role in this organisation does not allow this: it needs %s.", strings.Join(me.Need, " or "))}
		case manage.Conflict:
			ce = &consoleError{http.StatusConflict, "Not possible now", me.Detail}
		default:
			ce = &consoleError{http.StatusBadRequest, "Not accepted", me.Error()}
		}
	case errors.Is(err, store.ErrUnavailable):
		c.cfg.Log.Warn("console: store unavailable", "path", r.URL.Path, "err", err)
		ce = &consoleError{http.StatusServiceUnavailable, "Unavailable", "The console cannot reach its database just now. Try again in a moment."}
	case errors.Is(err, store.ErrReadOnly):
		ce = &consoleError{http.StatusConflict, "Declared in configuration",
			"This record is declared in the server's configuration file and cannot be changed here."}
	default:
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			ce = &consoleError{http.StatusRequestEntityTooLarge, "Too large", fmt.Sprintf("The form is larger than %d KiB.", maxBody>>10)}
			break
		}
		c.cfg.Log.Error("console: request failed", "path", r.URL.Path, "err", err)
		ce = &consoleError{http.StatusInternalServerError, "Something went wrong", "The console could not do this. Try again; if it keeps failing, tell the operator."}
	}
	if isHTMX(r) {
		// htmx swaps nothing on an error status: the whole page goes.
		w.Header().Set("HX-Reswap", "none")
	}
	_ = c.render(w, r, ce.status, errorPage(ce.title, ce.detail))
}

// render writes a page with status.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page templ.Component) error {
	var buf bytes.Buffer
	if err := page.Render(r.Context(), &buf); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if isHTMX(r) {
		if r.Method == http.MethodGet && status < 300 {
			// A boosted link or a redirect followed by htmx: the address bar
			// shows the page's own URL.
			w.Header().Set("HX-Push-Url", r.URL.RequestURI())
		} else {
			w.Header().Set("HX-Push-Url", "false")
		}
	}
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// ok renders a page with 200.
func (c *Console) ok(w http.ResponseWriter, r *http.Request, page templ.Component) error {
	return c.render(w, r, http.StatusOK, page)
}

// refused renders a form page again with its problems: 422, which htmx
// swaps in (see htmxConfig).
func (c *Console) refused(w http.ResponseWriter, r *http.Request, page templ.Component) error {
	return c.render(w, r, http.StatusUnprocessableEntity, page)
}

// redirect ends a successful POST: 303 to path (relative to the console's
// root, with its query), which htmx follows in place.
func (c *Console) redirect(w http.ResponseWriter, r *http.Request, path string) error {
	http.Redirect(w, r, c.root+path, http.StatusSeeOther)
	return nil
}

func isHTMX(r *http.Request) bool { return r.Header.Get("HX-Request") == "true" }

// requestContext carries the request's session to the components.
type ctxKey int

const pageKey ctxKey = 0

func pageFrom(ctx context.Context) *pageInfo {
	if p, ok := ctx.Value(pageKey).(*pageInfo); ok {
		return p
	}
	return &pageInfo{}
}
