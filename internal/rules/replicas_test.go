package rules_test

import (
	"context"
	"crypto/elliptic"
	"database/sql"
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/go-jose/go-jose/v4"

	"github.com/portvakt/portvakt/internal/pgtest"
	"github.com/portvakt/portvakt/internal/rules"
	"github.com/portvakt/portvakt/internal/store"
	"github.com/portvakt/portvakt/internal/store/sqlstore"
	"github.com/portvakt/portvakt/internal/testpki"
)

const pgEnv = "PORTVAKT_TEST_POSTGRES_DSN"

// engine opens two stores over one fresh, migrated database: two replicas,
// and a way to run hand-written SQL on it.
type engine struct {
	name string
	open func(t testing.TB) (a, b *sqlstore.Store, exec func(query string))
}

func engines(t testing.TB) []engine {
	t.Helper()
	es := []engine{{name: "sqlite", open: func(t testing.TB) (*sqlstore.Store, *sqlstore.Store, func(string)) {
		path := newDB(t)
		a, b := openStore(t, path), openStore(t, path)
		return a, b, func(query string) { t.Helper(); sqlExec(t, path, query) }
	}}}
	dsn := os.Getenv(pgEnv)
	if dsn == "" {
		msg := "PostgreSQL cases need " + pgEnv + " (scripts/pg.sh start; eval \"$(scripts/pg.sh env)\")"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Log("SKIPPING POSTGRESQL CASES: " + msg)
		return es
	}
	return append(es, engine{name: "postgres", open: func(t testing.TB) (*sqlstore.Store, *sqlstore.Store, func(string)) {
		d := pgtest.FreshSchema(t, dsn)
		open := func() *sqlstore.Store {
			s, err := sqlstore.Open(context.Background(), sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: d})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
		a := open()
		if err := a.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		return a, open(), func(query string) { t.Helper(); pgtest.Exec(t, d, query) }
	}})
}

// guarantee is one kind of change and how a snapshot shows it.
type guarantee struct {
	name   string
	change func(t *testing.T, s store.Store)
	// before and after say whether a snapshot shows the state before the
	// change or after it.
	before, after func(snap *rules.Snapshot) bool
}

func update(t *testing.T, s store.Store, fn func(ctx context.Context, tx store.Tx) error) {
	t.Helper()
	if err := s.Update(t.Context(), func(tx store.Tx) error { return fn(t.Context(), tx) }); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

// seedAll writes a scope, an approved access row, an active delegation and
// an active client with one key.
func seedAll(t *testing.T, s store.Store) {
	t.Helper()
	seed(t, s)
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.PutAccess(ctx, store.Access{Scope: "acme:a", ConsumerOrgno: consumer, OwnerOrgno: provider, State: store.AccessApproved}); err != nil {
			return err
		}
		if err := tx.PutDelegation(ctx, store.Delegation{Scope: "acme:a", ConsumerOrgno: consumer, SupplierOrgno: vendor, State: store.DelegationActive}); err != nil {
			return err
		}
		c, err := tx.GetClient(ctx, clientID)
		if err != nil {
			return err
		}
		c.Keys = []store.ClientKey{{KID: "k1", JWK: jwk(t, "k1"), Expires: time.Now().Add(time.Hour)}}
		return tx.UpdateClient(ctx, c)
	})
}

func jwk(t testing.TB, kid string) json.RawMessage {
	t.Helper()
	k, err := testpki.ECKey(elliptic.P256())
	if err != nil {
		t.Fatal(err)
	}
	b, err := jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func editClient(t *testing.T, s store.Store, fn func(*store.Client)) {
	t.Helper()
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		c, err := tx.GetClient(ctx, clientID)
		if err != nil {
			return err
		}
		fn(&c)
		return tx.UpdateClient(ctx, c)
	})
}

func hasKey(snap *rules.Snapshot, kid string) bool {
	k, err := snap.ClientPublicKey(clientID, kid)
	return err == nil && k != nil
}

var guarantees = []guarantee{
	{
		name: "client-deactivated",
		change: func(t *testing.T, s store.Store) {
			editClient(t, s, func(c *store.Client) { c.Active = false })
		},
		before: func(snap *rules.Snapshot) bool { c, ok := snap.Client(clientID); return ok && c.Active },
		after:  func(snap *rules.Snapshot) bool { c, ok := snap.Client(clientID); return ok && !c.Active },
	},
	{
		name: "access-removed",
		change: func(t *testing.T, s store.Store) {
			setAccess(t, s, consumer, store.AccessDenied)
		},
		before: func(snap *rules.Snapshot) bool { return snap.HasAccess("acme:a", consumer) },
		after:  func(snap *rules.Snapshot) bool { return !snap.HasAccess("acme:a", consumer) },
	},
	{
		name: "delegation-revoked",
		change: func(t *testing.T, s store.Store) {
			update(t, s, func(ctx context.Context, tx store.Tx) error {
				return tx.PutDelegation(ctx, store.Delegation{Scope: "acme:a", ConsumerOrgno: consumer, SupplierOrgno: vendor, State: store.DelegationRevoked})
			})
		},
		before: func(snap *rules.Snapshot) bool {
			return snap.HasDelegation("acme:a", consumer, vendor) && len(snap.Delegators("acme:a", vendor)) == 1
		},
		after: func(snap *rules.Snapshot) bool {
			return !snap.HasDelegation("acme:a", consumer, vendor) && len(snap.Delegators("acme:a", vendor)) == 0
		},
	},
	{
		name: "key-added",
		change: func(t *testing.T, s store.Store) {
			k := jwk(t, "k2")
			editClient(t, s, func(c *store.Client) {
				c.Keys = append(c.Keys, store.ClientKey{KID: "k2", JWK: k, Expires: time.Now().Add(time.Hour)})
			})
		},
		before: func(snap *rules.Snapshot) bool { return hasKey(snap, "k1") && !hasKey(snap, "k2") },
		after:  func(snap *rules.Snapshot) bool { return hasKey(snap, "k1") && hasKey(snap, "k2") },
	},
}

// The cache's guarantees, on both engines, with two stores over one
// database as two replicas.
func TestCacheGuarantees(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			for _, g := range guarantees {
				t.Run("ok/read-your-writes/"+g.name, func(t *testing.T) {
					a, _, _ := e.open(t)
					seedAll(t, a)
					c := rules.NewCache(a, rules.CacheConfig{})
					snap, err := c.Snapshot(t.Context())
					if err != nil || !g.before(snap) {
						t.Fatalf("before the change: err %v, state shown %v", err, err == nil && g.before(snap))
					}
					g.change(t, a)
					c.Invalidate()
					snap, err = c.Snapshot(t.Context())
					if err != nil || !g.after(snap) {
						t.Fatalf("the next Snapshot after the write and Invalidate: err %v, change shown %v", err, err == nil && g.after(snap))
					}
				})
				t.Run("ok/other-replica-within-1s/"+g.name, func(t *testing.T) {
					a, b, _ := e.open(t)
					seedAll(t, a)
					c := rules.NewCache(b, rules.CacheConfig{}) // the default poll interval
					snap, err := c.Snapshot(t.Context())
					if err != nil || !g.before(snap) {
						t.Fatalf("before the change: err %v", err)
					}
					runCache(t, c)
					g.change(t, a)
					start := time.Now()
					if !eventually(t, c, time.Second, g.after) {
						t.Fatal("the other replica did not show the change within 1s")
					}
					t.Logf("seen after %v", time.Since(start))
				})
			}
			if e.name == "postgres" {
				// NOTIFY alone: with an hour between polls, only the
				// announcement can bring the change in.
				t.Run("ok/other-replica-by-notify", func(t *testing.T) {
					a, b, _ := e.open(t)
					seedAll(t, a)
					c := rules.NewCache(b, rules.CacheConfig{PollInterval: time.Hour})
					if _, err := c.Snapshot(t.Context()); err != nil {
						t.Fatal(err)
					}
					runCache(t, c)
					ctx, cancel := context.WithCancel(t.Context())
					listening := make(chan struct{}, 1)
					done := make(chan struct{})
					go func() {
						defer close(done)
						b.Listen(ctx, sqlstore.ListenConfig{OnChange: func() {
							c.Refresh()
							select {
							case listening <- struct{}{}:
							default:
							}
						}})
					}()
					t.Cleanup(func() { cancel(); <-done })
					<-listening // LISTEN is in place
					setAccess(t, a, consumer, store.AccessDenied)
					if !eventually(t, c, time.Second, func(s *rules.Snapshot) bool { return !s.HasAccess("acme:a", consumer) }) {
						t.Fatal("the NOTIFY did not bring the change within 1s")
					}
				})
			}
			t.Run("fail/503-after-local-write-while-store-down", func(t *testing.T) {
				a, _, _ := e.open(t)
				seedAll(t, a)
				f := &faultyStore{Store: a}
				c := rules.NewCache(f, rules.CacheConfig{})
				if _, err := c.Snapshot(t.Context()); err != nil {
					t.Fatal(err)
				}
				setAccess(t, a, consumer, store.AccessDenied)
				c.Invalidate()
				f.fail.Store(true)
				if snap, err := c.Snapshot(t.Context()); !errors.Is(err, store.ErrUnavailable) || snap != nil {
					t.Fatalf("Snapshot = %v, %v; want ErrUnavailable, not the old grants", snap, err)
				}
				f.fail.Store(false)
				if snap, err := c.Snapshot(t.Context()); err != nil || snap.HasAccess("acme:a", consumer) {
					t.Fatalf("after the store came back: %v, access still granted %v", err, err == nil && snap.HasAccess("acme:a", consumer))
				}
			})
			// README: after hand-written SQL, bump the generation. The
			// change log has no rows for that generation: a full reload.
			t.Run("ok/hand-written-sql-and-a-bump", func(t *testing.T) {
				a, b, exec := e.open(t)
				seedAll(t, a)
				mine := rules.NewCache(a, rules.CacheConfig{})
				other := rules.NewCache(b, rules.CacheConfig{PollInterval: 20 * time.Millisecond})
				for _, c := range []*rules.Cache{mine, other} {
					if snap, err := c.Snapshot(t.Context()); err != nil || !snap.HasAccess("acme:a", consumer) {
						t.Fatalf("before: %v", err)
					}
				}
				runCache(t, other)
				exec("UPDATE access SET state = 'DENIED'")
				exec("UPDATE generation SET value = value + 1 WHERE id = 1")
				mine.Invalidate()
				if snap, err := mine.Snapshot(t.Context()); err != nil || snap.HasAccess("acme:a", consumer) {
					t.Fatalf("after Invalidate: %v, access still granted", err)
				}
				if !eventually(t, other, 5*time.Second, func(s *rules.Snapshot) bool { return !s.HasAccess("acme:a", consumer) }) {
					t.Fatal("the other replica did not reload after the bump")
				}
			})
		})
	}
}

// eventually reports whether c's snapshot satisfies ok within d.
func eventually(t *testing.T, c *rules.Cache, d time.Duration, ok func(*rules.Snapshot) bool) bool {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		snap, err := c.Snapshot(t.Context())
		if err == nil && ok(snap) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sqlExec runs hand-written SQL on the SQLite database at path.
func sqlExec(t testing.TB, path, query string) {
	t.Helper()
	db, err := sql.Open(sqlite.DriverName, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(query); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}
