package sqlstore_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/store"
	"github.com/portvakt/portvakt/internal/store/sqlstore"
)

// batches records what an Observer is told of the group commits.
type batches struct {
	mu     sync.Mutex
	rows   int
	errors int
}

func (b *batches) Batch(rows int, _ time.Duration, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rows += rows
	if err != nil {
		b.errors++
	}
}

// The Observer in Config is told of every group commit; without one (nil)
// the store works the same.
func TestObserverIsToldOfBatches(t *testing.T) {
	t.Parallel()
	for _, b := range []struct {
		name    string
		backend func(t *testing.T) backend
	}{
		{"ok/sqlite", func(*testing.T) backend { return sqliteBackend() }},
		{"ok/postgres", postgresBackend},
	} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			be := b.backend(t)
			for _, observed := range []bool{true, false} {
				var obs batches
				cfg := be.config(t)
				if observed {
					cfg.Observer = &obs
				}
				s := openStore(t, cfg)
				if err := s.Migrate(t.Context()); err != nil {
					t.Fatal(err)
				}
				now := time.Now().UTC().Truncate(time.Second)
				for i := range 3 {
					err := s.InsertIssuedToken(t.Context(), store.IssuedToken{
						ClientID: "c", AssertionJTI: fmt.Sprintf("a-%d", i), TokenJTI: fmt.Sprintf("t-%d", i),
						ConsumerOrgno: "310000035", Scopes: []string{"demo:read"}, Audience: []string{},
						IssuedAt: now, ExpiresAt: now.Add(time.Minute), ClientAMR: "private_key_jwt",
					})
					if err != nil {
						t.Fatalf("observed=%v: insert %d: %v", observed, i, err)
					}
				}
				obs.mu.Lock()
				rows, errs := obs.rows, obs.errors
				obs.mu.Unlock()
				want := 0
				if observed {
					want = 3
				}
				if rows != want || errs != 0 {
					t.Errorf("observed=%v: told of %d rows and %d errors, want %d and 0", observed, rows, errs, want)
				}
			}
		})
	}
}

var _ sqlstore.Observer = (*batches)(nil)
