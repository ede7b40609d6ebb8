package scaleout_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/pgtest"
	"github.com/portvakt/portvakt/internal/store/sqlstore"
	"github.com/portvakt/portvakt/internal/testpki"
	"github.com/portvakt/portvakt/internal/testserver"
)

// minimalConfig writes the smallest config `migrate` and `serve` accept
// for dsn.
func minimalConfig(t *testing.T, dsn string) string {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "root.pem")
	if err := os.WriteFile(root, testpki.CertPEM(testserver.SharedPKI(t).Root.Cert), 0o600); err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, ln.Addr().String())
		ln.Close()
	}
	cfg := map[string]any{
		"issuer":   "http://" + addrs[0] + "/",
		"listen":   addrs[0],
		"ops":      map[string]any{"listen": addrs[1]},
		"data_dir": filepath.Join(dir, "data"),
		"database": map[string]any{"driver": "postgres", "dsn": dsn},
		"platform": map[string]any{"org": testserver.PlatformOrg},
		"trust":    map[string]any{"roots": []string{root}},
	}
	b, _ := json.Marshal(cfg)
	file := filepath.Join(dir, "portvakt.yaml")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// portvakt runs the binary with a time limit and returns its output. Its
// environment has no PORTVAKT_ variable: migrate needs no signing key.
func portvakt(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return portvaktEnv(t, nil, args...)
}

// portvaktEnv is portvakt with the variables of extra set.
func portvaktEnv(t *testing.T, extra []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testserver.Binary(t), args...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PORTVAKT_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, extra...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestMigrateConcurrentProcesses(t *testing.T) {
	dsn := pgtest.FreshSchema(t, postgresDSN(t))
	cfg := minimalConfig(t, dsn)
	testserver.Binary(t) // build before the race, not during it

	t.Run("ok/two-concurrent-migrate-up-on-empty", func(t *testing.T) {
		outs := make([]string, 2)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Go(func() { outs[i], errs[i] = portvakt(t, "migrate", "up", "--config", cfg) })
		}
		wg.Wait()
		for i := range 2 {
			if errs[i] != nil || !strings.Contains(outs[i], "migrations applied") {
				t.Errorf("migrate up #%d: %v\n%s", i+1, errs[i], outs[i])
			}
		}
		assertOneSchemaVersion(t, dsn)
	})
	t.Run("ok/re-run-is-idempotent", func(t *testing.T) {
		if out, err := portvakt(t, "migrate", "up", "--config", cfg); err != nil {
			t.Fatalf("migrate up again: %v\n%s", err, out)
		}
		assertOneSchemaVersion(t, dsn)
		out, err := portvakt(t, "migrate", "status", "--config", cfg)
		if err != nil || strings.Contains(out, "pending") || !strings.Contains(out, "applied") {
			t.Errorf("migrate status: %v\n%s", err, out)
		}
	})
	t.Run("fail/serve-refuses-a-newer-schema", func(t *testing.T) {
		// What a newer portvakt leaves behind.
		pgtest.Exec(t, dsn, "INSERT INTO goose_db_version (version_id, is_applied) VALUES (99999, TRUE)")
		kek := base64.StdEncoding.EncodeToString(make([]byte, 32))
		out, err := portvaktEnv(t, []string{"PORTVAKT_SIGNING_KEK=" + kek}, "serve", "--config", cfg)
		if err == nil {
			t.Fatalf("serve started on a newer schema:\n%s", out)
		}
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("serve: %v (not an exit)\n%s", err, out)
		}
		for _, want := range []string{"newer than this binary", "99999", "upgrade portvakt"} {
			if !strings.Contains(out, want) {
				t.Errorf("serve's message lacks %q:\n%s", want, out)
			}
		}
		if out, err := portvakt(t, "migrate", "up", "--config", cfg); err == nil || !strings.Contains(out, "newer than this binary") {
			t.Errorf("migrate up on a newer schema: %v\n%s", err, out)
		}
	})
}

// assertOneSchemaVersion checks that every migration was applied exactly
// once and the schema is at one version.
func assertOneSchemaVersion(t *testing.T, dsn string) {
	t.Helper()
	// The binary's migrations: the SQL files and those written in Go.
	db, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	known, err := db.MigrationStatus(t.Context())
	if err != nil || len(known) == 0 {
		t.Fatalf("migrations: %v", err)
	}
	if dup := sqlInt(t, dsn, "SELECT count(*) FROM (SELECT version_id FROM goose_db_version GROUP BY version_id HAVING count(*) > 1) d"); dup != 0 {
		t.Errorf("%d migrations recorded more than once", dup)
	}
	if n := sqlInt(t, dsn, "SELECT count(*) FROM goose_db_version WHERE version_id > 0 AND is_applied"); n != int64(len(known)) {
		t.Errorf("%d applied migrations recorded, want %d", n, len(known))
	}
	if g := sqlInt(t, dsn, "SELECT count(*) FROM generation"); g != 1 {
		t.Errorf("%d generation rows, want 1", g)
	}
}
