package purge_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/purge"
	"github.com/portvakt/portvakt/internal/store"
	"github.com/portvakt/portvakt/internal/store/sqlstore"
)

func TestPurgeInBoundedBatches(t *testing.T) {
	ctx := t.Context()
	db := openSQLite(t)
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	insert := func(n int, exp time.Time, prefix string) {
		for i := range n {
			err := db.InsertIssuedToken(ctx, store.IssuedToken{
				ClientID: "c", AssertionJTI: fmt.Sprintf("%s-%d", prefix, i), TokenJTI: fmt.Sprintf("t-%s-%d", prefix, i),
				ConsumerOrgno: "310000035", Scopes: []string{"demo:read"}, Audience: []string{},
				IssuedAt: exp.Add(-2 * time.Minute), ExpiresAt: exp, ClientAMR: "private_key_jwt",
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	insert(10, now.Add(-48*time.Hour), "old") // past a 24h retention
	insert(4, now.Add(-time.Hour), "recent")  // within it
	var batches purged
	cfg := purge.Config{Retention: 24 * time.Hour, Batch: 3, MaxPerRun: 6, Now: func() time.Time { return now },
		Observer: &batches}

	n, err := purge.Once(ctx, db, cfg)
	if err != nil || n != 6 {
		t.Fatalf("first run purged %d (%v), want 6 (MaxPerRun)", n, err)
	}
	if fmt.Sprint(batches) != "[3 3]" {
		t.Fatalf("batches %v, want [3 3]", batches)
	}
	// No Observer (nil observes nothing): the purge works the same.
	cfg.Observer = nil
	n, err = purge.Once(ctx, db, cfg)
	if err != nil || n != 4 {
		t.Fatalf("second run purged %d (%v), want 4", n, err)
	}
	if fmt.Sprint(batches) != "[3 3]" {
		t.Fatalf("batches %v after a run without an observer, want [3 3]", batches)
	}
	rows, err := db.ListIssuedTokens(ctx, store.IssuedTokenFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 {
		t.Fatalf("%d rows left, want the 4 recent ones", len(rows))
	}
	for _, r := range rows {
		if r.ExpiresAt.Before(now.Add(-24 * time.Hour)) {
			t.Fatalf("a row past retention survived: %+v", r)
		}
	}
}

// purged records the rows of every step the purger reports.
type purged []int

func (p *purged) Purged(n int, _ error) { *p = append(*p, n) }

// fakeStore is a backlog whose batches and vacuum steps take the time the
// test says, on the test's clock.
type fakeStore struct {
	now      *time.Time
	backlog  int
	took     func(i int) time.Duration // how long batch i takes
	batches  int
	busy     time.Duration // time spent in the store
	free     int           // free pages
	vacuumed int
}

func (f *fakeStore) PurgeIssuedTokens(_ context.Context, _ time.Time, limit int) (int, error) {
	d := f.took(f.batches)
	f.batches++
	*f.now = f.now.Add(d)
	f.busy += d
	n := min(limit, f.backlog)
	f.backlog -= n
	f.free += n / 10
	return n, nil
}

func (f *fakeStore) ReclaimSpace(_ context.Context, pages int) (int, error) {
	d := time.Millisecond
	*f.now = f.now.Add(d)
	f.busy += d
	n := min(pages, f.free)
	f.free -= n
	f.vacuumed += n
	return f.free, nil
}

func TestPacingBoundsTheWritersShare(t *testing.T) {
	cases := []struct {
		name  string
		share float64
		took  func(i int) time.Duration
	}{
		{"ok/steady-batches", 0.05, func(int) time.Duration { return 20 * time.Millisecond }},
		{"ok/batches-slowing-under-load", 0.10, func(i int) time.Duration { return time.Duration(5+i%7*30) * time.Millisecond }},
		{"ok/no-pauses-at-share-1", 1, func(int) time.Duration { return 20 * time.Millisecond }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
			now := start
			f := &fakeStore{now: &now, backlog: 100_000, took: tc.took}
			var slept time.Duration
			cfg := purge.Config{Batch: 500, MaxPerRun: 1_000_000, WriterShare: tc.share, VacuumPages: 256,
				Now: func() time.Time { return now },
				Sleep: func(_ context.Context, d time.Duration) error {
					slept += d
					now = now.Add(d)
					return nil
				}}
			n, err := purge.Once(t.Context(), f, cfg)
			if err != nil || n != 100_000 {
				t.Fatalf("purged %d (%v), want the whole backlog of 100000", n, err)
			}
			if f.free != 0 || f.vacuumed != 100_000/10 {
				t.Fatalf("%d pages vacuumed, %d left free; want all %d back", f.vacuumed, f.free, 100_000/10)
			}
			elapsed := now.Sub(start)
			share := float64(f.busy) / float64(elapsed)
			t.Logf("store busy %s of %s (%.3f), slept %s", f.busy, elapsed, share, slept)
			if share > tc.share+1e-9 {
				t.Fatalf("the purge held the store for %.3f of the time, want at most %.3f", share, tc.share)
			}
			if tc.share == 1 && slept != 0 {
				t.Fatalf("slept %s with share 1, want no pauses", slept)
			}
			if tc.share < 1 && share < tc.share*0.99 {
				t.Fatalf("the purge held the store for only %.3f of the time: pauses longer than the share needs", share)
			}
		})
	}
}

// maintainer records the housekeeping call of a partitioned store.
type maintainer struct {
	fakeStore
	now, cutoff time.Time
	calls       int
}

func (m *maintainer) MaintainIssuedTokens(_ context.Context, now, cutoff time.Time) (int, error) {
	m.now, m.cutoff = now, cutoff
	m.calls++
	return 7, nil
}

func TestOnceRunsPartitionHousekeeping(t *testing.T) {
	start := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	now := start
	m := &maintainer{fakeStore: fakeStore{now: &now, took: func(int) time.Duration { return time.Millisecond }}}
	var reported purged
	n, err := purge.Once(t.Context(), m, purge.Config{Retention: 24 * time.Hour, Now: func() time.Time { return now },
		Sleep:    func(context.Context, time.Duration) error { return nil },
		Observer: &reported})
	if err != nil || n != 7 {
		t.Fatalf("Once = %d, %v; want the 7 rows of the dropped partitions", n, err)
	}
	if m.calls != 1 || !m.cutoff.Equal(start.Add(-24*time.Hour)) {
		t.Fatalf("housekeeping called %d times with cutoff %s, want once with %s", m.calls, m.cutoff, start.Add(-24*time.Hour))
	}
	if fmt.Sprint(reported) != "[7 0]" {
		t.Fatalf("reported %v, want [7 0] (the partitions, then an empty batch)", reported)
	}
}

// openSQLite opens a migrated SQLite store in the test's directory, closed
// when the test ends.
func openSQLite(tb testing.TB) *sqlstore.Store {
	tb.Helper()
	db, err := sqlstore.Open(tb.Context(), sqlstore.Config{Driver: "sqlite", DSN: filepath.Join(tb.TempDir(), "p.db")})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if err := db.Migrate(tb.Context()); err != nil {
		tb.Fatal(err)
	}
	return db
}
