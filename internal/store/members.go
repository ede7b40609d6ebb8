package store

import (
	"slices"
	"time"
)

// Member lets a person act for an org in the web console: Subject is the
// person's id at the console's identity provider, Roles the org admin
// scopes the person holds there (a subset of the built-in admin scopes).
// Members are not access rules: they are not in the rules change log, and
// the config file does not declare them.
type Member struct {
	Org         string    `json:"org"`
	Subject     string    `json:"subject"`
	Roles       []string  `json:"roles"`
	Created     time.Time `json:"created"`
	LastUpdated time.Time `json:"last_updated"`
}

// Key is the member's key in PageMembers' order (within its org).
func (m Member) Key() []string { return []string{m.Subject} }

// MaxMemberships is the most orgs MembershipsOf returns for one person: a
// person picks the org to act for from them at login, so the list is short
// and bounded.
const MaxMemberships = 100

// MemberFilter narrows PageMembers. Org is required: members are listed
// one org at a time. Role, when set, keeps the members holding it.
type MemberFilter struct {
	Org  string
	Role string
}

// Match applies f to m in memory, as the stores do in their queries.
func (f MemberFilter) Match(m Member) bool {
	return m.Org == f.Org && (f.Role == "" || slices.Contains(m.Roles, f.Role))
}
