package console

import (
	"net/http"
	"slices"
	"strings"

	"github.com/portvakt/portvakt/internal/manage"
	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/store"
)

// everyoneRoutes: what every org has: its audit trail, webhooks and
// members.
func (c *Console) everyoneRoutes(rt *routes) {
	rt.get("audit", c.auditPage)
	rt.get("webhooks", c.webhooksPage)
	rt.post("webhooks", c.createWebhook)
	rt.get("webhooks/{id}", c.webhookPage)
	rt.post("webhooks/{id}", c.deactivateWebhook)
	rt.get("members", c.membersPage)
	rt.post("members", c.memberAction)
}

// auditFields are the audit filters, named as the core names them.
var auditFields = []string{"from", "to", "action", "target", "scope", "client_id", "limit", "cursor"}

// auditView is the audit trail page: the filters as typed, and a page of
// events.
type auditView struct {
	Query  manage.AuditQuery
	Events []manage.AuditEvent
	Next   string // the next page's URL query, "" on the last
	Errors formErrors
}

// auditActions are offered in the action filter (any other can be typed).
var auditActions = []string{manage.ActionTokenIssue, "scope.create", "scope.update", "scope.deactivate",
	"access.grant", "access.revoke", "access.request", "access.withdraw", "client.create", "client.update",
	"client.deactivate", "client.keys.replace", "client.keys.delete", "client.keys.revoke", "delegation.create",
	"delegation.revoke", "webhook.create", "webhook.update", "webhook.deactivate", "member.create", "member.update",
	"member.delete", "prefix.assign"}

func (c *Console) auditPage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	v := auditView{Query: manage.AuditQuery{
		Limit: q.Get("limit"), Cursor: q.Get("cursor"), From: q.Get("from"), To: q.Get("to"),
		Action: q.Get("action"), Target: q.Get("target"), Scope: q.Get("scope"), ClientID: q.Get("client_id"),
	}}
	if v.Query.Limit == "" {
		v.Query.Limit = "50"
	}
	page, err := c.core.Audit(r.Context(), actor(r), v.Query)
	if err != nil {
		fe, ok := formErrorsOf(err, auditFields...)
		if !ok {
			return err
		}
		v.Errors = fe
		return c.refused(w, r, auditPage(v))
	}
	v.Events = page.Events
	if page.NextCursor != "" {
		next := r.URL.Query()
		next.Set("cursor", page.NextCursor)
		v.Next = next.Encode()
	}
	return c.ok(w, r, auditPage(v))
}

// webhooksView is the webhooks page: the org's webhooks and the form that
// adds one.
type webhooksView struct {
	Hooks    []store.Webhook
	Inactive bool
	URL      string
	Events   []string // checked in the form
	Errors   formErrors
	Notice   string
}

func (c *Console) webhooksView(r *http.Request) (webhooksView, error) {
	v := webhooksView{Inactive: r.URL.Query().Get("inactive") == "true"}
	var err error
	v.Hooks, err = c.core.ListWebhooks(r.Context(), actor(r), v.Inactive, store.Page{Limit: listPage})
	return v, err
}

func (c *Console) webhooksPage(w http.ResponseWriter, r *http.Request) error {
	v, err := c.webhooksView(r)
	if err != nil {
		return err
	}
	v.Notice = notice(r)
	return c.ok(w, r, webhooksPage(v))
}

func (c *Console) createWebhook(w http.ResponseWriter, r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		return err
	}
	in := manage.WebhookInput{URL: strings.TrimSpace(r.PostFormValue("url")), Events: r.PostForm["events"]}
	if len(in.Events) > len(store.EventNames) {
		in.Events = in.Events[:len(store.EventNames)+1] // the core names the excess
	}
	hook, err := c.core.CreateWebhook(r.Context(), actor(r), in)
	if err == nil {
		return c.redirect(w, r, "webhooks/"+pathEscape(hook.ID)+"?done=created")
	}
	fe, ok := formErrorsOf(err, "url", "events")
	if !ok {
		return err
	}
	v, verr := c.webhooksView(r)
	if verr != nil {
		return verr
	}
	v.URL, v.Events, v.Errors = in.URL, in.Events, fe
	return c.refused(w, r, webhooksPage(v))
}

func (c *Console) webhookPage(w http.ResponseWriter, r *http.Request) error {
	hook, err := c.core.GetWebhook(r.Context(), actor(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	return c.ok(w, r, webhookPage(hook, notice(r)))
}

func (c *Console) deactivateWebhook(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if r.PostFormValue("action") != "deactivate" {
		return errNotFound
	}
	if err := c.core.DeactivateWebhook(r.Context(), actor(r), id); err != nil {
		return err
	}
	return c.redirect(w, r, "webhooks/"+pathEscape(id)+"?done=deactivated")
}

// membersView is the members page: who may act for the org here, with
// which roles, and the form that adds one.
type membersView struct {
	Members []store.Member
	// Roles are the roles the page offers: the org admin scopes
	// (portvakt:admin too for the platform org's members).
	Roles []string
	// The add form's values, or the member whose change was refused.
	Subject     string
	SubjectRole []string
	Errors      formErrors
	Failed      string // the subject of the refused change
	Notice      string
}

func (c *Console) membersView(r *http.Request) (membersView, error) {
	a := actor(r)
	ms, err := c.core.ListMembers(r.Context(), a, store.Page{Limit: listPage})
	if err != nil {
		return membersView{}, err
	}
	roles := slices.Clone(records.AdminScopes)
	if a.Has(records.AdminScope) {
		roles = append([]string{records.AdminScope}, roles...)
	}
	return membersView{Members: ms, Roles: roles}, nil
}

func (c *Console) membersPage(w http.ResponseWriter, r *http.Request) error {
	v, err := c.membersView(r)
	if err != nil {
		return err
	}
	v.Notice = notice(r)
	return c.ok(w, r, membersPage(v))
}

// memberAction sets a member's roles (adding the member when new) or
// removes a member.
func (c *Console) memberAction(w http.ResponseWriter, r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		return err
	}
	a := actor(r)
	subject := strings.TrimSpace(r.PostFormValue("subject"))
	roles := r.PostForm["roles"]
	if len(roles) > len(records.AdminScopes)+1 {
		roles = roles[:len(records.AdminScopes)+2] // the core names the excess
	}
	var err error
	var done string
	switch r.PostFormValue("action") {
	case "set":
		_, _, err = c.core.PutMember(r.Context(), a, subject, manage.MemberInput{Roles: nonNilStrings(roles)})
		done = "saved"
	case "remove":
		err = c.core.DeleteMember(r.Context(), a, subject)
		done = "member-removed"
	default:
		return errNotFound
	}
	if err == nil {
		return c.redirect(w, r, "members?done="+done)
	}
	fe, ok := formErrorsOf(err, "subject", "roles")
	if !ok {
		return err
	}
	v, verr := c.membersView(r)
	if verr != nil {
		return verr
	}
	v.Subject, v.SubjectRole, v.Errors, v.Failed = subject, roles, fe, subject
	return c.refused(w, r, membersPage(v))
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
