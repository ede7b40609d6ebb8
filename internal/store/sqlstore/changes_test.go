package sqlstore_test

import (
	"errors"
	"testing"

	"github.com/portvakt/portvakt/internal/store"
	"github.com/portvakt/portvakt/internal/store/sqlstore"
)

// The change log's gaps, which only SQL (or a small window) can make: the
// reader must be told to reload rather than be handed an incomplete list.
func TestChangeLogGaps(t *testing.T) {
	t.Parallel()
	for name, b := range map[string]func(t *testing.T) backend{
		"sqlite":   func(*testing.T) backend { return sqliteBackend() },
		"postgres": postgresBackend,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := b(t)
			ctx := t.Context()
			open := func(t *testing.T, window int) *sqlstore.Store {
				cfg := b.config(t)
				cfg.ChangeLogGenerations = window
				s := openStore(t, cfg)
				if err := s.Migrate(ctx); err != nil {
					t.Fatal(err)
				}
				return s
			}
			put := func(t *testing.T, s *sqlstore.Store, consumer string) {
				t.Helper()
				err := s.Update(ctx, func(tx store.Tx) error {
					return tx.PutAccess(ctx, store.Access{Scope: "acme:a", ConsumerOrgno: consumer, OwnerOrgno: "910000001", State: store.AccessApproved})
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			gen := func(t *testing.T, s *sqlstore.Store) int64 {
				t.Helper()
				g, err := s.Generation(ctx)
				if err != nil {
					t.Fatal(err)
				}
				return g
			}
			wantUnknown := func(t *testing.T, s *sqlstore.Store, after int64) {
				t.Helper()
				if ch, _, err := s.ListChanges(ctx, after, 100); !errors.Is(err, store.ErrChangesUnknown) {
					t.Fatalf("ListChanges(%d) = %+v, %v; want ErrChangesUnknown", after, ch, err)
				}
			}

			t.Run("fail/hand-written-sql-and-a-bump", func(t *testing.T) {
				s := open(t, 0)
				put(t, s, "910000002")
				g0 := gen(t, s)
				if err := s.ExecForTest(ctx, "UPDATE access SET state = 'DENIED'"); err != nil {
					t.Fatal(err)
				}
				if err := s.ExecForTest(ctx, "UPDATE generation SET value = value + 1 WHERE id = 1"); err != nil {
					t.Fatal(err)
				}
				wantUnknown(t, s, g0)
				// And after a logged Update on top: the bumped generation
				// is still unaccounted for.
				put(t, s, "910000003")
				wantUnknown(t, s, g0)
				// A reader that reloaded at the bump is fine again.
				if ch, g, err := s.ListChanges(ctx, g0+1, 100); err != nil || len(ch) != 1 || g != g0+2 {
					t.Fatalf("ListChanges after the bump = %+v, %d, %v; want one change to %d", ch, g, err, g0+2)
				}
			})

			t.Run("fail/trimmed", func(t *testing.T) {
				s := open(t, 2)
				g0 := gen(t, s)
				for _, org := range []string{"910000002", "910000003", "910000004"} {
					put(t, s, org)
				}
				// Three generations written, two kept: the first is gone.
				wantUnknown(t, s, g0)
				ch, g, err := s.ListChanges(ctx, g0+1, 100)
				if err != nil || len(ch) != 2 || g != g0+3 {
					t.Fatalf("ListChanges within the window = %+v, %d, %v; want 2 changes to %d", ch, g, err, g0+3)
				}
			})
		})
	}
}
