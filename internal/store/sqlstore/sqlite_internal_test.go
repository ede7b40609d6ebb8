package sqlstore

import (
	"path/filepath"
	"testing"

	"gorm.io/gorm"
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
