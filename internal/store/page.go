package store

import (
	"slices"
	"strings"
)

// Page limits.
const (
	// DefaultPageLimit is the page size when a list asks for none.
	DefaultPageLimit = 100
	// MaxPageLimit is the largest page a list returns.
	MaxPageLimit = 1000
)

// Page asks for one page of a list in key order (keyset paging): the
// records whose key sorts after After, at most Limit of them. A walk that
// passes each page's last key on to the next sees every record that exists
// throughout the walk exactly once, whatever is added meanwhile.
type Page struct {
	// After is the key (the record's Key) of the last record of the
	// previous page; nil = from the first record.
	After []string
	// Limit is the most records returned: 0 = DefaultPageLimit. The API
	// keeps it within MaxPageLimit; the store takes what it is given.
	Limit int
}

// Size is the page's effective limit.
func (p Page) Size() int {
	if p.Limit <= 0 {
		return DefaultPageLimit
	}
	return p.Limit
}

// The keys of the records, in the order lists return them: what a page's
// last record gives the next Page's After.
func (p Prefix) Key() []string     { return []string{p.Prefix} }
func (s Scope) Key() []string      { return []string{s.Name} }
func (a Access) Key() []string     { return []string{a.Scope, a.ConsumerOrgno} }
func (d Delegation) Key() []string { return []string{d.Scope, d.ConsumerOrgno, d.SupplierOrgno} }
func (c Client) Key() []string     { return []string{c.ClientID} }

// after reports whether key sorts after p.After.
func (p Page) after(key []string) bool {
	return p.After == nil || slices.Compare(key, p.After) > 0
}

// ScopeFilter narrows PageScopes; zero fields match anything.
type ScopeFilter struct {
	OwnerOrgno string
	// Prefix keeps the scopes under that prefix.
	Prefix string
	// ActiveOnly leaves out deactivated scopes.
	ActiveOnly bool
	// Query keeps scopes whose name or description contains it, ignoring
	// the case of ASCII letters.
	Query string
}

// Match applies f to s in memory, as the stores do in their queries.
func (f ScopeFilter) Match(s Scope) bool {
	return (f.OwnerOrgno == "" || s.OwnerOrgno == f.OwnerOrgno) &&
		(f.Prefix == "" || s.Prefix == f.Prefix) &&
		(!f.ActiveOnly || s.Active) &&
		(f.Query == "" || containsFold(s.Name, f.Query) || containsFold(s.Description, f.Query))
}

// containsFold reports whether s contains sub, ignoring the case of ASCII
// letters only (as SQL LOWER does on both engines for ASCII).
func containsFold(s, sub string) bool {
	return strings.Contains(lowerASCII(s), lowerASCII(sub))
}

func lowerASCII(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, s)
}

// ClientFilter narrows PageClients; zero fields match anything.
type ClientFilter struct {
	ClientOrgno string
	// ActiveOnly leaves out deactivated clients.
	ActiveOnly bool
}

// Match applies f to c in memory.
func (f ClientFilter) Match(c Client) bool {
	return (f.ClientOrgno == "" || c.ClientOrgno == f.ClientOrgno) && (!f.ActiveOnly || c.Active)
}

// Match applies f to a in memory.
func (f AccessFilter) Match(a Access) bool {
	return (f.Scope == "" || a.Scope == f.Scope) &&
		(f.ConsumerOrgno == "" || a.ConsumerOrgno == f.ConsumerOrgno) &&
		(f.OwnerOrgno == "" || a.OwnerOrgno == f.OwnerOrgno) &&
		(len(f.States) == 0 || slices.Contains(f.States, a.State))
}

// Match applies f to d in memory.
func (f DelegationFilter) Match(d Delegation) bool {
	return (f.Scope == "" || d.Scope == f.Scope) &&
		(f.ConsumerOrgno == "" || d.ConsumerOrgno == f.ConsumerOrgno) &&
		(f.SupplierOrgno == "" || d.SupplierOrgno == f.SupplierOrgno) &&
		(f.Org == "" || d.ConsumerOrgno == f.Org || d.SupplierOrgno == f.Org) &&
		(len(f.States) == 0 || slices.Contains(f.States, d.State))
}

// mergePage is one page of the declared records over the database's: db is
// the database's page for the same filter and After, fetched with room for
// the declared keys it may hold (see staticReader), static the declared
// records. A declared record hides its database twin whether or not the
// twin matched.
func mergePage[K comparable, V any](db []V, static map[K]V, key func(V) K, sortKey func(V) []string, match func(V) bool, p Page) []V {
	out := make([]V, 0, len(db))
	for _, v := range db {
		if _, declared := static[key(v)]; !declared {
			out = append(out, v)
		}
	}
	for _, v := range static {
		if match(v) && p.after(sortKey(v)) {
			out = append(out, v)
		}
	}
	slices.SortFunc(out, func(a, b V) int { return slices.Compare(sortKey(a), sortKey(b)) })
	if len(out) > p.Size() {
		out = out[:p.Size()]
	}
	return out
}

// widen is p with room for n declared twins that the merge may drop.
func widen(p Page, n int) Page {
	return Page{After: p.After, Limit: p.Size() + n}
}
