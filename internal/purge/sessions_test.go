package purge_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/purge"
	"github.com/portvakt/portvakt/internal/store"
)

// Console sessions go once expired; live ones stay.
func TestPurgeConsoleSessions(t *testing.T) {
	ctx := t.Context()
	db := openSQLite(t)
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for i := range 5 {
		s := store.ConsoleSession{IDHash: fmt.Sprintf("old-%d", i), Kind: store.ConsoleSessionPerson,
			Created: now.Add(-time.Hour), LastSeen: now.Add(-time.Hour), Expires: now.Add(-time.Duration(i+1) * time.Second)}
		if err := db.CreateConsoleSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.CreateConsoleSession(ctx, store.ConsoleSession{IDHash: "live", Kind: store.ConsoleSessionPerson,
		Created: now, LastSeen: now, Expires: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	n, err := purge.Once(ctx, db, purge.Config{Batch: 2, Now: func() time.Time { return now }})
	if err != nil || n != 5 {
		t.Fatalf("purged %d (%v), want the 5 expired sessions", n, err)
	}
	if _, err := db.GetConsoleSession(ctx, "live"); err != nil {
		t.Fatalf("the live session was purged: %v", err)
	}
	if _, err := db.GetConsoleSession(ctx, "old-0"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an expired session is left: %v", err)
	}
}
