package conformance

import (
	"fmt"
	"slices"
	"testing"

	"github.com/portvakt/portvakt/internal/store"
)

// pageCases check the Page methods: filters in the query, key order, and a
// walk that sees every record once while records are added during it.
func pageCases() []testCase {
	return []testCase{
		{"ok/page/clients-walk-while-adding", testPageClientsWalk},
		{"ok/page/scopes-filter-and-query", testPageScopes},
		{"ok/page/access-and-delegations", testPageAccessDelegations},
		{"ok/page/prefixes", testPagePrefixes},
		{"fail/page/cursor-of-another-list", testPageForeignCursor},
	}
}

// walk pages through a list with limit, calling add after every page, and
// returns the keys seen.
func walk[V interface{ Key() []string }](t *testing.T, limit int, page func(store.Page) ([]V, error), add func(i int)) [][]string {
	t.Helper()
	var seen [][]string
	p := store.Page{Limit: limit}
	for i := 0; ; i++ {
		got, err := page(p)
		noErr(t, err, "page")
		if len(got) > limit {
			t.Fatalf("page %d has %d records, limit %d", i, len(got), limit)
		}
		for _, v := range got {
			seen = append(seen, v.Key())
		}
		if len(got) < limit {
			return seen
		}
		p.After = got[len(got)-1].Key()
		if add != nil {
			add(i)
		}
		if i > 1000 {
			t.Fatal("the walk does not end")
		}
	}
}

func testPageClientsWalk(t *testing.T, s store.Store) {
	ctx := t.Context()
	update(t, s, func(tx store.Tx) error {
		for i := range 25 {
			c := clientRec(fmt.Sprintf("c-%03d", i*2))
			if i%5 == 0 {
				c.ClientOrgno = "910000003" // another org's
			}
			if i%7 == 0 {
				c.Active = false
			}
			if err := tx.CreateClient(ctx, c); err != nil {
				return err
			}
		}
		return nil
	})
	f := store.ClientFilter{ClientOrgno: "910000002", ActiveOnly: true}
	var want [][]string
	all, err := s.ListClients(ctx)
	noErr(t, err, "ListClients")
	for _, c := range all {
		if f.Match(c) {
			want = append(want, c.Key())
		}
	}
	// While walking, add clients before and after the cursor: the ones
	// present throughout are each seen once, in order.
	added := 0
	seen := walk(t, 4, func(p store.Page) ([]store.Client, error) { return s.PageClients(ctx, f, p) }, func(i int) {
		update(t, s, func(tx store.Tx) error {
			added++
			if err := tx.CreateClient(ctx, clientRec(fmt.Sprintf("c-%03d", i*2+1))); err != nil {
				return err
			}
			return tx.CreateClient(ctx, clientRec(fmt.Sprintf("z-%03d", i)))
		})
	})
	if !slices.IsSortedFunc(seen, slices.Compare) || len(slices.CompactFunc(slices.Clone(seen), slices.Equal)) != len(seen) {
		t.Fatalf("walk is not in strict key order: %v", seen)
	}
	for _, k := range want {
		if !slices.ContainsFunc(seen, func(s []string) bool { return slices.Equal(s, k) }) {
			t.Fatalf("walk missed %v (seen %v)", k, seen)
		}
	}
	for _, k := range seen {
		c, err := s.GetClient(ctx, k[0])
		noErr(t, err, "GetClient")
		if !f.Match(c) {
			t.Fatalf("walk returned %+v, which the filter leaves out", c)
		}
	}
	if added == 0 {
		t.Fatal("nothing was added during the walk")
	}
}

func testPageScopes(t *testing.T, s store.Store) {
	ctx := t.Context()
	update(t, s, func(tx store.Tx) error {
		for i, n := range []string{"alpha", "beta", "Gamma_x", "delta", "epsilon%"} {
			sc := scopeRec(n)
			sc.Description = "About " + n
			if i == 3 {
				sc.Active = false
			}
			if i == 4 {
				sc.OwnerOrgno = "910000009"
			}
			if err := tx.CreateScope(ctx, sc); err != nil {
				return err
			}
		}
		return nil
	})
	names := func(f store.ScopeFilter, limit int) []string {
		t.Helper()
		var out []string
		for _, k := range walk(t, limit, func(p store.Page) ([]store.Scope, error) { return s.PageScopes(ctx, f, p) }, nil) {
			out = append(out, k[0])
		}
		return out
	}
	equal(t, names(store.ScopeFilter{}, 2), []string{"acme:Gamma_x", "acme:alpha", "acme:beta", "acme:delta", "acme:epsilon%"}, "all scopes")
	equal(t, names(store.ScopeFilter{ActiveOnly: true, OwnerOrgno: "910000001"}, 10), []string{"acme:Gamma_x", "acme:alpha", "acme:beta"}, "active scopes of the owner")
	equal(t, names(store.ScopeFilter{Prefix: "acme"}, 10), []string{"acme:Gamma_x", "acme:alpha", "acme:beta", "acme:delta", "acme:epsilon%"}, "scopes under the prefix")
	equal(t, len(names(store.ScopeFilter{Prefix: "acm"}, 10)), 0, "a prefix of the prefix is another prefix")
	equal(t, names(store.ScopeFilter{Query: "GAMMA"}, 10), []string{"acme:Gamma_x"}, "query ignores ASCII case")
	equal(t, names(store.ScopeFilter{Query: "about b"}, 10), []string{"acme:beta"}, "query searches the description")
	equal(t, names(store.ScopeFilter{Query: "_"}, 10), []string{"acme:Gamma_x"}, "query takes _ literally")
	equal(t, names(store.ScopeFilter{Query: "%"}, 10), []string{"acme:epsilon%"}, "query takes % literally")
}

func testPageAccessDelegations(t *testing.T, s store.Store) {
	ctx := t.Context()
	update(t, s, func(tx store.Tx) error {
		for i, org := range []string{"910000011", "910000012", "910000013", "910000014"} {
			state := store.AccessApproved
			if i == 2 {
				state = store.AccessDenied
			}
			for _, sc := range []string{"acme:a", "acme:b"} {
				if err := tx.PutAccess(ctx, store.Access{Scope: sc, ConsumerOrgno: org, OwnerOrgno: "910000001", State: state, Created: t0, LastUpdated: t0}); err != nil {
					return err
				}
			}
			d := store.Delegation{Scope: "acme:a", ConsumerOrgno: org, SupplierOrgno: "910000021", State: store.DelegationActive, Created: t0, LastUpdated: t0}
			if i == 1 {
				d.ConsumerOrgno, d.SupplierOrgno = "910000021", org
			}
			if i == 3 {
				d.State = store.DelegationRevoked
			}
			if err := tx.PutDelegation(ctx, d); err != nil {
				return err
			}
		}
		return nil
	})
	access := walk(t, 3, func(p store.Page) ([]store.Access, error) {
		return s.PageAccess(ctx, store.AccessFilter{OwnerOrgno: "910000001", States: []string{store.AccessApproved}}, p)
	}, nil)
	equal(t, access, [][]string{
		{"acme:a", "910000011"}, {"acme:a", "910000012"}, {"acme:a", "910000014"},
		{"acme:b", "910000011"}, {"acme:b", "910000012"}, {"acme:b", "910000014"},
	}, "approved access rows of the owner")
	dels := walk(t, 1, func(p store.Page) ([]store.Delegation, error) {
		return s.PageDelegations(ctx, store.DelegationFilter{Org: "910000021", States: []string{store.DelegationActive}}, p)
	}, nil)
	equal(t, dels, [][]string{
		{"acme:a", "910000011", "910000021"}, {"acme:a", "910000013", "910000021"}, {"acme:a", "910000021", "910000012"},
	}, "active delegations given or received by the org")
}

func testPagePrefixes(t *testing.T, s store.Store) {
	ctx := t.Context()
	update(t, s, func(tx store.Tx) error {
		for _, p := range []string{"c", "a", "b"} {
			if err := tx.PutPrefix(ctx, store.Prefix{Prefix: p, OwnerOrg: "910000001", Created: t0, LastUpdated: t0}); err != nil {
				return err
			}
		}
		return nil
	})
	got := walk(t, 2, func(p store.Page) ([]store.Prefix, error) { return s.PagePrefixes(ctx, p) }, nil)
	equal(t, got, [][]string{{"a"}, {"b"}, {"c"}}, "prefixes")
}

// A cursor made by another list (another key shape) returns nothing rather
// than a wrong page or an error from the database.
func testPageForeignCursor(t *testing.T, s store.Store) {
	ctx := t.Context()
	update(t, s, func(tx store.Tx) error { return tx.CreateClient(ctx, clientRec("c-1")) })
	got, err := s.PageClients(ctx, store.ClientFilter{}, store.Page{After: []string{"a", "b"}, Limit: 10})
	noErr(t, err, "PageClients")
	if len(got) != 0 {
		t.Fatalf("a two-part cursor on clients gave %v", got)
	}
}

// Declared records merge into the pages: in key order, each once, the
// declared one winning over its database twin, and only when it matches.
func testStaticPages(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := t.Context()
	db := open(t)
	update(t, db, func(tx store.Tx) error {
		for _, id := range []string{"b", "d", "f", "h"} {
			if err := tx.CreateClient(ctx, clientRec(id)); err != nil {
				return err
			}
		}
		return nil
	})
	declared := []store.Client{clientRec("a"), clientRec("d"), clientRec("g"), clientRec("i")}
	declared[1].ClientName = "declared d"
	declared[3].ClientOrgno = "910000003" // another org's: filtered out
	s := store.WithStatic(db, store.StaticRecords{Clients: declared})
	for _, limit := range []int{1, 2, 3, 10} {
		var names []string
		walk(t, limit, func(p store.Page) ([]store.Client, error) {
			got, err := s.PageClients(ctx, store.ClientFilter{ClientOrgno: "910000002"}, p)
			for _, c := range got {
				names = append(names, c.ClientID+"="+c.ClientName)
			}
			return got, err
		}, nil)
		equal(t, names, []string{"a=name a", "b=name b", "d=declared d", "f=name f", "g=name g", "h=name h"}, fmt.Sprintf("declared and stored clients, pages of %d", limit))
	}
}
