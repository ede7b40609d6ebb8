package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// FreshSchema creates a uniquely named schema in dsn's database and returns
// dsn with its search_path set to that schema. The schema is dropped when
// the test ends, after whatever the test opened later has closed (cleanups
// run last registered first). dsn must be a postgres:// URL.
func FreshSchema(t testing.TB, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		t.Fatal("the PostgreSQL DSN for tests must be a postgres:// URL")
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "portvakt_t_" + hex.EncodeToString(b)
	Exec(t, dsn, "CREATE SCHEMA "+name)
	t.Cleanup(func() {
		// t.Context is already canceled here.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := ExecContext(ctx, dsn, "DROP SCHEMA "+name+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

// Exec runs one statement on a connection of its own and fails the test on
// error.
func Exec(t testing.TB, dsn, query string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := ExecContext(ctx, dsn, query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// ExecContext runs one statement on a connection of its own.
func ExecContext(ctx context.Context, dsn, query string, args ...any) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, query, args...)
	return err
}

// EnvDSN names the variable that holds the test server's DSN
// (scripts/pg.sh env prints it).
const EnvDSN = "PORTVAKT_TEST_POSTGRES_DSN"

// DSN is the test server's DSN from EnvDSN. Without it the test skips,
// loudly, and under CI (CI set) it fails: there every PostgreSQL test must
// run.
func DSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(EnvDSN)
	if dsn == "" {
		Unavailable(t, "PostgreSQL tests need "+EnvDSN+" (start a throwaway server with scripts/pg.sh start; eval \"$(scripts/pg.sh env)\")")
	}
	return dsn
}

// Unavailable skips a test that cannot have the PostgreSQL it needs, loudly,
// and under CI (CI set) fails it: there every PostgreSQL test must run. why
// says what is missing and how to get it.
func Unavailable(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(why)
	}
	t.Skip("SKIPPING POSTGRESQL TESTS: " + why)
}
