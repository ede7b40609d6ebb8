package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/store"
)

// Run checks an implementation. open returns a fresh, migrated, empty store
// for one test and arranges its cleanup (t.Cleanup); it is called from
// parallel subtests, so it must be safe for concurrent use.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	runCases(t, open)
	runChangeCases(t, open)
	t.Run("static", func(t *testing.T) {
		// The whole suite again through an empty overlay: everything
		// must pass through unchanged.
		runCases(t, func(t *testing.T) store.Store {
			t.Helper()
			return store.WithStatic(open(t), store.StaticRecords{})
		})
		runStatic(t, open)
		t.Run("ok/page/declared-records-merge", func(t *testing.T) { testStaticPages(t, open) })
	})
}

type testCase struct {
	name string
	run  func(t *testing.T, s store.Store)
}

func runCases(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	cases := []testCase{
		{"ok/ping", testPing},
		{"ok/prefix/put-get-list-replace", testPrefix},
		{"ok/scope/create-get-list-update", testScope},
		{"ok/scope/tx-usable-after-conflict", testScopeConflictInTx},
		{"ok/access/put-get-list-filter", testAccess},
		{"ok/delegation/put-get-list-filter", testDelegation},
		{"ok/client/create-get-list-update", testClient},
		{"ok/client/managed-by-and-uploaded-by", testClientDelegatedAdmin},
		{"ok/roundtrip/times", testTimes},
		{"ok/roundtrip/lists", testLists},
		{"ok/update/reads-own-writes", testReadsOwnWrites},
		{"ok/update/generation-advances", testGeneration},
		{"fail/update/rollback-on-error", testRollback},
		{"fail/update/rollback-on-panic", testRollbackPanic},
		{"fail/notfound", testNotFound},
		{"fail/conflict", testConflict},
		{"ok/audit/append-list", testAuditAppend},
		{"ok/audit/filter-and-page", testAuditFilter},
		{"ok/audit/default-limit", testAuditDefaultLimit},
		{"ok/issued/insert-list", testIssuedInsert},
		{"fail/issued/replay", testIssuedReplay},
		{"fail/issued/concurrent-replay", testIssuedConcurrentReplay},
		{"ok/issued/concurrent-distinct", testIssuedConcurrentDistinct},
		{"fail/issued/cancelled-context", testIssuedCancelled},
		{"ok/issued/start-then-wait", testIssuedStartThenWait},
		{"ok/issued/list-filter", testIssuedFilter},
		{"ok/issued/scope-filter", testIssuedScopeFilter},
		{"ok/issued/keyset-paging", testIssuedKeyset},
		{"ok/issued/purge-batches", testIssuedPurge},
		{"ok/ratelimit/exchange", testRateExchange},
		{"ok/ratelimit/expire-others", testRateExpire},
		{"ok/ratelimit/many-and-limit", testRateManyAndLimit},
	}
	cases = append(cases, signingKeyCases()...)
	cases = append(cases, pageCases()...)
	cases = append(cases, eventCases()...)
	cases = append(cases, dpopCases()...)
	cases = append(cases, sessionCases()...)
	cases = append(cases, memberCases()...)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, open(t))
		})
	}
}

// t0 has nanoseconds and a zone on purpose: stores keep microseconds and
// may hand back UTC, and the suite compares with time.Equal semantics.
var t0 = time.Date(2025, 3, 14, 9, 26, 53, 589793238, time.FixedZone("CET", 3600))

var errBoom = errors.New("conformance: boom")

func update(t *testing.T, s store.Store, fn func(store.Tx) error) {
	t.Helper()
	if err := s.Update(t.Context(), fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func wantErr(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

func noErr(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// equal compares records with times truncated to microseconds in UTC.
func equal(t *testing.T, got, want any, what string) {
	t.Helper()
	g, w := normalize(got), normalize(want)
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, g, w)
	}
}

func normalize(v any) any {
	rv := reflect.ValueOf(v)
	out := reflect.New(rv.Type()).Elem()
	copyNorm(out, rv)
	return out.Interface()
}

var timeType = reflect.TypeFor[time.Time]()

func copyNorm(dst, src reflect.Value) {
	switch {
	case src.Type() == timeType:
		tm := src.Interface().(time.Time)
		if tm.IsZero() {
			dst.Set(reflect.ValueOf(time.Time{}))
		} else {
			dst.Set(reflect.ValueOf(tm.UTC().Truncate(time.Microsecond)))
		}
	case src.Kind() == reflect.Struct:
		for i := range src.NumField() {
			if src.Type().Field(i).IsExported() {
				copyNorm(dst.Field(i), src.Field(i))
			}
		}
	case src.Kind() == reflect.Slice && !src.IsNil() && src.Type().Elem().Kind() == reflect.Struct:
		s := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
		for i := range src.Len() {
			copyNorm(s.Index(i), src.Index(i))
		}
		dst.Set(s)
	default:
		dst.Set(src)
	}
}

func generation(t *testing.T, s store.Store) int64 {
	t.Helper()
	g, err := s.Generation(t.Context())
	noErr(t, err, "Generation")
	return g
}

// Records used across the suite.

func scopeRec(name string) store.Scope {
	return store.Scope{
		Name: "acme:" + name, Prefix: "acme", Subscope: name,
		Description: "desc " + name, LongDescription: "long " + name,
		Active: true, AccessibleForAll: false, DelegationSource: "https://auth.example.no/",
		AllowedIntegrationTypes: []string{"maskinporten"}, ATMaxAge: 600,
		Visibility: store.VisibilityPublic, RequiresAudience: true,
		Audiences:  []string{"https://api.example.no/a", "https://api.example.no/b"},
		OwnerOrgno: "910000001", Created: t0, LastUpdated: t0.Add(time.Second),
	}
}

func clientRec(id string) store.Client {
	return store.Client{
		ClientID: id, ClientOrgno: "910000002", ClientName: "name " + id, Description: "d",
		IntegrationType: "maskinporten", TokenEndpointAuthMethod: "private_key_jwt",
		Scopes: []string{"acme:a", "acme:b"}, AccessTokenLifetime: 300,
		Keys: []store.ClientKey{{
			KID: "k1", JWK: json.RawMessage(`{"crv":"P-256","kid":"k1","kty":"EC","x":"AA","y":"BB"}`),
			Created: t0, Expires: t0.AddDate(1, 0, 0),
		}},
		Active: true, Created: t0, LastUpdated: t0,
	}
}

func tokenRec(client, jti string, iat time.Time) store.IssuedToken {
	return store.IssuedToken{
		ClientID: client, AssertionJTI: jti, TokenJTI: "tok-" + client + "-" + jti,
		ConsumerOrgno: "910000002", Scopes: []string{"acme:a"}, Audience: []string{"unspecified"},
		IssuedAt: iat, ExpiresAt: iat.Add(2 * time.Minute), ClientAMR: "private_key_jwt",
	}
}

func testPing(t *testing.T, s store.Store) {
	noErr(t, s.Ping(t.Context()), "Ping")
}

func testPrefix(t *testing.T, s store.Store) {
	ctx := t.Context()
	b := store.Prefix{Prefix: "bravo", OwnerOrg: "910000001", Created: t0, LastUpdated: t0}
	a := store.Prefix{Prefix: "alpha", OwnerOrg: "910000002", Created: t0, LastUpdated: t0}
	update(t, s, func(tx store.Tx) error {
		if err := tx.PutPrefix(ctx, b); err != nil {
			return err
		}
		return tx.PutPrefix(ctx, a)
	})
	got, err := s.GetPrefix(ctx, "bravo")
	noErr(t, err, "GetPrefix")
	equal(t, got, b, "GetPrefix")
	list, err := s.ListPrefixes(ctx)
	noErr(t, err, "ListPrefixes")
	equal(t, list, []store.Prefix{a, b}, "ListPrefixes (sorted by prefix)")

	b.OwnerOrg = "910000003"
	b.LastUpdated = t0.Add(time.Hour)
	update(t, s, func(tx store.Tx) error { return tx.PutPrefix(ctx, b) })
	got, err = s.GetPrefix(ctx, "bravo")
	noErr(t, err, "GetPrefix after replace")
	equal(t, got, b, "GetPrefix after replace")
}

func testScope(t *testing.T, s store.Store) {
	ctx := t.Context()
	x, y := scopeRec("x"), scopeRec("y")
	y.Active, y.RequiresAudience, y.AccessibleForAll = false, false, true
	y.DelegationSource, y.Visibility = "", store.VisibilityPrivate
	update(t, s, func(tx store.Tx) error {
		if err := tx.CreateScope(ctx, y); err != nil {
			return err
		}
		return tx.CreateScope(ctx, x)
	})
	got, err := s.GetScope(ctx, x.Name)
	noErr(t, err, "GetScope")
	equal(t, got, x, "GetScope")
	list, err := s.ListScopes(ctx)
	noErr(t, err, "ListScopes")
	equal(t, list, []store.Scope{x, y}, "ListScopes (sorted by name)")

	x.Active = false
	x.Description = ""
	x.ATMaxAge = 0
	x.Audiences = nil
	x.LastUpdated = t0.Add(time.Hour)
	update(t, s, func(tx store.Tx) error { return tx.UpdateScope(ctx, x) })
	got, err = s.GetScope(ctx, x.Name)
	noErr(t, err, "GetScope after update")
	equal(t, got, x, "GetScope after update (zero values written too)")
}

func testScopeConflictInTx(t *testing.T, s store.Store) {
	ctx := t.Context()
	update(t, s, func(tx store.Tx) error { return tx.CreateScope(ctx, scopeRec("x")) })
	update(t, s, func(tx store.Tx) error {
		wantErr(t, tx.CreateScope(ctx, scopeRec("x")), store.ErrConflict, "CreateScope of an existing name")
		return tx.CreateScope(ctx, scopeRec("y"))
	})
	_, err := s.GetScope(ctx, "acme:y")
	noErr(t, err, "GetScope of the scope created after a conflict in the same Tx")
}

func testAccess(t *testing.T, s store.Store) {
	ctx := t.Context()
	rows := []store.Access{
		{Scope: "acme:a", ConsumerOrgno: "910000002", OwnerOrgno: "910000001", State: store.AccessApproved, Created: t0, LastUpdated: t0},
		{Scope: "acme:a", ConsumerOrgno: "910000003", OwnerOrgno: "910000001", State: store.AccessDenied, Created: t0, LastUpdated: t0},
		{Scope: "beta:b", ConsumerOrgno: "910000002", OwnerOrgno: "910000009", State: store.AccessApproved, Created: t0, LastUpdated: t0},
	}
	update(t, s, func(tx store.Tx) error {
		for _, a := range []store.Access{rows[2], rows[1], rows[0]} {
			if err := tx.PutAccess(ctx, a); err != nil {
				return err
			}
		}
		return nil
	})
	got, err := s.GetAccess(ctx, "acme:a", "910000003")
	noErr(t, err, "GetAccess")
	equal(t, got, rows[1], "GetAccess")
	for _, tc := range []struct {
		name string
		f    store.AccessFilter
		want []store.Access
	}{
		{"all", store.AccessFilter{}, rows},
		{"scope", store.AccessFilter{Scope: "acme:a"}, rows[:2]},
		{"consumer", store.AccessFilter{ConsumerOrgno: "910000002"}, []store.Access{rows[0], rows[2]}},
		{"owner", store.AccessFilter{OwnerOrgno: "910000009"}, rows[2:]},
		{"scope+consumer", store.AccessFilter{Scope: "acme:a", ConsumerOrgno: "910000003"}, rows[1:2]},
		{"none", store.AccessFilter{Scope: "nope:x"}, nil},
	} {
		list, err := s.ListAccess(ctx, tc.f)
		noErr(t, err, "ListAccess "+tc.name)
		if len(list) == 0 && len(tc.want) == 0 {
			continue
		}
		equal(t, list, tc.want, "ListAccess "+tc.name)
	}
	// PutAccess replaces the row for (scope, consumer).
	r := rows[1]
	r.State, r.LastUpdated = store.AccessApproved, t0.Add(time.Hour)
	update(t, s, func(tx store.Tx) error { return tx.PutAccess(ctx, r) })
	got, err = s.GetAccess(ctx, r.Scope, r.ConsumerOrgno)
	noErr(t, err, "GetAccess after replace")
	equal(t, got, r, "GetAccess after replace")
	list, err := s.ListAccess(ctx, store.AccessFilter{})
	noErr(t, err, "ListAccess after replace")
	if len(list) != 3 {
		t.Fatalf("ListAccess after replace: %d rows, want 3", len(list))
	}
}

func testDelegation(t *testing.T, s store.Store) {
	ctx := t.Context()
	rows := []store.Delegation{
		{Scope: "acme:a", ConsumerOrgno: "910000002", SupplierOrgno: "910000005", State: store.DelegationActive, Created: t0, LastUpdated: t0},
		{Scope: "acme:a", ConsumerOrgno: "910000002", SupplierOrgno: "910000006", State: store.DelegationRevoked, Created: t0, LastUpdated: t0},
		{Scope: "acme:b", ConsumerOrgno: "910000003", SupplierOrgno: "910000005", State: store.DelegationActive, Created: t0, LastUpdated: t0},
	}
	update(t, s, func(tx store.Tx) error {
		for _, d := range []store.Delegation{rows[2], rows[0], rows[1]} {
			if err := tx.PutDelegation(ctx, d); err != nil {
				return err
			}
		}
		return nil
	})
	got, err := s.GetDelegation(ctx, "acme:a", "910000002", "910000006")
	noErr(t, err, "GetDelegation")
	equal(t, got, rows[1], "GetDelegation")
	for _, tc := range []struct {
		name string
		f    store.DelegationFilter
		want []store.Delegation
	}{
		{"all", store.DelegationFilter{}, rows},
		{"scope", store.DelegationFilter{Scope: "acme:b"}, rows[2:]},
		{"consumer", store.DelegationFilter{ConsumerOrgno: "910000002"}, rows[:2]},
		{"supplier", store.DelegationFilter{SupplierOrgno: "910000005"}, []store.Delegation{rows[0], rows[2]}},
	} {
		list, err := s.ListDelegations(ctx, tc.f)
		noErr(t, err, "ListDelegations "+tc.name)
		equal(t, list, tc.want, "ListDelegations "+tc.name)
	}
	r := rows[0]
	r.State, r.LastUpdated = store.DelegationRevoked, t0.Add(time.Hour)
	update(t, s, func(tx store.Tx) error { return tx.PutDelegation(ctx, r) })
	got, err = s.GetDelegation(ctx, r.Scope, r.ConsumerOrgno, r.SupplierOrgno)
	noErr(t, err, "GetDelegation after replace")
	equal(t, got, r, "GetDelegation after replace")
}

func testClient(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, b := clientRec("c-b"), clientRec("c-a")
	b.Keys = nil
	update(t, s, func(tx store.Tx) error {
		if err := tx.CreateClient(ctx, a); err != nil {
			return err
		}
		return tx.CreateClient(ctx, b)
	})
	got, err := s.GetClient(ctx, a.ClientID)
	noErr(t, err, "GetClient")
	equal(t, got, a, "GetClient")
	list, err := s.ListClients(ctx)
	noErr(t, err, "ListClients")
	equal(t, list, []store.Client{b, a}, "ListClients (sorted by client_id)")

	a.Keys = append(a.Keys, store.ClientKey{KID: "k2", JWK: json.RawMessage(`{"kid":"k2","kty":"RSA"}`), Created: t0.Add(time.Hour), Expires: t0.Add(time.Hour).AddDate(1, 0, 0)})
	a.Active = false
	a.Scopes = []string{}
	update(t, s, func(tx store.Tx) error { return tx.UpdateClient(ctx, a) })
	got, err = s.GetClient(ctx, a.ClientID)
	noErr(t, err, "GetClient after update")
	equal(t, got, a, "GetClient after update")
}

// testClientDelegatedAdmin: managed_by and each key's uploaded_by round-trip,
// empty or set, through create, list and update.
func testClientDelegatedAdmin(t *testing.T, s store.Store) {
	ctx := t.Context()
	managed, own := clientRec("c-managed"), clientRec("c-own")
	managed.ManagedBy = "910000003"
	managed.Keys[0].UploadedBy = "910000003"
	managed.Keys = append(managed.Keys, store.ClientKey{KID: "k-owner", JWK: json.RawMessage(`{"kid":"k-owner","kty":"RSA"}`),
		Created: t0, Expires: t0.AddDate(1, 0, 0), UploadedBy: managed.ClientOrgno})
	update(t, s, func(tx store.Tx) error {
		if err := tx.CreateClient(ctx, managed); err != nil {
			return err
		}
		return tx.CreateClient(ctx, own)
	})
	got, err := s.GetClient(ctx, managed.ClientID)
	noErr(t, err, "GetClient")
	equal(t, got, managed, "GetClient of a managed client")
	list, err := s.ListClients(ctx)
	noErr(t, err, "ListClients")
	equal(t, list, []store.Client{managed, own}, "ListClients")

	// The vendor's key goes, the owner's stays, the client is deactivated.
	managed.Keys = managed.Keys[1:]
	managed.Active = false
	update(t, s, func(tx store.Tx) error { return tx.UpdateClient(ctx, managed) })
	got, err = s.GetClient(ctx, managed.ClientID)
	noErr(t, err, "GetClient after update")
	equal(t, got, managed, "GetClient after update")
	if got.ManagedBy != "910000003" || got.Keys[0].UploadedBy != got.ClientOrgno {
		t.Fatalf("after update: managed_by %q, uploaded_by %q", got.ManagedBy, got.Keys[0].UploadedBy)
	}
}

func testTimes(t *testing.T, s store.Store) {
	ctx := t.Context()
	zones := []*time.Location{time.UTC, time.FixedZone("x", -7*3600-1800), time.FixedZone("CEST", 2*3600)}
	var want []store.Prefix
	for i, z := range zones {
		p := store.Prefix{Prefix: fmt.Sprintf("p%d", i), OwnerOrg: "910000001", Created: t0.In(z).Add(time.Duration(i) * 999 * time.Nanosecond)}
		if i > 0 {
			p.LastUpdated = time.Date(2099, 12, 31, 23, 59, 59, 999999999, z)
		}
		want = append(want, p)
	}
	update(t, s, func(tx store.Tx) error {
		for _, p := range want {
			if err := tx.PutPrefix(ctx, p); err != nil {
				return err
			}
		}
		return nil
	})
	got, err := s.ListPrefixes(ctx)
	noErr(t, err, "ListPrefixes")
	if len(got) != len(want) {
		t.Fatalf("ListPrefixes: %d rows, want %d", len(got), len(want))
	}
	for i := range want {
		for _, c := range []struct{ got, want time.Time }{{got[i].Created, want[i].Created}, {got[i].LastUpdated, want[i].LastUpdated}} {
			w := c.want.Truncate(time.Microsecond)
			if c.want.IsZero() {
				if !c.got.IsZero() {
					t.Fatalf("prefix %s: zero time read back as %v", want[i].Prefix, c.got)
				}
				continue
			}
			if !c.got.Equal(w) {
				t.Fatalf("prefix %s: time %v read back as %v, want %v", want[i].Prefix, c.want, c.got, w)
			}
		}
	}
}

func testLists(t *testing.T, s store.Store) {
	ctx := t.Context()
	for i, lists := range [][]string{nil, {}, {"one"}, {"a b", "ü", `quote"d`, "a,b"}} {
		sc := scopeRec(fmt.Sprintf("l%d", i))
		sc.AllowedIntegrationTypes, sc.Audiences = lists, lists
		c := clientRec(fmt.Sprintf("l%d", i))
		c.Scopes = lists
		tok := tokenRec(c.ClientID, "j", t0)
		tok.Scopes, tok.Audience = lists, lists
		update(t, s, func(tx store.Tx) error {
			if err := tx.CreateScope(ctx, sc); err != nil {
				return err
			}
			return tx.CreateClient(ctx, c)
		})
		noErr(t, s.InsertIssuedToken(ctx, tok), "InsertIssuedToken")
		gotS, err := s.GetScope(ctx, sc.Name)
		noErr(t, err, "GetScope")
		equal(t, gotS, sc, "scope lists")
		gotC, err := s.GetClient(ctx, c.ClientID)
		noErr(t, err, "GetClient")
		equal(t, gotC, c, "client lists")
		gotT, err := s.ListIssuedTokens(ctx, store.IssuedTokenFilter{ClientID: c.ClientID})
		noErr(t, err, "ListIssuedTokens")
		equal(t, gotT, []store.IssuedToken{tok}, "token lists")
	}
}

func testReadsOwnWrites(t *testing.T, s store.Store) {
	ctx := t.Context()
	update(t, s, func(tx store.Tx) error {
		noErr(t, tx.CreateScope(ctx, scopeRec("x")), "CreateScope")
		got, err := tx.GetScope(ctx, "acme:x")
		noErr(t, err, "Tx.GetScope")
		equal(t, got, scopeRec("x"), "Tx.GetScope")
		noErr(t, tx.PutAccess(ctx, store.Access{Scope: "acme:x", ConsumerOrgno: "910000002", State: store.AccessApproved}), "PutAccess")
		list, err := tx.ListAccess(ctx, store.AccessFilter{Scope: "acme:x"})
		noErr(t, err, "Tx.ListAccess")
		if len(list) != 1 {
			t.Fatalf("Tx.ListAccess: %d rows, want 1", len(list))
		}
		return nil
	})
}

func testGeneration(t *testing.T, s store.Store) {
	g0 := generation(t, s)
	update(t, s, func(store.Tx) error { return nil })
	g1 := generation(t, s)
	if g1 <= g0 {
		t.Fatalf("generation %d after a committed Update, was %d", g1, g0)
	}
	update(t, s, func(tx store.Tx) error {
		return tx.PutPrefix(t.Context(), store.Prefix{Prefix: "g", OwnerOrg: "910000001"})
	})
	if g2 := generation(t, s); g2 <= g1 {
		t.Fatalf("generation %d after a second Update, was %d", g2, g1)
	}
}

func testRollback(t *testing.T, s store.Store) {
	ctx := t.Context()
	g0 := generation(t, s)
	err := s.Update(ctx, func(tx store.Tx) error {
		noErr(t, tx.PutPrefix(ctx, store.Prefix{Prefix: "acme", OwnerOrg: "910000001"}), "PutPrefix")
		noErr(t, tx.CreateScope(ctx, scopeRec("x")), "CreateScope")
		noErr(t, tx.PutAccess(ctx, store.Access{Scope: "acme:x", ConsumerOrgno: "910000002", State: store.AccessApproved}), "PutAccess")
		noErr(t, tx.CreateClient(ctx, clientRec("c")), "CreateClient")
		noErr(t, tx.AppendAudit(ctx, store.AuditEvent{Action: "scope.create", Orgs: []string{"910000001"}}), "AppendAudit")
		return fmt.Errorf("wrapped: %w", errBoom)
	})
	wantErr(t, err, errBoom, "Update returns fn's error")
	assertEmpty(t, s, g0)
}

func testRollbackPanic(t *testing.T, s store.Store) {
	ctx := t.Context()
	g0 := generation(t, s)
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the panic in fn did not reach the caller of Update")
			}
		}()
		_ = s.Update(ctx, func(tx store.Tx) error {
			noErr(t, tx.CreateScope(ctx, scopeRec("x")), "CreateScope")
			noErr(t, tx.AppendAudit(ctx, store.AuditEvent{Action: "scope.create"}), "AppendAudit")
			panic("boom")
		})
	}()
	assertEmpty(t, s, g0)
	// The store is still usable: the transaction let go of its connection.
	update(t, s, func(tx store.Tx) error { return tx.CreateScope(ctx, scopeRec("y")) })
}

func assertEmpty(t *testing.T, s store.Store, g0 int64) {
	t.Helper()
	ctx := t.Context()
	if g := generation(t, s); g != g0 {
		t.Fatalf("generation %d after a rolled back Update, want %d", g, g0)
	}
	_, err := s.GetScope(ctx, "acme:x")
	wantErr(t, err, store.ErrNotFound, "GetScope after rollback")
	_, err = s.GetPrefix(ctx, "acme")
	wantErr(t, err, store.ErrNotFound, "GetPrefix after rollback")
	_, err = s.GetClient(ctx, "c")
	wantErr(t, err, store.ErrNotFound, "GetClient after rollback")
	acc, err := s.ListAccess(ctx, store.AccessFilter{})
	noErr(t, err, "ListAccess")
	ev, err := s.ListAudit(ctx, store.AuditFilter{})
	noErr(t, err, "ListAudit")
	if len(acc) != 0 || len(ev) != 0 {
		t.Fatalf("after rollback: %d access rows and %d audit events, want none", len(acc), len(ev))
	}
}

func testNotFound(t *testing.T, s store.Store) {
	ctx := t.Context()
	cases := []struct {
		name string
		call func() error
	}{
		{"fail/get-prefix", func() error { _, err := s.GetPrefix(ctx, "nope"); return err }},
		{"fail/get-scope", func() error { _, err := s.GetScope(ctx, "nope:x"); return err }},
		{"fail/get-access", func() error { _, err := s.GetAccess(ctx, "nope:x", "910000002"); return err }},
		{"fail/get-delegation", func() error { _, err := s.GetDelegation(ctx, "nope:x", "910000002", "910000003"); return err }},
		{"fail/get-client", func() error { _, err := s.GetClient(ctx, "nope"); return err }},
		{"fail/update-scope", func() error {
			return s.Update(ctx, func(tx store.Tx) error { return tx.UpdateScope(ctx, scopeRec("nope")) })
		}},
		{"fail/update-client", func() error {
			return s.Update(ctx, func(tx store.Tx) error { return tx.UpdateClient(ctx, clientRec("nope")) })
		}},
		{"fail/tx-get-scope", func() error {
			return s.Update(ctx, func(tx store.Tx) error { _, err := tx.GetScope(ctx, "nope:x"); return err })
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { wantErr(t, tc.call(), store.ErrNotFound, tc.name) })
	}
	list, err := s.ListScopes(ctx)
	noErr(t, err, "ListScopes of an empty store")
	if len(list) != 0 {
		t.Fatalf("ListScopes of an empty store: %d rows", len(list))
	}
}

func testConflict(t *testing.T, s store.Store) {
	ctx := t.Context()
	update(t, s, func(tx store.Tx) error {
		if err := tx.CreateScope(ctx, scopeRec("x")); err != nil {
			return err
		}
		return tx.CreateClient(ctx, clientRec("c"))
	})
	inactive := scopeRec("x")
	inactive.Active = false
	update(t, s, func(tx store.Tx) error { return tx.UpdateScope(ctx, inactive) })
	cases := []struct {
		name string
		fn   func(tx store.Tx) error
	}{
		{"fail/create-scope-inactive-twin", func(tx store.Tx) error { return tx.CreateScope(ctx, scopeRec("x")) }},
		{"fail/create-client", func(tx store.Tx) error { return tx.CreateClient(ctx, clientRec("c")) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g0 := generation(t, s)
			wantErr(t, s.Update(ctx, tc.fn), store.ErrConflict, tc.name)
			if g := generation(t, s); g != g0 {
				t.Fatalf("generation moved from %d to %d on a failed Update", g0, g)
			}
		})
	}
	got, err := s.GetScope(ctx, "acme:x")
	noErr(t, err, "GetScope")
	equal(t, got, inactive, "the existing scope is untouched")
}

func auditEvent(i int, org, action, target string) store.AuditEvent {
	return store.AuditEvent{
		Time: t0.Add(time.Duration(i) * time.Minute), ActorOrg: org, ActorClientID: "c", ActorTokenJTI: fmt.Sprintf("jti-%d", i),
		Action: action, TargetKind: "scope", Target: target, Orgs: []string{org, "910000001"},
		Before: json.RawMessage(`{"a":1}`), After: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i)),
	}
}

func testAuditAppend(t *testing.T, s store.Store) {
	ctx := t.Context()
	e1 := auditEvent(1, "910000002", "scope.create", "acme:x")
	// From the console; e2 has no person.
	e1.ActorPerson = "kari.nordmann@idp.example"
	e2 := store.AuditEvent{Action: "client.delete", Orgs: []string{"910000003", "910000003"}} // no time, no before/after
	update(t, s, func(tx store.Tx) error {
		if err := tx.AppendAudit(ctx, e1); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, e2)
	})
	got, err := s.ListAudit(ctx, store.AuditFilter{})
	noErr(t, err, "ListAudit")
	if len(got) != 2 {
		t.Fatalf("ListAudit: %d events, want 2", len(got))
	}
	if got[0].ID <= got[1].ID || got[1].ID <= 0 {
		t.Fatalf("ListAudit ids %d, %d: want positive and newest first", got[0].ID, got[1].ID)
	}
	if got[0].Time.IsZero() {
		t.Fatal("AppendAudit did not stamp an event without a time")
	}
	e1.ID = got[1].ID
	equal(t, got[1], e1, "audit event round-trip")
	e2.ID, e2.Time = got[0].ID, got[0].Time
	equal(t, got[0], e2, "audit event without time")

	// Ids keep growing across transactions.
	update(t, s, func(tx store.Tx) error { return tx.AppendAudit(ctx, e1) })
	got, err = s.ListAudit(ctx, store.AuditFilter{Limit: 1})
	noErr(t, err, "ListAudit")
	if len(got) != 1 || got[0].ID <= e2.ID {
		t.Fatalf("ListAudit after a second Update: %+v, want one event with id > %d", got, e2.ID)
	}
}

func testAuditFilter(t *testing.T, s store.Store) {
	ctx := t.Context()
	var all []store.AuditEvent // in append order
	orgs := []string{"910000002", "910000003", "910000004"}
	update(t, s, func(tx store.Tx) error {
		for i := range 12 {
			e := auditEvent(i, orgs[i%3], []string{"scope.create", "scope.update"}[i%2], fmt.Sprintf("acme:%d", i%4))
			if err := tx.AppendAudit(ctx, e); err != nil {
				return err
			}
			all = append(all, e)
		}
		return nil
	})
	page, err := s.ListAudit(ctx, store.AuditFilter{})
	noErr(t, err, "ListAudit")
	if len(page) != 12 {
		t.Fatalf("ListAudit: %d events, want 12", len(page))
	}
	ids := make([]int64, 12) // ids[i] is the id of all[i]
	for i, e := range page {
		ids[11-i] = e.ID
	}
	pick := func(idx ...int) []int64 {
		out := make([]int64, len(idx))
		for i, x := range idx {
			out[i] = ids[x]
		}
		return out
	}
	cases := []struct {
		name string
		f    store.AuditFilter
		want []int64
	}{
		{"ok/org", store.AuditFilter{Org: "910000003"}, pick(10, 7, 4, 1)},
		{"ok/org-shared", store.AuditFilter{Org: "910000001", Limit: 3}, pick(11, 10, 9)},
		{"ok/action", store.AuditFilter{Action: "scope.update"}, pick(11, 9, 7, 5, 3, 1)},
		{"ok/target", store.AuditFilter{Target: "acme:2"}, pick(10, 6, 2)},
		{"ok/org+action", store.AuditFilter{Org: "910000002", Action: "scope.create"}, pick(6, 0)},
		{"ok/from-inclusive-to-exclusive", store.AuditFilter{From: all[3].Time, To: all[6].Time}, pick(5, 4, 3)},
		{"ok/before-id", store.AuditFilter{BeforeID: ids[5]}, pick(4, 3, 2, 1, 0)},
		{"ok/page", store.AuditFilter{BeforeID: ids[9], Limit: 2}, pick(8, 7)},
		{"ok/org-page", store.AuditFilter{Org: "910000004", BeforeID: ids[8], Limit: 2}, pick(5, 2)},
		{"ok/nothing", store.AuditFilter{Org: "999999999"}, []int64{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ListAudit(ctx, tc.f)
			noErr(t, err, "ListAudit")
			gotIDs := make([]int64, len(got))
			for i, e := range got {
				gotIDs[i] = e.ID
			}
			if !reflect.DeepEqual(gotIDs, tc.want) {
				t.Fatalf("ListAudit(%+v) ids %v, want %v", tc.f, gotIDs, tc.want)
			}
		})
	}
}

func testAuditDefaultLimit(t *testing.T, s store.Store) {
	ctx := t.Context()
	update(t, s, func(tx store.Tx) error {
		for i := range 105 {
			if err := tx.AppendAudit(ctx, auditEvent(i, "910000002", "a", "t")); err != nil {
				return err
			}
		}
		return nil
	})
	got, err := s.ListAudit(ctx, store.AuditFilter{})
	noErr(t, err, "ListAudit")
	if len(got) != 100 {
		t.Fatalf("ListAudit without limit: %d events, want the default 100", len(got))
	}
	got, err = s.ListAudit(ctx, store.AuditFilter{Limit: 200})
	noErr(t, err, "ListAudit")
	if len(got) != 105 {
		t.Fatalf("ListAudit limit 200: %d events, want 105", len(got))
	}
}

func testIssuedInsert(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := tokenRec("c1", "j1", t0)
	a.SupplierOrgno = "910000005"
	a.Audience = []string{"https://api.example.no/a", "https://api.example.no/b"}
	b := tokenRec("c1", "j2", t0.Add(time.Second))
	noErr(t, s.InsertIssuedToken(ctx, a), "InsertIssuedToken")
	noErr(t, s.InsertIssuedToken(ctx, b), "InsertIssuedToken")
	got, err := s.ListIssuedTokens(ctx, store.IssuedTokenFilter{})
	noErr(t, err, "ListIssuedTokens")
	equal(t, got, []store.IssuedToken{b, a}, "ListIssuedTokens newest first")
}

func testIssuedReplay(t *testing.T, s store.Store) {
	ctx := t.Context()
	g0 := generation(t, s)
	a := tokenRec("c1", "j1", t0)
	noErr(t, s.InsertIssuedToken(ctx, a), "InsertIssuedToken")
	replay := a
	replay.TokenJTI = "another"
	wantErr(t, s.InsertIssuedToken(ctx, replay), store.ErrConflict, "InsertIssuedToken replay")
	noErr(t, s.InsertIssuedToken(ctx, tokenRec("c2", "j1", t0)), "same jti, another client")
	got, err := s.ListIssuedTokens(ctx, store.IssuedTokenFilter{ClientID: "c1"})
	noErr(t, err, "ListIssuedTokens")
	equal(t, got, []store.IssuedToken{a}, "the first insert is kept")
	if g := generation(t, s); g != g0 {
		t.Fatalf("InsertIssuedToken moved the generation from %d to %d", g0, g)
	}
}

func testIssuedConcurrentReplay(t *testing.T, s store.Store) {
	ctx := t.Context()
	oneWins(t, "InsertIssuedToken", func(i int) error {
		tok := tokenRec("c1", "same", t0)
		tok.TokenJTI = fmt.Sprintf("tok-%d", i)
		return s.InsertIssuedToken(ctx, tok)
	})
}

// oneWins runs insert from 20 goroutines at once and wants exactly one to
// succeed and every other to fail with ErrConflict: a replay check that
// holds under concurrency, also across connections.
func oneWins(t *testing.T, what string, insert func(i int) error) {
	t.Helper()
	const n = 20
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = insert(i)
		})
	}
	close(start)
	wg.Wait()
	ok, conflict := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, store.ErrConflict):
			conflict++
		default:
			t.Errorf("concurrent %s: unexpected error %v", what, err)
		}
	}
	if ok != 1 || conflict != n-1 {
		t.Fatalf("concurrent replay: %d succeeded and %d conflicted, want 1 and %d", ok, conflict, n-1)
	}
}

func testIssuedConcurrentDistinct(t *testing.T, s store.Store) {
	ctx := t.Context()
	const goroutines, each = 20, 10
	errs := make(chan error, goroutines*each)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				errs <- s.InsertIssuedToken(ctx, tokenRec(fmt.Sprintf("c%d", g), fmt.Sprintf("j%d", i), t0))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		noErr(t, err, "concurrent InsertIssuedToken of distinct keys")
	}
	got, err := s.ListIssuedTokens(ctx, store.IssuedTokenFilter{Limit: 1000})
	noErr(t, err, "ListIssuedTokens")
	if len(got) != goroutines*each {
		t.Fatalf("ListIssuedTokens: %d rows, want %d", len(got), goroutines*each)
	}
}

// A request whose caller has given up is not written: it does not use up
// the assertion either.
func testIssuedCancelled(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	wantErr(t, s.InsertIssuedToken(ctx, tokenRec("c1", "j1", t0)), context.Canceled, "InsertIssuedToken with a cancelled context")
	got, err := s.ListIssuedTokens(t.Context(), store.IssuedTokenFilter{})
	noErr(t, err, "ListIssuedTokens")
	if len(got) != 0 {
		t.Fatalf("ListIssuedTokens: %d rows after a cancelled insert, want none", len(got))
	}
	noErr(t, s.InsertIssuedToken(t.Context(), tokenRec("c1", "j1", t0)), "InsertIssuedToken after the cancelled one")
}

// StartInsertIssuedToken, as the exchange uses it: many rows handed over
// before any answer is awaited (one goroutine), then the answers. Each key
// is written once: the same key handed over twice, and a key already in
// the table, are replays.
func testIssuedStartThenWait(t *testing.T, s store.Store) {
	ctx := t.Context()
	noErr(t, s.InsertIssuedToken(ctx, tokenRec("c0", "old", t0)), "InsertIssuedToken")
	const n = 30
	var waits []func() error
	for i := range n {
		waits = append(waits, s.StartInsertIssuedToken(ctx, tokenRec("c1", fmt.Sprintf("j%d", i), t0)))
	}
	twice := tokenRec("c2", "twice", t0)
	first := s.StartInsertIssuedToken(ctx, twice)
	twice.TokenJTI = "second"
	second := s.StartInsertIssuedToken(ctx, twice)
	old := s.StartInsertIssuedToken(ctx, tokenRec("c0", "old", t0))
	for i, wait := range waits {
		noErr(t, wait(), fmt.Sprintf("StartInsertIssuedToken %d", i))
	}
	noErr(t, first(), "the first of one key")
	wantErr(t, second(), store.ErrConflict, "the second of one key")
	wantErr(t, old(), store.ErrConflict, "a key already in the table")
	got, err := s.ListIssuedTokens(ctx, store.IssuedTokenFilter{Limit: 1000})
	noErr(t, err, "ListIssuedTokens")
	if len(got) != n+2 {
		t.Fatalf("ListIssuedTokens: %d rows, want %d", len(got), n+2)
	}
	for _, tok := range got {
		if tok.ClientID == "c2" && tok.TokenJTI != tokenRec("c2", "twice", t0).TokenJTI {
			t.Fatalf("key handed over twice: row of token %q, want the first one's", tok.TokenJTI)
		}
	}
	ctx2, cancel := context.WithCancel(ctx)
	wait := s.StartInsertIssuedToken(ctx2, tokenRec("c3", "gone", t0))
	cancel()
	if err := wait(); err != nil {
		wantErr(t, err, context.Canceled, "StartInsertIssuedToken cancelled before its wait")
		noErr(t, s.InsertIssuedToken(ctx, tokenRec("c3", "gone", t0)), "the cancelled key is free")
	}
}

func testIssuedFilter(t *testing.T, s store.Store) {
	ctx := t.Context()
	mk := func(i int, client, consumer, supplier string) store.IssuedToken {
		tok := tokenRec(client, fmt.Sprintf("j%d", i), t0.Add(time.Duration(i)*time.Second))
		tok.TokenJTI = fmt.Sprintf("t%02d", i)
		tok.ConsumerOrgno, tok.SupplierOrgno = consumer, supplier
		return tok
	}
	toks := []store.IssuedToken{
		mk(0, "c1", "910000002", ""),
		mk(1, "c2", "910000003", "910000002"),
		mk(2, "c1", "910000002", ""),
		mk(3, "c3", "910000004", ""),
		mk(4, "c2", "910000003", "910000002"),
	}
	for _, tok := range toks {
		noErr(t, s.InsertIssuedToken(ctx, tok), "InsertIssuedToken")
	}
	// c3 is a client a vendor manages for 910000004.
	managed := clientRec("c3")
	managed.ClientOrgno, managed.ManagedBy = "910000004", "910000007"
	update(t, s, func(tx store.Tx) error {
		if err := tx.CreateClient(ctx, managed); err != nil {
			return err
		}
		return tx.CreateClient(ctx, clientRec("c2"))
	})
	// Same IssuedAt: TokenJTI breaks the tie, newest (largest) first.
	tie := mk(5, "c4", "910000009", "")
	tie.IssuedAt, tie.TokenJTI = toks[4].IssuedAt, "t99"
	noErr(t, s.InsertIssuedToken(ctx, tie), "InsertIssuedToken")
	cases := []struct {
		name string
		f    store.IssuedTokenFilter
		want []store.IssuedToken
	}{
		{"ok/all", store.IssuedTokenFilter{}, []store.IssuedToken{tie, toks[4], toks[3], toks[2], toks[1], toks[0]}},
		{"ok/org-consumer-or-supplier", store.IssuedTokenFilter{Org: "910000002"}, []store.IssuedToken{toks[4], toks[2], toks[1], toks[0]}},
		{"ok/org-consumer", store.IssuedTokenFilter{Org: "910000003"}, []store.IssuedToken{toks[4], toks[1]}},
		{"ok/client", store.IssuedTokenFilter{ClientID: "c1"}, []store.IssuedToken{toks[2], toks[0]}},
		{"ok/from-inclusive-to-exclusive", store.IssuedTokenFilter{From: toks[1].IssuedAt, To: toks[3].IssuedAt}, []store.IssuedToken{toks[2], toks[1]}},
		{"ok/limit", store.IssuedTokenFilter{Limit: 2}, []store.IssuedToken{tie, toks[4]}},
		{"ok/org+client", store.IssuedTokenFilter{Org: "910000002", ClientID: "c2", Limit: 1}, []store.IssuedToken{toks[4]}},
		{"ok/managed-by", store.IssuedTokenFilter{ManagedBy: "910000007"}, []store.IssuedToken{toks[3]}},
		{"ok/org-or-managed-by", store.IssuedTokenFilter{Org: "910000003", ManagedBy: "910000007"}, []store.IssuedToken{toks[4], toks[3], toks[1]}},
		{"ok/managed-by-nobody-else", store.IssuedTokenFilter{ManagedBy: "910000004"}, []store.IssuedToken{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ListIssuedTokens(ctx, tc.f)
			noErr(t, err, "ListIssuedTokens")
			equal(t, got, tc.want, fmt.Sprintf("ListIssuedTokens(%+v)", tc.f))
		})
	}
}

func testIssuedScopeFilter(t *testing.T, s store.Store) {
	ctx := t.Context()
	mk := func(i int, consumer, supplier string, scopes ...string) store.IssuedToken {
		tok := tokenRec("c1", fmt.Sprintf("j%d", i), t0.Add(time.Duration(i)*time.Second))
		tok.TokenJTI = fmt.Sprintf("t%02d", i)
		tok.ConsumerOrgno, tok.SupplierOrgno, tok.Scopes = consumer, supplier, scopes
		return tok
	}
	toks := []store.IssuedToken{
		mk(0, "910000002", "", "acme:a"),
		mk(1, "910000003", "910000002", "acme:b", "beta:x"),
		mk(2, "910000004", "", "acmex:a"), // a prefix that starts like another
		mk(3, "910000004", "", "beta:a_b"),
		mk(4, "910000005", "", "beta:axb"), // "_" must not be a wildcard
		mk(5, "910000005", "", "beta:a%b", "gamma:50!"),
		mk(6, "910000006", "", "beta:a"), // "beta:a" must not find "beta:a_b"
	}
	for _, tok := range toks {
		noErr(t, s.InsertIssuedToken(ctx, tok), "InsertIssuedToken")
	}
	cases := []struct {
		name string
		f    store.IssuedTokenFilter
		want []store.IssuedToken
	}{
		{"ok/scope-exact", store.IssuedTokenFilter{Scope: "acme:a"}, []store.IssuedToken{toks[0]}},
		{"ok/scope-one-of-several", store.IssuedTokenFilter{Scope: "beta:x"}, []store.IssuedToken{toks[1]}},
		{"ok/scope-underscore-literal", store.IssuedTokenFilter{Scope: "beta:a_b"}, []store.IssuedToken{toks[3]}},
		{"ok/scope-percent-literal", store.IssuedTokenFilter{Scope: "beta:a%b"}, []store.IssuedToken{toks[5]}},
		{"ok/scope-escape-char-literal", store.IssuedTokenFilter{Scope: "gamma:50!"}, []store.IssuedToken{toks[5]}},
		{"ok/scope-not-a-prefix-match", store.IssuedTokenFilter{Scope: "beta:a"}, []store.IssuedToken{toks[6]}},
		{"ok/scope-none", store.IssuedTokenFilter{Scope: "acme"}, []store.IssuedToken{}},
		{"ok/prefix", store.IssuedTokenFilter{ScopePrefixes: []string{"acme"}}, []store.IssuedToken{toks[1], toks[0]}},
		{"ok/prefixes", store.IssuedTokenFilter{ScopePrefixes: []string{"acmex", "gamma"}}, []store.IssuedToken{toks[5], toks[2]}},
		{"ok/prefix-wildcard-literal", store.IssuedTokenFilter{ScopePrefixes: []string{"ac%"}}, []store.IssuedToken{}},
		{"ok/org-or-prefix", store.IssuedTokenFilter{Org: "910000006", ScopePrefixes: []string{"acmex"}}, []store.IssuedToken{toks[6], toks[2]}},
		{"ok/org-supplier-or-prefix", store.IssuedTokenFilter{Org: "910000002", ScopePrefixes: []string{"gamma"}}, []store.IssuedToken{toks[5], toks[1], toks[0]}},
		{"ok/org-or-prefix+scope", store.IssuedTokenFilter{Org: "910000002", ScopePrefixes: []string{"beta"}, Scope: "beta:x"}, []store.IssuedToken{toks[1]}},
		{"ok/prefix+client", store.IssuedTokenFilter{ScopePrefixes: []string{"beta"}, ClientID: "c2"}, []store.IssuedToken{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ListIssuedTokens(ctx, tc.f)
			noErr(t, err, "ListIssuedTokens")
			if got == nil {
				got = []store.IssuedToken{}
			}
			equal(t, got, tc.want, fmt.Sprintf("ListIssuedTokens(%+v)", tc.f))
		})
	}
}

// testIssuedKeyset walks all rows two at a time by the (IssuedAt, TokenJTI)
// keyset, with ties on IssuedAt straddling page ends.
func testIssuedKeyset(t *testing.T, s store.Store) {
	ctx := t.Context()
	var want []store.IssuedToken
	for i := range 7 {
		tok := tokenRec("c1", fmt.Sprintf("j%d", i), t0.Add(time.Duration(i/3)*time.Second)) // three per second
		tok.TokenJTI = fmt.Sprintf("t%02d", i)
		noErr(t, s.InsertIssuedToken(ctx, tok), "InsertIssuedToken")
		want = append([]store.IssuedToken{tok}, want...)
	}
	var got []store.IssuedToken
	f := store.IssuedTokenFilter{Limit: 2}
	for range 10 {
		page, err := s.ListIssuedTokens(ctx, f)
		noErr(t, err, "ListIssuedTokens")
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		last := page[len(page)-1]
		f.BeforeIssuedAt, f.BeforeTokenJTI = last.IssuedAt, last.TokenJTI
	}
	equal(t, got, want, "keyset pages, concatenated")
	f = store.IssuedTokenFilter{BeforeIssuedAt: want[2].IssuedAt, BeforeTokenJTI: want[2].TokenJTI, From: want[3].IssuedAt}
	got, err := s.ListIssuedTokens(ctx, f)
	noErr(t, err, "ListIssuedTokens")
	equal(t, got, want[3:4], "keyset and From together")
}

func testIssuedPurge(t *testing.T, s store.Store) {
	ctx := t.Context()
	cutoff := t0.Add(time.Hour)
	for i := range 10 {
		tok := tokenRec("c1", fmt.Sprintf("old%d", i), t0.Add(time.Duration(i)*time.Minute)) // expires before cutoff
		noErr(t, s.InsertIssuedToken(ctx, tok), "InsertIssuedToken")
	}
	live := []store.IssuedToken{
		tokenRec("c1", "live0", cutoff.Add(-2*time.Minute)), // expires exactly at cutoff: kept
		tokenRec("c1", "live1", cutoff),
		tokenRec("c2", "live2", cutoff.Add(time.Hour)),
	}
	for _, tok := range live {
		noErr(t, s.InsertIssuedToken(ctx, tok), "InsertIssuedToken")
	}
	for i, want := range []int{4, 4, 2, 0} {
		n, err := s.PurgeIssuedTokens(ctx, cutoff, 4)
		noErr(t, err, "PurgeIssuedTokens")
		if n != want {
			t.Fatalf("PurgeIssuedTokens batch %d deleted %d rows, want %d", i, n, want)
		}
	}
	got, err := s.ListIssuedTokens(ctx, store.IssuedTokenFilter{})
	noErr(t, err, "ListIssuedTokens")
	equal(t, got, []store.IssuedToken{live[2], live[1], live[0]}, "rows left after purging")
	// A purged key is free again (its assertion has long expired).
	noErr(t, s.InsertIssuedToken(ctx, tokenRec("c1", "old0", t0)), "InsertIssuedToken after purge")
}
