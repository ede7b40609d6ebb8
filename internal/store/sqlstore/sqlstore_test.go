package sqlstore_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/pgtest"
	"github.com/portvakt/portvakt/internal/store"
	"github.com/portvakt/portvakt/internal/store/conformance"
	"github.com/portvakt/portvakt/internal/store/sqlstore"
)

// backend opens fresh, empty databases of one engine.
type backend struct {
	// config returns the Config of a fresh database that lives until the
	// test ends.
	config func(t *testing.T) sqlstore.Config
}

func sqliteBackend() backend {
	return backend{config: func(t *testing.T) sqlstore.Config {
		t.Helper()
		return sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: filepath.Join(t.TempDir(), "portvakt.db")}
	}}
}

// postgresBackend gives every test its own schema in the database of
// PORTVAKT_TEST_POSTGRES_DSN, dropped afterwards. Without that
// variable it skips, loudly, and under CI it fails.
func postgresBackend(t *testing.T) backend {
	t.Helper()
	dsn := pgtest.DSN(t)
	return backend{config: func(t *testing.T) sqlstore.Config {
		t.Helper()
		return sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: pgtest.FreshSchema(t, dsn)}
	}}
}

func openStore(t *testing.T, cfg sqlstore.Config) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func openMigrated(t *testing.T, b backend) store.Store {
	t.Helper()
	s := openStore(t, b.config(t))
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

func TestConformanceSQLite(t *testing.T) {
	t.Parallel()
	b := sqliteBackend()
	conformance.Run(t, func(t *testing.T) store.Store { return openMigrated(t, b) })
}

// An in-memory database is one connection: the suite must pass on it too.
func TestConformanceSQLiteMemory(t *testing.T) {
	t.Parallel()
	b := backend{config: func(*testing.T) sqlstore.Config {
		return sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: ":memory:"}
	}}
	conformance.Run(t, func(t *testing.T) store.Store { return openMigrated(t, b) })
}

func TestConformancePostgres(t *testing.T) {
	t.Parallel()
	b := postgresBackend(t)
	conformance.Run(t, func(t *testing.T) store.Store { return openMigrated(t, b) })
}

func TestMigrationsSQLite(t *testing.T) {
	t.Parallel()
	testMigrations(t, sqliteBackend())
}

func TestMigrationsPostgres(t *testing.T) {
	t.Parallel()
	testMigrations(t, postgresBackend(t))
}

func testMigrations(t *testing.T, b backend) {
	t.Helper()
	t.Run("ok/from-empty-then-idempotent", func(t *testing.T) {
		t.Parallel()
		s := openStore(t, b.config(t))
		ctx := t.Context()
		if err := s.SchemaCheck(ctx); !errors.Is(err, sqlstore.ErrSchemaOutdated) {
			t.Fatalf("SchemaCheck of an empty database: %v, want ErrSchemaOutdated", err)
		}
		for i := range 3 {
			if err := s.Migrate(ctx); err != nil {
				t.Fatalf("Migrate #%d: %v", i+1, err)
			}
		}
		if err := s.SchemaCheck(ctx); err != nil {
			t.Fatalf("SchemaCheck after Migrate: %v", err)
		}
		st, err := s.MigrationStatus(ctx)
		if err != nil {
			t.Fatalf("MigrationStatus: %v", err)
		}
		if len(st) == 0 {
			t.Fatal("MigrationStatus: no migrations")
		}
		for _, m := range st {
			if !m.Applied || m.Source == "" {
				t.Fatalf("MigrationStatus: %+v, want applied with a source", m)
			}
		}
		if g, err := s.Generation(ctx); err != nil || g != 0 {
			t.Fatalf("Generation of a fresh database: %d, %v; want 0", g, err)
		}
	})
	t.Run("ok/concurrent-migrate", func(t *testing.T) {
		t.Parallel()
		cfg := b.config(t)
		const n = 4
		stores := make([]*sqlstore.Store, n) // separate pools, as separate replicas have
		for i := range stores {
			stores[i] = openStore(t, cfg)
		}
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i, s := range stores {
			wg.Go(func() { errs[i] = s.Migrate(t.Context()) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("concurrent Migrate #%d: %v", i, err)
			}
		}
		st, err := stores[0].MigrationStatus(t.Context())
		if err != nil {
			t.Fatalf("MigrationStatus: %v", err)
		}
		for _, m := range st {
			if !m.Applied {
				t.Fatalf("after concurrent Migrate: %+v not applied", m)
			}
		}
	})
	t.Run("ok/clients-from-before-delegated-admin", func(t *testing.T) {
		// A client written at version 2 (no managed_by column, keys without
		// uploaded_by) reads after the upgrade as made and keyed by its
		// owner: both fields empty.
		t.Parallel()
		s := openStore(t, b.config(t))
		ctx := t.Context()
		if err := s.MigrateToForTest(ctx, 2); err != nil {
			t.Fatalf("migrate to 2: %v", err)
		}
		const jwks = `[{"kid":"k1","jwk":{"kty":"EC","crv":"P-256","kid":"k1","x":"AA","y":"BB"},"created":"2025-01-01T00:00:00Z","expires":"2026-01-01T00:00:00Z"}]`
		if err := s.ExecForTest(ctx, `INSERT INTO clients (client_id, client_orgno, description, scopes, jwks, active)
			VALUES ('c-old', '910000002', 'd', '[]', '`+jwks+`', TRUE)`); err != nil {
			t.Fatalf("insert a version-2 client: %v", err)
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		c, err := s.GetClient(ctx, "c-old")
		if err != nil {
			t.Fatalf("GetClient: %v", err)
		}
		if c.ManagedBy != "" || len(c.Keys) != 1 || c.Keys[0].KID != "k1" || c.Keys[0].UploadedBy != "" {
			t.Fatalf("client from before 00003: managed_by %q keys %+v; want both empty", c.ManagedBy, c.Keys)
		}
	})
	t.Run("ok/access-from-before-requests", func(t *testing.T) {
		// An access row written at version 6 (no reason column) reads
		// after the upgrade with no reason; the outbox starts empty.
		t.Parallel()
		s := openStore(t, b.config(t))
		ctx := t.Context()
		if err := s.MigrateToForTest(ctx, 6); err != nil {
			t.Fatalf("migrate to 6: %v", err)
		}
		if err := s.ExecForTest(ctx, `INSERT INTO access (scope, consumer_orgno, owner_orgno, state)
			VALUES ('acme:a', '910000002', '910000001', 'APPROVED')`); err != nil {
			t.Fatalf("insert a version-6 access row: %v", err)
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		a, err := s.GetAccess(ctx, "acme:a", "910000002")
		if err != nil || a.State != store.AccessApproved || a.Reason != "" {
			t.Fatalf("access from before 00007: %+v, %v; want APPROVED without a reason", a, err)
		}
		ds, err := s.ClaimDeliveries(ctx, store.DeliveryClaim{Now: time.Now(), Owner: "w", Lease: time.Minute, Limit: 10})
		if err != nil || len(ds) != 0 {
			t.Fatalf("ClaimDeliveries after the upgrade: %v, %v; want none", ds, err)
		}
	})
	t.Run("fail/schema-newer-than-binary", func(t *testing.T) {
		t.Parallel()
		s := openStore(t, b.config(t))
		ctx := t.Context()
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		// What a newer portvakt leaves behind.
		if err := s.ExecForTest(ctx, "INSERT INTO goose_db_version (version_id, is_applied) VALUES (99999, TRUE)"); err != nil {
			t.Fatalf("insert version: %v", err)
		}
		if err := s.SchemaCheck(ctx); !errors.Is(err, sqlstore.ErrSchemaTooNew) {
			t.Fatalf("SchemaCheck: %v, want ErrSchemaTooNew", err)
		}
		if err := s.Migrate(ctx); !errors.Is(err, sqlstore.ErrSchemaTooNew) {
			t.Fatalf("Migrate: %v, want ErrSchemaTooNew", err)
		}
	})
}

func TestReplicasInsertEachKeyOnceSQLite(t *testing.T) {
	t.Parallel()
	testReplicasInsertEachKeyOnce(t, sqliteBackend())
}

func TestReplicasInsertEachKeyOncePostgres(t *testing.T) {
	t.Parallel()
	testReplicasInsertEachKeyOnce(t, postgresBackend(t))
}

// Two stores on one database, as two replicas have, take many concurrent
// inserts: distinct keys, and keys submitted up to four times over both.
// Each key is inserted once, by exactly one request, whose row is the one
// stored; the others are replays. Batches overlap here in every order, so
// this also finds batches that deadlock on each other's keys.
func testReplicasInsertEachKeyOnce(t *testing.T, b backend) {
	t.Helper()
	cfg := b.config(t)
	replicas := []*sqlstore.Store{openStore(t, cfg), openStore(t, cfg)}
	if err := replicas[0].Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	const keys = 300
	type submission struct {
		replica int
		tok     store.IssuedToken
	}
	var subs []submission
	now := time.Now()
	for k := range keys {
		for i := range 1 + k%4 {
			tok := store.IssuedToken{
				ClientID: fmt.Sprintf("c%d", k%7), AssertionJTI: fmt.Sprintf("j%d", k), TokenJTI: fmt.Sprintf("t%d-%d", k, i),
				ConsumerOrgno: "910000002", IssuedAt: now, ExpiresAt: now.Add(time.Minute),
			}
			subs = append(subs, submission{replica: (k + i) % 2, tok: tok})
		}
	}
	rand.Shuffle(len(subs), func(i, j int) { subs[i], subs[j] = subs[j], subs[i] })
	errs := make([]error, len(subs))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, sub := range subs {
		wg.Go(func() {
			<-start
			errs[i] = replicas[sub.replica].InsertIssuedToken(t.Context(), sub.tok)
		})
	}
	close(start)
	wg.Wait()
	owner := map[string]string{} // assertion jti -> the token jti told ok
	for i, err := range errs {
		tok := subs[i].tok
		switch {
		case err == nil:
			if prev, dup := owner[tok.AssertionJTI]; dup {
				t.Errorf("assertion %s inserted twice: tokens %s and %s", tok.AssertionJTI, prev, tok.TokenJTI)
			}
			owner[tok.AssertionJTI] = tok.TokenJTI
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("InsertIssuedToken %s: %v", tok.TokenJTI, err)
		}
	}
	if len(owner) != keys {
		t.Errorf("%d assertions inserted, want %d", len(owner), keys)
	}
	stored, err := replicas[1].ListIssuedTokens(t.Context(), store.IssuedTokenFilter{Limit: 2 * keys})
	if err != nil {
		t.Fatalf("ListIssuedTokens: %v", err)
	}
	if len(stored) != keys {
		t.Errorf("%d rows stored, want %d", len(stored), keys)
	}
	for _, row := range stored {
		if owner[row.AssertionJTI] != row.TokenJTI {
			t.Errorf("assertion %s: row holds token %s, but %q was told ok", row.AssertionJTI, row.TokenJTI, owner[row.AssertionJTI])
		}
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		cfg         sqlstore.Config
		unavailable bool
	}{
		{"fail/unknown-driver", sqlstore.Config{Driver: "mysql", DSN: "x"}, false},
		{"fail/empty-dsn", sqlstore.Config{Driver: sqlstore.DriverSQLite}, false},
		{"fail/sqlite-missing-dir", sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: filepath.Join(t.TempDir(), "no", "such", "dir", "db")}, true},
		{"fail/postgres-refused", sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: "postgres://u@127.0.0.1:1/db?connect_timeout=2", StatementTimeout: time.Second}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := sqlstore.Open(t.Context(), tc.cfg)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if got := errors.Is(err, store.ErrUnavailable); got != tc.unavailable {
				t.Fatalf("Open: %v; ErrUnavailable %v, want %v", err, got, tc.unavailable)
			}
			if strings.Contains(err.Error(), "password") {
				t.Fatalf("Open error leaks DSN: %v", err)
			}
		})
	}
}

func TestClosedStoreUnavailable(t *testing.T) {
	t.Parallel()
	s, err := sqlstore.Open(t.Context(), sqliteBackend().config(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	s.Close()
	for name, err := range map[string]error{
		"Ping":              s.Ping(t.Context()),
		"InsertIssuedToken": s.InsertIssuedToken(t.Context(), store.IssuedToken{ClientID: "c", AssertionJTI: "j"}),
		"GetScope":          func() error { _, err := s.GetScope(t.Context(), "a:b"); return err }(),
	} {
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s on a closed store: %v, want ErrUnavailable", name, err)
		}
	}
}

func BenchmarkInsertIssuedToken(b *testing.B) {
	s, err := sqlstore.Open(b.Context(), sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: filepath.Join(b.TempDir(), "bench.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(b.Context()); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	tok := store.IssuedToken{
		ClientID: "9b7ac4b2-3f0e-4a55-8c1e-2f5d6a7b8c9d", TokenJTI: "t", ConsumerOrgno: "910000002",
		Scopes: []string{"acme:a", "acme:b"}, Audience: []string{"unspecified"},
		IssuedAt: now, ExpiresAt: now.Add(2 * time.Minute), ClientAMR: "private_key_jwt",
	}
	var next atomic.Int64 // across the runs of the sub-benchmarks: keys stay unique
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			tok.AssertionJTI = fmt.Sprintf("s-%d", next.Add(1))
			if err := s.InsertIssuedToken(b.Context(), tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel-16", func(b *testing.B) {
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			tok := tok
			for pb.Next() {
				tok.AssertionJTI = fmt.Sprintf("q-%d", next.Add(1))
				if err := s.InsertIssuedToken(b.Context(), tok); err != nil {
					b.Error(err)
				}
			}
		})
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			tok := tok
			for pb.Next() {
				tok.AssertionJTI = fmt.Sprintf("p-%d", next.Add(1))
				if err := s.InsertIssuedToken(b.Context(), tok); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
