package sqlstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/store"
	"github.com/portvakt/portvakt/internal/store/sqlstore"
)

// logBuffer is a log sink safe for the listener's goroutine.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// listen runs s.Listen until the test ends and returns the channel its
// OnChange signals and its log.
func listen(t *testing.T, s *sqlstore.Store) (<-chan struct{}, *logBuffer) {
	t.Helper()
	changed := make(chan struct{}, 64)
	logs := &logBuffer{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- s.Listen(ctx, sqlstore.ListenConfig{
			OnChange:   func() { changed <- struct{}{} },
			MinBackoff: 10 * time.Millisecond,
			Log:        slog.New(slog.NewTextHandler(logs, nil)),
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Listen: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Listen did not return after its context was cancelled")
		}
	})
	return changed, logs
}

func waitChange(t *testing.T, changed <-chan struct{}, what string) time.Duration {
	t.Helper()
	start := time.Now()
	select {
	case <-changed:
		return time.Since(start)
	case <-time.After(5 * time.Second): // a bound on failure only
		t.Fatalf("no OnChange %s", what)
		return 0
	}
}

func drain(ch <-chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

func TestListenPostgres(t *testing.T) {
	t.Parallel()
	b := postgresBackend(t)
	cfg := b.config(t)
	// A unique application name finds this test's listening backend.
	app := "portvakt_t_listen_" + randomHex(4)
	u, err := url.Parse(cfg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	cfg.DSN = u.String()
	listener := openStore(t, cfg)
	if err := listener.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	writer := openStore(t, cfg)
	changed, logs := listen(t, listener)
	waitChange(t, changed, "after connecting")

	update := func(t *testing.T) {
		t.Helper()
		err := writer.Update(t.Context(), func(tx store.Tx) error {
			return tx.PutPrefix(t.Context(), store.Prefix{Prefix: "p" + randomHex(3), OwnerOrg: "991825827"})
		})
		if err != nil {
			t.Fatalf("Update: %v", err)
		}
	}

	t.Run("ok/update-notifies-on-commit", func(t *testing.T) {
		drain(changed)
		update(t)
		t.Logf("notified %v after commit", waitChange(t, changed, "after Update"))
	})
	t.Run("ok/rollback-does-not-notify", func(t *testing.T) {
		drain(changed)
		err := writer.Update(t.Context(), func(tx store.Tx) error { return store.ErrConflict })
		if err == nil {
			t.Fatal("Update returned nil")
		}
		select {
		case <-changed:
			// Another test's schema in this database may have notified:
			// the channel is per database. Only fail when it is ours.
			t.Log("a notification arrived; the channel is shared by every schema of the database")
		case <-time.After(300 * time.Millisecond):
		}
	})
	t.Run("ok/reconnects-after-the-connection-dies", func(t *testing.T) {
		drain(changed)
		var n int
		err := writer.RawForTest(t.Context(), "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = '"+app+"' AND query ILIKE 'LISTEN%'", &n)
		if err != nil || n != 1 {
			t.Fatalf("terminate the listener: %d backends, %v", n, err)
		}
		// The reconnect calls OnChange (notifications in between are lost).
		t.Logf("reconnected %v after the kill", waitChange(t, changed, "after reconnecting"))
		if !strings.Contains(logs.String(), "connection lost, reconnecting") {
			t.Errorf("the lost connection was not logged: %q", logs.String())
		}
		drain(changed)
		update(t)
		waitChange(t, changed, "after an Update on the new connection")
	})
}

func TestListenSQLiteReturns(t *testing.T) {
	t.Parallel()
	s := openStore(t, sqliteBackend().config(t))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := s.Listen(ctx, sqlstore.ListenConfig{OnChange: func() {}}); err != nil {
		t.Fatalf("Listen on SQLite: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Listen on SQLite blocked")
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
