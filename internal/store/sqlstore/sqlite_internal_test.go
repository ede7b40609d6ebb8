package sqlstore

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/gorm"

	"github.com/portvakt/portvakt/internal/store"
)

// The pragmas ride in the DSN; check that every pool really has them.
func TestSQLitePragmas(t *testing.T) {
	t.Parallel()
	s, err := Open(t.Context(), Config{Driver: DriverSQLite, DSN: filepath.Join(t.TempDir(), "p.db")})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	cases := []struct {
		name, pragma string
		want         []string // writer, reader
	}{
		{"ok/wal", "journal_mode", []string{"wal", "wal"}},
		{"ok/synchronous-normal", "synchronous", []string{"1", "1"}},
		{"ok/foreign-keys", "foreign_keys", []string{"1", "1"}},
		{"ok/busy-timeout", "busy_timeout", []string{"30000", "30000"}},
		{"ok/readers-query-only", "query_only", []string{"0", "1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for i, g := range []*gorm.DB{s.db, s.reader.db} {
				var got string
				if err := g.WithContext(t.Context()).Raw("PRAGMA " + tc.pragma).Row().Scan(&got); err != nil {
					t.Fatalf("PRAGMA %s: %v", tc.pragma, err)
				}
				if got != tc.want[i] {
					t.Fatalf("%s: PRAGMA %s = %s, want %s", []string{"writer", "reader"}[i], tc.pragma, got, tc.want[i])
				}
			}
		})
	}
}

// SQLite gives the purge's freed pages back in steps: auto_vacuum is
// INCREMENTAL on a new database and on one made before it (Migrate's one
// VACUUM), and ReclaimSpace returns the free pages to the file system.
func TestSQLiteIncrementalVacuum(t *testing.T) {
	t.Parallel()
	autoVacuum := func(t *testing.T, s *Store) int {
		t.Helper()
		var mode int
		if err := s.writerDB().QueryRowContext(t.Context(), "PRAGMA auto_vacuum").Scan(&mode); err != nil {
			t.Fatal(err)
		}
		return mode
	}
	open := func(t *testing.T, dsn string) *Store {
		t.Helper()
		s, err := Open(t.Context(), Config{Driver: DriverSQLite, DSN: dsn})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		return s
	}
	t.Run("ok/new-database", func(t *testing.T) {
		if m := autoVacuum(t, open(t, filepath.Join(t.TempDir(), "n.db"))); m != 2 {
			t.Fatalf("auto_vacuum = %d, want 2 (incremental)", m)
		}
	})
	t.Run("ok/existing-database-vacuumed-once", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "e.db")
		old, err := sql.Open(sqlite.DriverName, path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := old.ExecContext(t.Context(), "CREATE TABLE before_this_release (x INTEGER)"); err != nil {
			t.Fatal(err)
		}
		var mode int
		if err := old.QueryRowContext(t.Context(), "PRAGMA auto_vacuum").Scan(&mode); err != nil || mode != 0 {
			t.Fatalf("the old database: auto_vacuum %d (%v), want 0", mode, err)
		}
		old.Close()
		if m := autoVacuum(t, open(t, path)); m != 2 {
			t.Fatalf("auto_vacuum after Migrate = %d, want 2 (incremental)", m)
		}
	})
	t.Run("ok/reclaim-in-steps", func(t *testing.T) {
		s := open(t, filepath.Join(t.TempDir(), "r.db"))
		ctx := t.Context()
		exp := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := range 3000 {
			err := s.InsertIssuedToken(ctx, store.IssuedToken{ClientID: "c", AssertionJTI: fmt.Sprint("j", i), TokenJTI: fmt.Sprint("t", i),
				ConsumerOrgno: "910000002", Scopes: []string{"acme:a", "beta:b"}, Audience: []string{},
				IssuedAt: exp.Add(-time.Minute), ExpiresAt: exp, ClientAMR: "private_key_jwt"})
			if err != nil {
				t.Fatal(err)
			}
		}
		pages := func() (total, free int) {
			t.Helper()
			db := s.writerDB()
			if err := db.QueryRowContext(ctx, "PRAGMA page_count").Scan(&total); err != nil {
				t.Fatal(err)
			}
			if err := db.QueryRowContext(ctx, "PRAGMA freelist_count").Scan(&free); err != nil {
				t.Fatal(err)
			}
			return total, free
		}
		if n, err := s.PurgeIssuedTokens(ctx, exp.Add(time.Hour), 10_000); err != nil || n != 3000 {
			t.Fatalf("purge: %d, %v", n, err)
		}
		total0, free0 := pages()
		if free0 < 10 {
			t.Fatalf("%d free pages after purging 3000 rows, want many", free0)
		}
		left, err := s.ReclaimSpace(ctx, 5)
		if err != nil || left != free0-5 {
			t.Fatalf("ReclaimSpace(5): %d left (%v), want %d", left, err, free0-5)
		}
		if left, err = s.ReclaimSpace(ctx, 1<<20); err != nil || left != 0 {
			t.Fatalf("ReclaimSpace(all): %d left (%v), want 0", left, err)
		}
		if total, _ := pages(); total != total0-free0 {
			t.Fatalf("%d pages after reclaiming, want %d", total, total0-free0)
		}
	})
}
