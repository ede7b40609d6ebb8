package rules_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/portvakt/portvakt/internal/rules"
	"github.com/portvakt/portvakt/internal/store"
)

// countingStore is the real store, counting the rows its reads return
// (the generation row included).
type countingStore struct {
	store.Store
	rows atomic.Int64
}

func (c *countingStore) add(n int, err error) {
	if err == nil {
		c.rows.Add(int64(n))
	}
}

func (c *countingStore) Generation(ctx context.Context) (int64, error) {
	g, err := c.Store.Generation(ctx)
	c.add(1, err)
	return g, err
}

func (c *countingStore) ListChanges(ctx context.Context, after int64, limit int) ([]store.Change, int64, error) {
	ch, g, err := c.Store.ListChanges(ctx, after, limit)
	c.add(len(ch)+1, err)
	return ch, g, err
}

func (c *countingStore) GetScope(ctx context.Context, name string) (store.Scope, error) {
	r, err := c.Store.GetScope(ctx, name)
	c.add(1, err)
	return r, err
}

func (c *countingStore) PageScopes(ctx context.Context, f store.ScopeFilter, p store.Page) ([]store.Scope, error) {
	r, err := c.Store.PageScopes(ctx, f, p)
	c.add(len(r), err)
	return r, err
}

func (c *countingStore) GetAccess(ctx context.Context, scope, org string) (store.Access, error) {
	r, err := c.Store.GetAccess(ctx, scope, org)
	c.add(1, err)
	return r, err
}

func (c *countingStore) PageAccess(ctx context.Context, f store.AccessFilter, p store.Page) ([]store.Access, error) {
	r, err := c.Store.PageAccess(ctx, f, p)
	c.add(len(r), err)
	return r, err
}

func (c *countingStore) GetDelegation(ctx context.Context, scope, cons, supp string) (store.Delegation, error) {
	r, err := c.Store.GetDelegation(ctx, scope, cons, supp)
	c.add(1, err)
	return r, err
}

func (c *countingStore) PageDelegations(ctx context.Context, f store.DelegationFilter, p store.Page) ([]store.Delegation, error) {
	r, err := c.Store.PageDelegations(ctx, f, p)
	c.add(len(r), err)
	return r, err
}

func (c *countingStore) GetClient(ctx context.Context, id string) (store.Client, error) {
	r, err := c.Store.GetClient(ctx, id)
	c.add(1, err)
	return r, err
}

func (c *countingStore) PageClients(ctx context.Context, f store.ClientFilter, p store.Page) ([]store.Client, error) {
	r, err := c.Store.PageClients(ctx, f, p)
	c.add(len(r), err)
	return r, err
}

// dataset is the records of a platform with n access rows: n/10 scopes,
// clients and delegations. Access row i is (scope i%scopes, org i).
type dataset struct{ n int }

func (d dataset) scopes() int        { return max(1, d.n/10) }
func (d dataset) scope(i int) string { return fmt.Sprintf("acme:s%d", i%d.scopes()) }
func org(i int) string               { return fmt.Sprintf("9%08d", i) }

// seedN writes the dataset in batches of one Update each.
func seedN(t testing.TB, s store.Store, d dataset) {
	t.Helper()
	ctx := context.Background()
	const batch = 2000
	put := func(from, to int, fn func(tx store.Tx, i int) error) {
		for lo := from; lo < to; lo += batch {
			err := s.Update(ctx, func(tx store.Tx) error {
				for i := lo; i < min(lo+batch, to); i++ {
					if err := fn(tx, i); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatalf("seed: %v", err)
			}
		}
	}
	put(0, d.scopes(), func(tx store.Tx, i int) error {
		return tx.CreateScope(ctx, store.Scope{
			Name: d.scope(i), Prefix: "acme", Subscope: fmt.Sprint("s", i), Active: true,
			Visibility: store.VisibilityPublic, OwnerOrgno: provider, DelegationSource: "https://auth.example/",
		})
	})
	put(0, d.n, func(tx store.Tx, i int) error {
		return tx.PutAccess(ctx, store.Access{Scope: d.scope(i), ConsumerOrgno: org(i), OwnerOrgno: provider, State: store.AccessApproved})
	})
	put(0, d.n/10, func(tx store.Tx, i int) error {
		if err := tx.PutDelegation(ctx, store.Delegation{Scope: d.scope(i), ConsumerOrgno: org(i), SupplierOrgno: vendor, State: store.DelegationActive}); err != nil {
			return err
		}
		return tx.CreateClient(ctx, store.Client{
			ClientID: fmt.Sprintf("client-%d", i), ClientOrgno: org(i), ClientName: "c", IntegrationType: "maskinporten",
			TokenEndpointAuthMethod: "private_key_jwt", Scopes: []string{d.scope(i)}, Active: true,
		})
	})
}

// Catching up with one changed access row reads the same few rows at 1,000
// records as at 5,000: the change and the row, not the platform.
func TestCatchUpCostDoesNotGrowWithRecords(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			read := map[int]int64{}
			for _, n := range []int{1000, 5000} {
				a, _, _ := e.open(t)
				d := dataset{n}
				seedN(t, a, d)
				cs := &countingStore{Store: a}
				c := rules.NewCache(cs, rules.CacheConfig{})
				if _, err := c.Snapshot(t.Context()); err != nil {
					t.Fatal(err)
				}
				// The decorator sees the reads: the first load reads it all.
				if full := cs.rows.Load(); full < int64(n) {
					t.Fatalf("n=%d: the first load read %d rows, fewer than the %d access rows", n, full, n)
				}
				cs.rows.Store(0)
				update(t, a, func(ctx context.Context, tx store.Tx) error {
					return tx.PutAccess(ctx, store.Access{Scope: d.scope(7), ConsumerOrgno: org(7), OwnerOrgno: provider, State: store.AccessDenied})
				})
				c.Invalidate()
				snap, err := c.Snapshot(t.Context())
				if err != nil || snap.HasAccess(d.scope(7), org(7)) || !snap.HasAccess(d.scope(8), org(8)) {
					t.Fatalf("n=%d: after the change: err %v", n, err)
				}
				read[n] = cs.rows.Load()
				t.Logf("n=%d: %d rows read to catch up", n, read[n])
			}
			if read[5000] != read[1000] || read[1000] > 3 {
				t.Fatalf("rows read for one changed access row: %d at 1,000 records, %d at 5,000; want the same few", read[1000], read[5000])
			}
		})
	}
}
