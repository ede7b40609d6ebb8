package console

import (
	"encoding/json"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/a-h/templ"

	"github.com/portvakt/portvakt/internal/manage"
	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/store"
)

// navGroup is a part of the navigation: what an org does as a provider, a
// consumer, a vendor, for itself, or as the platform.
type navGroup struct {
	Label string
	Items []navItem
}

// navItem is a page in the navigation, shown when the person's roles
// allow it (an empty Need: to everyone).
type navItem struct {
	Path  string // relative to the console's root
	Label string
	Hint  string // what the page does, on the home page
	Need  manage.Need
}

var navGroups = []navGroup{
	{"Provider", []navItem{
		{"scopes", "Scopes", "Your prefixes and scopes: create, edit, deactivate, and who may use them.", manage.NeedScopesRead},
		{"inbox", "Access requests", "Organisations asking for your scopes: approve or deny.", manage.NeedScopesRead},
		{"tokens", "Tokens issued", "Which organisations got tokens for your scopes.", manage.NeedAuditRead},
	}},
	{"Consumer", []navItem{
		{"catalogue", "Catalogue", "The scopes you can ask for.", nil},
		{"requests", "My requests", "Your access requests and what came of them.", manage.NeedScopesRead},
		{"clients", "Clients", "Your clients and their keys.", manage.NeedClientsRead},
		{"delegations", "Delegations", "Scopes you delegate to vendors.", manage.NeedDelegationsRead},
	}},
	{"Vendor", []navItem{
		{"received", "Received", "Delegations your customers gave you.", manage.NeedScopesRead},
	}},
	{"Organisation", []navItem{
		{"audit", "Audit trail", "Every change and token concerning your organisation.", manage.NeedAuditRead},
		{"webhooks", "Webhooks", "Where your organisation's events are pushed.", manage.NeedWebhooksWrite},
		{"members", "Members", "Who may act for your organisation here, with which roles.", manage.NeedMembersWrite},
	}},
	{"Platform", []navItem{
		{"prefixes", "Prefixes", "The prefixes and the providers that own them.", manage.NeedAdmin},
	}},
}

// navFor are the groups and pages the page's person may use.
func navFor(p *pageInfo) []navGroup {
	var out []navGroup
	for _, g := range navGroups {
		var items []navItem
		for _, it := range g.Items {
			if len(it.Need) == 0 || p.may(it.Need) {
				items = append(items, it)
			}
		}
		if len(items) > 0 {
			out = append(out, navGroup{g.Label, items})
		}
	}
	return out
}

// href is a console URL: the root joined with the parts, each path-escaped
// but the first (a path of the console's own, "scopes/new").
func (p *pageInfo) href(path string, parts ...string) templ.SafeURL {
	var b strings.Builder
	b.WriteString(p.Root)
	b.WriteString(path)
	for _, part := range parts {
		b.WriteString("/")
		b.WriteString(pathEscape(part))
	}
	return templ.SafeURL(b.String())
}

// current reports whether the page is at path (for aria-current).
func (p *pageInfo) current(path string) bool {
	return p.Path == p.Root+path || strings.HasPrefix(p.Path, p.Root+path+"/")
}

// roleLabel is how a role is shown: the admin scope without its prefix.
func roleLabel(role string) string {
	return strings.TrimPrefix(role, records.BuiltinPrefix+":")
}

// asset is the URL of an embedded asset.
func (p *pageInfo) asset(name string) templ.SafeURL { return templ.SafeURL(p.Root + "assets/" + name) }

// hxHeaders is the hx-headers of the body: htmx sends the CSRF token with
// every request it makes.
func (p *pageInfo) hxHeaders() string {
	if p.CSRF == "" {
		return "{}"
	}
	b, _ := json.Marshal(map[string]string{"X-CSRF-Token": p.CSRF})
	return string(b)
}

func pathEscape(s string) string { return url.PathEscape(s) }

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// rolesText lists roles as people read them.
func rolesText(roles []string) string {
	out := make([]string, len(roles))
	for i, r := range roles {
		out[i] = roleLabel(r)
	}
	return strings.Join(out, ", ")
}

// when shows a time to people: UTC, to the second.
func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05") + " UTC"
}

func urlQuery(s string) string { return url.QueryEscape(s) }

func inactiveQuery(inactive bool) string {
	if inactive {
		return "&inactive=true"
	}
	return ""
}

func activeText(active bool) string {
	if active {
		return "active"
	}
	return "deactivated"
}

// prefixList names prefixes as people read them: "acme, demo".
func prefixList(ps []store.Prefix) string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Prefix
	}
	return strings.Join(out, ", ")
}

// eventsText lists a webhook's events ("every event" for none).
func eventsText(events []string) string {
	if len(events) == 0 {
		return "every event"
	}
	return strings.Join(events, ", ")
}
