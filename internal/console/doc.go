// Package console is portvakt's web console: server-rendered HTML pages
// (a-h/templ components, htmx as an improvement only) through which the
// people behind the orgs run their side of portvakt in a browser. It is a
// shell over the self-service core (internal/manage), beside the JSON API:
// every action calls the core with the person as the actor, and nothing
// here re-implements a rule.
//
// People log in with OpenID Connect (authorization code with PKCE, state
// and nonce checked, the ID token verified) or, in dev mode only, with a
// dev login that picks a demo org. Sessions and logins under way live in
// the store (store.ConsoleSessions), so any replica serves any person; the
// cookie holds a random 256-bit id of which only the SHA-256 is stored. A
// person acts for the orgs that list them as a member (manage.Memberships),
// or that an ID-token claim names; membership is checked again on every
// request.
//
// Every state-changing request passes net/http's cross-origin protection
// and carries the session's synchronizer token (csrf_token, or the
// X-CSRF-Token header htmx sends). Every response carries a strict
// Content-Security-Policy: scripts, styles and images only from the
// console's own embedded assets, no inline code.
//
// Routes are registered per area, each in its own file: login.go and
// session.go (login, session, CSRF), provider.go, consumer.go, vendor.go,
// everyone.go and admin.go (the pages), layout.templ (the page frame and
// the form helpers every page uses).
package console
