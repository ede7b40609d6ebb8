package console

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/portvakt/portvakt/internal/manage"
	"github.com/portvakt/portvakt/internal/protocol"
	"github.com/portvakt/portvakt/internal/store"
)

// providerRoutes: a provider's scopes, allow-lists, access-request inbox
// and the tokens issued for its scopes.
func (c *Console) providerRoutes(rt *routes) {
	rt.get("scopes", c.scopesPage)
	rt.get("scopes/new", c.newScopePage)
	rt.post("scopes/new", c.createScope)
	rt.get("scopes/{name...}", c.scopePage)
	rt.post("scopes/{name...}", c.scopeAction)
	rt.get("inbox", c.inboxPage)
	rt.post("inbox", c.decide)
	rt.get("tokens", c.tokensPage)
}

// listPage is how much one list page of the console shows.
const listPage = 100

// scopesView is the scopes page: the org's prefixes and scopes.
type scopesView struct {
	Prefixes []store.Prefix
	Scopes   []store.Scope
	Inactive bool   // deactivated scopes shown too
	Next     string // the after= of the next page, "" on the last
}

func (c *Console) scopesPage(w http.ResponseWriter, r *http.Request) error {
	a := actor(r)
	prefixes, err := c.core.OwnPrefixes(r.Context(), a)
	if err != nil {
		return err
	}
	v := scopesView{Prefixes: prefixes, Inactive: r.URL.Query().Get("inactive") == "true"}
	p := store.Page{Limit: listPage}
	if after := r.URL.Query().Get("after"); after != "" {
		p.After = []string{after}
	}
	if v.Scopes, err = c.core.ListScopes(r.Context(), a, v.Inactive, p); err != nil {
		return err
	}
	if len(v.Scopes) == listPage {
		v.Next = v.Scopes[len(v.Scopes)-1].Name
	}
	return c.ok(w, r, scopesList(v))
}

// scopeForm is the scope form's values as the person typed them.
type scopeForm struct {
	Prefix, Subscope                   string
	Description, LongDescription       string
	Visibility                         string
	AccessibleForAll, Delegable        bool
	MaskinportenOnly, RequiresAudience bool
	ATMaxAge                           string
	Audiences                          string // one a line
}

// scopeFields are the fields of the scope form, named as the core names
// them.
var scopeFields = []string{"prefix", "subscope", "description", "long_description", "visibility",
	"accessible_for_all", "delegation_source", "allowed_integration_types", "at_max_age", "requires_audience", "audiences"}

func formOfScope(sc store.Scope) scopeForm {
	return scopeForm{
		Prefix: sc.Prefix, Subscope: sc.Subscope, Description: sc.Description, LongDescription: sc.LongDescription,
		Visibility: sc.Visibility, AccessibleForAll: sc.AccessibleForAll, Delegable: sc.DelegationSource != "",
		MaskinportenOnly: slices.Contains(sc.AllowedIntegrationTypes, protocol.IntegrationMaskinporten),
		RequiresAudience: sc.RequiresAudience, ATMaxAge: strconv.Itoa(sc.ATMaxAge), Audiences: strings.Join(sc.Audiences, "\n"),
	}
}

// readScopeForm reads the posted form into the core's input. A lifetime
// that is not a number is the one problem the console finds itself (the
// core takes a number).
func (c *Console) readScopeForm(r *http.Request) (scopeForm, manage.ScopeInput, formErrors) {
	f := scopeForm{
		Prefix: r.PostFormValue("prefix"), Subscope: strings.TrimSpace(r.PostFormValue("subscope")),
		Description: r.PostFormValue("description"), LongDescription: r.PostFormValue("long_description"),
		Visibility: r.PostFormValue("visibility"), AccessibleForAll: r.PostFormValue("accessible_for_all") == "true",
		Delegable: r.PostFormValue("delegation_source") == "true", MaskinportenOnly: r.PostFormValue("allowed_integration_types") == "true",
		RequiresAudience: r.PostFormValue("requires_audience") == "true", ATMaxAge: strings.TrimSpace(r.PostFormValue("at_max_age")),
		Audiences: r.PostFormValue("audiences"),
	}
	in := manage.ScopeInput{
		Prefix: f.Prefix, Subscope: f.Subscope, Description: f.Description, LongDescription: f.LongDescription,
		Visibility: f.Visibility, AccessibleForAll: f.AccessibleForAll, RequiresAudience: f.RequiresAudience,
		AllowedIntegrationTypes: []string{}, Audiences: lines(f.Audiences),
	}
	if f.Delegable {
		in.DelegationSource = c.core.Issuer()
	}
	if f.MaskinportenOnly {
		in.AllowedIntegrationTypes = []string{protocol.IntegrationMaskinporten}
	}
	var fe formErrors
	if f.ATMaxAge != "" {
		n, err := strconv.Atoi(f.ATMaxAge)
		if err != nil {
			fe.Fields = map[string]string{"at_max_age": "must be a whole number of seconds (0 for no cap)"}
		}
		in.ATMaxAge = n
	}
	return f, in, fe
}

// lines splits a textarea into its non-empty lines, trimmed, at most 100
// (the core bounds the lists further).
func lines(s string) []string {
	out := []string{}
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" && len(out) < 100 {
			out = append(out, l)
		}
	}
	return out
}

func (c *Console) newScopePage(w http.ResponseWriter, r *http.Request) error {
	prefixes, err := c.core.OwnPrefixes(r.Context(), actor(r))
	if err != nil {
		return err
	}
	f := scopeForm{Visibility: store.VisibilityPublic, ATMaxAge: "0"}
	if len(prefixes) > 0 {
		f.Prefix = prefixes[0].Prefix
	}
	return c.ok(w, r, scopeNew(prefixes, f, formErrors{}))
}

func (c *Console) createScope(w http.ResponseWriter, r *http.Request) error {
	a := actor(r)
	f, in, fe := c.readScopeForm(r)
	if !fe.Any() {
		sc, err := c.core.CreateScope(r.Context(), a, in)
		if err == nil {
			return c.redirect(w, r, "scopes/"+pathEscape(sc.Name))
		}
		var ok bool
		if fe, ok = formErrorsOf(err, scopeFields...); !ok {
			return err
		}
	}
	prefixes, err := c.core.OwnPrefixes(r.Context(), a)
	if err != nil {
		return err
	}
	return c.refused(w, r, scopeNew(prefixes, f, fe))
}

// scopeView is a scope's page: the scope, its edit form and its
// allow-list.
type scopeView struct {
	Scope  store.Scope
	Form   scopeForm
	Errors formErrors
	// Access is the allow-list, every state.
	Access []store.Access
	// Grant is the grant form's values and problems.
	GrantOrg, GrantReason string
	GrantErrors           formErrors
	Notice                string
}

func (c *Console) scopeView(r *http.Request, name string) (scopeView, error) {
	a := actor(r)
	sc, err := c.core.GetScope(r.Context(), a, name)
	if err != nil {
		return scopeView{}, err
	}
	rows, err := c.core.ListAccess(r.Context(), a, name, manage.AccessQuery{Inactive: true}, store.Page{Limit: listPage})
	if err != nil {
		return scopeView{}, err
	}
	return scopeView{Scope: sc, Form: formOfScope(sc), Access: rows}, nil
}

// notices are what a page says after a change it redirected to; the
// query names one (a fixed text, never the request's).
var notices = map[string]string{
	"saved":          "Saved.",
	"deactivated":    "Deactivated.",
	"granted":        "Access granted.",
	"removed":        "Access removed.",
	"approved":       "Request approved.",
	"denied":         "Request denied.",
	"created":        "Created.",
	"assigned":       "Prefix assigned.",
	"member-removed": "Member removed.",
}

func notice(r *http.Request) string { return notices[r.URL.Query().Get("done")] }

func (c *Console) scopePage(w http.ResponseWriter, r *http.Request) error {
	v, err := c.scopeView(r, r.PathValue("name"))
	if err != nil {
		return err
	}
	v.Notice = notice(r)
	return c.ok(w, r, scopePage(v))
}

// scopeAction runs what a form of the scope page posts: action is update,
// deactivate, grant or remove.
func (c *Console) scopeAction(w http.ResponseWriter, r *http.Request) error {
	a := actor(r)
	name := r.PathValue("name")
	back := "scopes/" + pathEscape(name)
	switch r.PostFormValue("action") {
	case "update":
		f, in, fe := c.readScopeForm(r)
		if !fe.Any() {
			_, err := c.core.UpdateScope(r.Context(), a, name, in)
			if err == nil {
				return c.redirect(w, r, back+"?done=saved")
			}
			var ok bool
			if fe, ok = formErrorsOf(err, scopeFields...); !ok {
				return err
			}
		}
		v, err := c.scopeView(r, name)
		if err != nil {
			return err
		}
		f.Prefix, f.Subscope = v.Scope.Prefix, v.Scope.Subscope
		v.Form, v.Errors = f, fe
		return c.refused(w, r, scopePage(v))
	case "deactivate":
		if err := c.core.DeactivateScope(r.Context(), a, name); err != nil {
			return err
		}
		return c.redirect(w, r, back+"?done=deactivated")
	case "grant":
		org, reason := strings.TrimSpace(r.PostFormValue("org")), r.PostFormValue("reason")
		_, err := c.core.GrantAccess(r.Context(), a, name, org, manage.AccessInput{Reason: reason})
		if err == nil {
			return c.redirect(w, r, back+"?done=granted")
		}
		fe, ok := formErrorsOf(err, "org", "reason")
		if !ok {
			return err
		}
		v, verr := c.scopeView(r, name)
		if verr != nil {
			return verr
		}
		v.GrantOrg, v.GrantReason, v.GrantErrors = org, reason, fe
		return c.refused(w, r, scopePage(v))
	case "remove":
		_, err := c.core.RevokeAccess(r.Context(), a, name, r.PostFormValue("org"), manage.AccessInput{Reason: r.PostFormValue("reason")})
		if err != nil {
			return err
		}
		return c.redirect(w, r, back+"?done=removed")
	}
	return errNotFound
}

// inboxView is the access-request inbox: every REQUESTED row of the
// org's scopes.
type inboxView struct {
	Requests []store.Access
	Notice   string
	// Failed is the row whose decision was refused, and why.
	FailedScope, FailedOrg string
	Errors                 formErrors
}

func (c *Console) inboxPage(w http.ResponseWriter, r *http.Request) error {
	v, err := c.inbox(r)
	if err != nil {
		return err
	}
	v.Notice = notice(r)
	return c.ok(w, r, inboxPage(v))
}

func (c *Console) inbox(r *http.Request) (inboxView, error) {
	rows, err := c.core.ListAccess(r.Context(), actor(r), "", manage.AccessQuery{States: []string{store.AccessRequested}}, store.Page{Limit: listPage})
	return inboxView{Requests: rows}, err
}

// decide approves or denies a request, with an optional reason.
func (c *Console) decide(w http.ResponseWriter, r *http.Request) error {
	a := actor(r)
	scope, org, reason := r.PostFormValue("scope"), r.PostFormValue("org"), r.PostFormValue("reason")
	var err error
	var done string
	switch r.PostFormValue("decision") {
	case "approve":
		_, err = c.core.GrantAccess(r.Context(), a, scope, org, manage.AccessInput{Reason: reason})
		done = "approved"
	case "deny":
		_, err = c.core.RevokeAccess(r.Context(), a, scope, org, manage.AccessInput{Reason: reason})
		done = "denied"
	default:
		return errNotFound
	}
	if err == nil {
		return c.redirect(w, r, "inbox?done="+done)
	}
	fe, ok := formErrorsOf(err, "reason")
	if !ok {
		return err
	}
	v, verr := c.inbox(r)
	if verr != nil {
		return verr
	}
	v.FailedScope, v.FailedOrg, v.Errors = scope, org, fe
	return c.refused(w, r, inboxPage(v))
}

// tokensView is who got tokens for the org's scopes: the token events of
// its audit trail that name one of them.
type tokensView struct {
	Scope  string // the filter, "" for every scope of the org
	Scopes []store.Scope
	Events []manage.AuditEvent
	// Orgs sums the page's tokens by consumer (and vendor).
	Orgs []tokenOrg
	Next string // the next page's cursor
	Err  formErrors
}

// tokenOrg is one org that got tokens, on the page shown.
type tokenOrg struct {
	Consumer, Supplier string
	Tokens             int
	Last               string
}

func (c *Console) tokensPage(w http.ResponseWriter, r *http.Request) error {
	a := actor(r)
	q := r.URL.Query()
	v := tokensView{Scope: q.Get("scope")}
	var err error
	if v.Scopes, err = c.core.ListScopes(r.Context(), a, true, store.Page{Limit: listPage}); err != nil {
		return err
	}
	own := map[string]bool{}
	for _, sc := range v.Scopes {
		own[sc.Name] = true
	}
	page, err := c.core.Audit(r.Context(), a, manage.AuditQuery{Action: manage.ActionTokenIssue, Scope: v.Scope, Cursor: q.Get("cursor"), Limit: "200"})
	if err != nil {
		fe, ok := formErrorsOf(err, "scope")
		if !ok {
			return err
		}
		v.Err = fe
		return c.refused(w, r, tokensPage(v))
	}
	v.Next = page.NextCursor
	for _, e := range page.Events {
		if e.Token == nil || !slices.ContainsFunc(e.Token.Scopes, func(s string) bool { return own[s] }) {
			continue // a token of the org as consumer or vendor, not of its scopes
		}
		v.Events = append(v.Events, e)
		i := slices.IndexFunc(v.Orgs, func(o tokenOrg) bool {
			return o.Consumer == e.Token.ConsumerOrgno && o.Supplier == e.Token.SupplierOrgno
		})
		if i < 0 {
			v.Orgs = append(v.Orgs, tokenOrg{Consumer: e.Token.ConsumerOrgno, Supplier: e.Token.SupplierOrgno, Last: when(e.Time)})
			i = len(v.Orgs) - 1
		}
		v.Orgs[i].Tokens++
	}
	return c.ok(w, r, tokensPage(v))
}
