package sqlstore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/store"
)

// TestClassify drives real engines into each error and checks the sentinel
// that classify gives it.
func TestClassify(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		s, err := Open(t.Context(), Config{Driver: DriverSQLite, DSN: filepath.Join(t.TempDir(), "c.db")})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer s.Close()
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		cases := []struct {
			name  string
			query string
			want  error
		}{
			{"fail/unique", "INSERT INTO generation (id, value) VALUES (1, 5)", store.ErrConflict},
			{"fail/not-found", "SELECT value FROM generation WHERE id = 2", store.ErrNotFound},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				var v int64
				err := s.db.WithContext(t.Context()).Raw(tc.query).Row().Scan(&v)
				if got := classify(err); !errors.Is(got, tc.want) {
					t.Fatalf("classify(%v) = %v, want %v", err, got, tc.want)
				}
			})
		}
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		dsn := os.Getenv("PORTVAKT_TEST_POSTGRES_DSN")
		if dsn == "" {
			if os.Getenv("CI") != "" {
				t.Fatal("PORTVAKT_TEST_POSTGRES_DSN is not set (scripts/pg.sh start)")
			}
			t.Skip("SKIPPING POSTGRESQL TESTS: PORTVAKT_TEST_POSTGRES_DSN is not set (scripts/pg.sh start)")
		}
		s, err := Open(t.Context(), Config{Driver: DriverPostgres, DSN: dsn, StatementTimeout: 200 * time.Millisecond})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer s.Close()
		raise := func(code string) string {
			return "DO $$ BEGIN RAISE EXCEPTION 'test' USING ERRCODE = '" + code + "'; END $$"
		}
		cases := []struct {
			name    string
			query   string
			timeout time.Duration
			want    error
		}{
			{"fail/unique", raise("unique_violation"), 0, store.ErrConflict},
			{"fail/admin-shutdown", raise("admin_shutdown"), 0, store.ErrUnavailable},
			{"fail/connection-failure", raise("connection_failure"), 0, store.ErrUnavailable},
			{"fail/statement-timeout", "SELECT pg_sleep(2)", 0, store.ErrUnavailable},
			{"fail/context-deadline", "SELECT pg_sleep(0.15)", 20 * time.Millisecond, store.ErrUnavailable},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ctx := t.Context()
				if tc.timeout > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tc.timeout)
					defer cancel()
				}
				err := s.db.WithContext(ctx).Exec(tc.query).Error
				if got := classify(err); !errors.Is(got, tc.want) {
					t.Fatalf("classify(%v) = %v, want %v", err, got, tc.want)
				}
			})
		}
		if err := s.db.WithContext(t.Context()).Exec("SELECT 1").Error; err != nil {
			t.Fatalf("the pool is still usable: %v", err)
		}
	})
}
