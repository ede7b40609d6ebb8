package conformance

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/store"
)

func sessionCases() []testCase {
	return []testCase{
		{"ok/console-session/create-get-update-delete", testSessionLifecycle},
		{"fail/console-session/duplicate-id", testSessionDuplicate},
		{"fail/console-session/update-after-delete", testSessionUpdateGone},
		{"ok/console-session/purge-batches", testSessionPurge},
	}
}

func testSessionLifecycle(t *testing.T, s store.Store) {
	ctx := t.Context()
	in := store.ConsoleSession{IDHash: "h1", Kind: store.ConsoleSessionPerson, Subject: "alice@idp",
		Data: []byte(`{"claim":["310000027"]}`), Created: t0, LastSeen: t0, Expires: t0.Add(30 * time.Minute)}
	noErr(t, s.CreateConsoleSession(ctx, in), "CreateConsoleSession")
	got, err := s.GetConsoleSession(ctx, "h1")
	noErr(t, err, "GetConsoleSession")
	if got.Kind != in.Kind || got.Subject != in.Subject || got.Org != "" || !bytes.Equal(got.Data, in.Data) ||
		!got.Created.Equal(t0.Truncate(time.Microsecond)) || !got.Expires.Equal(in.Expires.Truncate(time.Microsecond)) {
		t.Fatalf("GetConsoleSession = %+v, want %+v", got, in)
	}
	later := t0.Add(5 * time.Minute)
	up := got
	up.Org, up.LastSeen, up.Expires, up.Data = "310000027", later, later.Add(30*time.Minute), nil
	up.Subject = "mallory" // not changed by an update
	noErr(t, s.UpdateConsoleSession(ctx, up), "UpdateConsoleSession")
	got, err = s.GetConsoleSession(ctx, "h1")
	noErr(t, err, "GetConsoleSession after update")
	if got.Org != "310000027" || got.Subject != "alice@idp" || len(got.Data) != 0 ||
		!got.LastSeen.Equal(later.Truncate(time.Microsecond)) || !got.Expires.Equal(later.Add(30*time.Minute).Truncate(time.Microsecond)) {
		t.Fatalf("after update: %+v", got)
	}
	_, err = s.GetConsoleSession(ctx, "h2")
	wantErr(t, err, store.ErrNotFound, "GetConsoleSession of another id")
	noErr(t, s.DeleteConsoleSession(ctx, "h1"), "DeleteConsoleSession")
	_, err = s.GetConsoleSession(ctx, "h1")
	wantErr(t, err, store.ErrNotFound, "GetConsoleSession after delete")
	noErr(t, s.DeleteConsoleSession(ctx, "h1"), "DeleteConsoleSession again")
}

func testSessionDuplicate(t *testing.T, s store.Store) {
	ctx := t.Context()
	in := store.ConsoleSession{IDHash: "h1", Kind: store.ConsoleSessionLogin, Created: t0, LastSeen: t0, Expires: t0.Add(time.Minute)}
	noErr(t, s.CreateConsoleSession(ctx, in), "CreateConsoleSession")
	in.Subject = "other"
	wantErr(t, s.CreateConsoleSession(ctx, in), store.ErrConflict, "CreateConsoleSession with the same id")
	got, err := s.GetConsoleSession(ctx, "h1")
	noErr(t, err, "GetConsoleSession")
	if got.Subject != "" {
		t.Fatalf("the duplicate overwrote the row: %+v", got)
	}
}

func testSessionUpdateGone(t *testing.T, s store.Store) {
	ctx := t.Context()
	wantErr(t, s.UpdateConsoleSession(ctx, store.ConsoleSession{IDHash: "none", LastSeen: t0, Expires: t0}), store.ErrNotFound, "UpdateConsoleSession of no row")
}

func testSessionPurge(t *testing.T, s store.Store) {
	ctx := t.Context()
	for i := range 10 {
		at := t0.Add(time.Duration(i) * time.Second)
		noErr(t, s.CreateConsoleSession(ctx, store.ConsoleSession{IDHash: fmt.Sprintf("old-%d", i), Kind: store.ConsoleSessionPerson,
			Created: t0.Add(-time.Hour), LastSeen: t0.Add(-time.Hour), Expires: at}), "CreateConsoleSession")
	}
	noErr(t, s.CreateConsoleSession(ctx, store.ConsoleSession{IDHash: "live", Kind: store.ConsoleSessionPerson,
		Created: t0, LastSeen: t0, Expires: t0.Add(time.Hour)}), "CreateConsoleSession live")
	cutoff := t0.Add(10 * time.Second)
	for i, want := range []int{4, 4, 2, 0} {
		n, err := s.PurgeConsoleSessions(ctx, cutoff, 4)
		noErr(t, err, "PurgeConsoleSessions")
		if n != want {
			t.Fatalf("PurgeConsoleSessions batch %d deleted %d rows, want %d", i, n, want)
		}
	}
	if _, err := s.GetConsoleSession(ctx, "live"); err != nil {
		t.Fatalf("the live session was purged: %v", err)
	}
	_, err := s.GetConsoleSession(ctx, "old-0")
	wantErr(t, err, store.ErrNotFound, "a purged session")
}
