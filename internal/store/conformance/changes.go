package conformance

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/portvakt/portvakt/internal/store"
)

// changeCases check the change log that caches of the access rules read.
var changeCases = []testCase{
	{"ok/changes/one-row-per-record-written", testChangesLogged},
	{"ok/changes/none-when-current", testChangesCurrent},
	{"ok/changes/update-without-records", testChangesNone},
	{"fail/changes/rollback-logs-nothing", testChangesRollback},
	{"fail/changes/more-than-limit", testChangesLimit},
	{"fail/changes/generation-ahead", testChangesAhead},
	{"ok/changes/every-write-method-is-logged", testChangesCoverEveryWrite},
}

// loggedWrites are the Tx methods whose keys the change log records, each
// checked by testChangesLogged. A Tx method that writes a record the rules
// caches hold must log its key (sqlstore: tx.changes.add), or caches never
// see the write; then it goes here and into testChangesLogged.
var loggedWrites = map[string]bool{
	"PutPrefix": true, "CreateScope": true, "UpdateScope": true, "PutAccess": true,
	"PutDelegation": true, "CreateClient": true, "UpdateClient": true,
}

// notRules are the Tx methods that write nothing the rules caches hold.
var notRules = map[string]bool{
	"AppendAudit": true, "CreateWebhook": true, "UpdateWebhook": true, "AppendEvent": true,
	"PutMember": true, "DeleteMember": true,
}

func testChangesCoverEveryWrite(t *testing.T, _ store.Store) {
	reader := reflect.TypeFor[store.Reader]()
	tx := reflect.TypeFor[store.Tx]()
	for i := range tx.NumMethod() {
		name := tx.Method(i).Name
		if _, read := reader.MethodByName(name); read || loggedWrites[name] || notRules[name] {
			continue
		}
		t.Errorf("Tx.%s is neither a read nor a write the change log is known to record: log its keys and list it in loggedWrites (or in notRules)", name)
	}
}

// runChangeCases runs changeCases, each on a fresh store. (The overlay of
// declared records passes ListChanges through: declared records never
// change.)
func runChangeCases(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	for _, tc := range changeCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, open(t))
		})
	}
}

func listChanges(t *testing.T, s store.Store, after int64, limit int) ([]store.Change, int64) {
	t.Helper()
	ch, gen, err := s.ListChanges(t.Context(), after, limit)
	noErr(t, err, fmt.Sprintf("ListChanges(%d, %d)", after, limit))
	return ch, gen
}

func testChangesLogged(t *testing.T, s store.Store) {
	ctx := t.Context()
	g0 := generation(t, s)
	acc := store.Access{Scope: "acme:a", ConsumerOrgno: "910000002", OwnerOrgno: "910000001", State: store.AccessApproved}
	del := store.Delegation{Scope: "acme:a", ConsumerOrgno: "910000002", SupplierOrgno: "910000005", State: store.DelegationActive}
	update(t, s, func(tx store.Tx) error {
		noErr(t, tx.PutPrefix(ctx, store.Prefix{Prefix: "acme", OwnerOrg: "910000001"}), "PutPrefix")
		noErr(t, tx.CreateScope(ctx, scopeRec("a")), "CreateScope")
		noErr(t, tx.PutAccess(ctx, acc), "PutAccess")
		acc.State = store.AccessDenied // the same record twice: one change
		noErr(t, tx.PutAccess(ctx, acc), "PutAccess again")
		noErr(t, tx.PutDelegation(ctx, del), "PutDelegation")
		noErr(t, tx.CreateClient(ctx, clientRec("c1")), "CreateClient")
		return tx.AppendAudit(ctx, store.AuditEvent{Action: "x"})
	})
	update(t, s, func(tx store.Tx) error {
		sc := scopeRec("a")
		sc.Active = false
		noErr(t, tx.UpdateScope(ctx, sc), "UpdateScope")
		c := clientRec("c1")
		c.Active = false
		return tx.UpdateClient(ctx, c)
	})
	g1, g2 := g0+1, g0+2
	want := []store.Change{
		{Generation: g1, Kind: store.ChangeAccess, Name: "acme:a", ConsumerOrgno: "910000002"},
		{Generation: g1, Kind: store.ChangeClient, Name: "c1"},
		{Generation: g1, Kind: store.ChangeDelegation, Name: "acme:a", ConsumerOrgno: "910000002", SupplierOrgno: "910000005"},
		{Generation: g1, Kind: store.ChangePrefix, Name: "acme"},
		{Generation: g1, Kind: store.ChangeScope, Name: "acme:a"},
		{Generation: g2, Kind: store.ChangeClient, Name: "c1"},
		{Generation: g2, Kind: store.ChangeScope, Name: "acme:a"},
	}
	got, gen := listChanges(t, s, g0, 100)
	if gen != g2 {
		t.Fatalf("ListChanges generation = %d, want %d", gen, g2)
	}
	equal(t, got, want, "ListChanges after both Updates")
	got, gen = listChanges(t, s, g1, 100)
	if gen != g2 {
		t.Fatalf("ListChanges generation = %d, want %d", gen, g2)
	}
	equal(t, got, want[5:], "ListChanges after the first Update")
}

func testChangesCurrent(t *testing.T, s store.Store) {
	update(t, s, func(tx store.Tx) error { return tx.CreateScope(t.Context(), scopeRec("a")) })
	g := generation(t, s)
	got, gen := listChanges(t, s, g, 10)
	if len(got) != 0 || gen != g {
		t.Fatalf("ListChanges(current) = %+v, %d; want none, %d", got, gen, g)
	}
}

// An Update that writes no record still accounts for its generation, so
// that a generation without rows can only mean hand-written SQL.
func testChangesNone(t *testing.T, s store.Store) {
	g0 := generation(t, s)
	update(t, s, func(store.Tx) error { return nil })
	update(t, s, func(tx store.Tx) error { return tx.AppendAudit(t.Context(), store.AuditEvent{Action: "x"}) })
	got, gen := listChanges(t, s, g0, 10)
	want := []store.Change{{Generation: g0 + 1, Kind: store.ChangeNone}, {Generation: g0 + 2, Kind: store.ChangeNone}}
	if gen != g0+2 {
		t.Fatalf("ListChanges generation = %d, want %d", gen, g0+2)
	}
	equal(t, got, want, "ListChanges after Updates without records")
}

func testChangesRollback(t *testing.T, s store.Store) {
	g0 := generation(t, s)
	err := s.Update(t.Context(), func(tx store.Tx) error {
		noErr(t, tx.CreateScope(t.Context(), scopeRec("a")), "CreateScope")
		return errBoom
	})
	wantErr(t, err, errBoom, "Update")
	got, gen := listChanges(t, s, g0, 10)
	if len(got) != 0 || gen != g0 {
		t.Fatalf("ListChanges after a rollback = %+v, %d; want none, %d", got, gen, g0)
	}
}

func testChangesLimit(t *testing.T, s store.Store) {
	ctx := t.Context()
	g0 := generation(t, s)
	update(t, s, func(tx store.Tx) error {
		noErr(t, tx.CreateScope(ctx, scopeRec("a")), "CreateScope")
		return tx.CreateScope(ctx, scopeRec("b"))
	})
	update(t, s, func(tx store.Tx) error { return tx.CreateScope(ctx, scopeRec("c")) })
	for _, tc := range []struct {
		name  string
		limit int
		ok    bool
	}{
		{"ok/exactly-limit", 3, true},
		{"fail/more-changes-than-limit", 2, false},
		{"fail/more-generations-than-limit", 1, false},
	} {
		got, gen, err := s.ListChanges(ctx, g0, tc.limit)
		if tc.ok {
			noErr(t, err, tc.name)
			if len(got) != 3 || gen != g0+2 {
				t.Fatalf("%s: %d changes to generation %d, want 3 to %d", tc.name, len(got), gen, g0+2)
			}
			continue
		}
		if !errors.Is(err, store.ErrChangesUnknown) || got != nil {
			t.Fatalf("%s: ListChanges = %+v, %v; want ErrChangesUnknown", tc.name, got, err)
		}
	}
}

// A reader ahead of the store (the database was restored from a backup)
// cannot be brought up to date by changes: it reloads.
func testChangesAhead(t *testing.T, s store.Store) {
	update(t, s, func(store.Tx) error { return nil })
	g := generation(t, s)
	got, _, err := s.ListChanges(t.Context(), g+5, 10)
	if !errors.Is(err, store.ErrChangesUnknown) || got != nil {
		t.Fatalf("ListChanges(ahead) = %+v, %v; want ErrChangesUnknown", got, err)
	}
}
