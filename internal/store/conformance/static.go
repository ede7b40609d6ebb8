package conformance

import (
	"errors"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/store"
)

func runStatic(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	cases := []testCase{
		{"ok/overlay/declared-wins-and-lists-merge", testStaticReads},
		{"ok/overlay/tx-reads-overlay", testStaticTxReads},
		{"ok/overlay/undeclared-writes-pass", testStaticWritesPass},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, open(t))
		})
	}
	t.Run("fail/overlay/writes-to-declared", func(t *testing.T) {
		t.Parallel()
		testStaticWritesRefused(t, open(t))
	})
}

// declared are the overlay records; their database twins (same keys,
// other values) are written before wrapping.
func declared() store.StaticRecords {
	sc := scopeRec("d")
	sc.Description = "declared"
	cl := clientRec("c-d")
	cl.ClientName = "declared"
	return store.StaticRecords{
		Prefixes:    []store.Prefix{{Prefix: "acme", OwnerOrg: "910000001"}},
		Scopes:      []store.Scope{sc},
		Access:      []store.Access{{Scope: "acme:d", ConsumerOrgno: "910000002", OwnerOrgno: "910000001", State: store.AccessApproved}},
		Delegations: []store.Delegation{{Scope: "acme:d", ConsumerOrgno: "910000002", SupplierOrgno: "910000005", State: store.DelegationActive}},
		Clients:     []store.Client{cl},
	}
}

// seedTwins writes, in the bare store, database rows with the declared keys
// (other values) and one undeclared row of each kind.
func seedTwins(t *testing.T, s store.Store) {
	t.Helper()
	ctx := t.Context()
	update(t, s, func(tx store.Tx) error {
		for _, p := range []store.Prefix{{Prefix: "acme", OwnerOrg: "910000099"}, {Prefix: "beta", OwnerOrg: "910000003"}} {
			if err := tx.PutPrefix(ctx, p); err != nil {
				return err
			}
		}
		for _, sc := range []store.Scope{scopeRec("d"), scopeRec("a"), scopeRec("z")} {
			sc.Description = "database"
			if err := tx.CreateScope(ctx, sc); err != nil {
				return err
			}
		}
		for _, a := range []store.Access{
			{Scope: "acme:d", ConsumerOrgno: "910000002", OwnerOrgno: "910000001", State: store.AccessDenied},
			{Scope: "acme:d", ConsumerOrgno: "910000003", OwnerOrgno: "910000001", State: store.AccessApproved},
		} {
			if err := tx.PutAccess(ctx, a); err != nil {
				return err
			}
		}
		for _, d := range []store.Delegation{
			{Scope: "acme:d", ConsumerOrgno: "910000002", SupplierOrgno: "910000005", State: store.DelegationRevoked},
			{Scope: "acme:d", ConsumerOrgno: "910000002", SupplierOrgno: "910000006", State: store.DelegationActive},
		} {
			if err := tx.PutDelegation(ctx, d); err != nil {
				return err
			}
		}
		// The twin of the declared client is vendor-managed with a vendor's
		// key: the declared one (neither) must win whole.
		twin := clientRec("c-d")
		twin.ManagedBy, twin.Keys[0].UploadedBy = "910000003", "910000003"
		for _, c := range []store.Client{twin, clientRec("c-e")} {
			if err := tx.CreateClient(ctx, c); err != nil {
				return err
			}
		}
		return nil
	})
}

func testStaticReads(t *testing.T, bare store.Store) {
	ctx := t.Context()
	seedTwins(t, bare)
	d := declared()
	s := store.WithStatic(bare, d)

	p, err := s.GetPrefix(ctx, "acme")
	noErr(t, err, "GetPrefix")
	equal(t, p, d.Prefixes[0], "declared prefix wins")
	prefixes, err := s.ListPrefixes(ctx)
	noErr(t, err, "ListPrefixes")
	equal(t, prefixes, []store.Prefix{d.Prefixes[0], {Prefix: "beta", OwnerOrg: "910000003"}}, "ListPrefixes")

	sc, err := s.GetScope(ctx, "acme:d")
	noErr(t, err, "GetScope")
	equal(t, sc, d.Scopes[0], "declared scope wins")
	scopes, err := s.ListScopes(ctx)
	noErr(t, err, "ListScopes")
	if len(scopes) != 3 || scopes[0].Name != "acme:a" || scopes[1].Description != "declared" || scopes[2].Name != "acme:z" {
		t.Fatalf("ListScopes through the overlay: %+v, want acme:a, the declared acme:d, acme:z", scopes)
	}

	a, err := s.GetAccess(ctx, "acme:d", "910000002")
	noErr(t, err, "GetAccess")
	equal(t, a, d.Access[0], "declared access wins")
	for _, tc := range []struct {
		name   string
		f      store.AccessFilter
		states []string
	}{
		{"all", store.AccessFilter{}, []string{store.AccessApproved, store.AccessApproved}},
		{"declared-consumer", store.AccessFilter{ConsumerOrgno: "910000002"}, []string{store.AccessApproved}},
		{"other-consumer", store.AccessFilter{ConsumerOrgno: "910000003"}, []string{store.AccessApproved}},
		{"other-owner", store.AccessFilter{OwnerOrgno: "910000099"}, nil},
	} {
		list, err := s.ListAccess(ctx, tc.f)
		noErr(t, err, "ListAccess "+tc.name)
		if len(list) != len(tc.states) {
			t.Fatalf("ListAccess %s: %+v, want %d rows", tc.name, list, len(tc.states))
		}
		for i, st := range tc.states {
			if list[i].State != st {
				t.Fatalf("ListAccess %s: row %d state %s, want %s (the declared row hides its twin)", tc.name, i, list[i].State, st)
			}
		}
	}

	dl, err := s.GetDelegation(ctx, "acme:d", "910000002", "910000005")
	noErr(t, err, "GetDelegation")
	equal(t, dl, d.Delegations[0], "declared delegation wins")
	dls, err := s.ListDelegations(ctx, store.DelegationFilter{ConsumerOrgno: "910000002"})
	noErr(t, err, "ListDelegations")
	if len(dls) != 2 || dls[0].State != store.DelegationActive || dls[0].SupplierOrgno != "910000005" || dls[1].SupplierOrgno != "910000006" {
		t.Fatalf("ListDelegations through the overlay: %+v", dls)
	}

	c, err := s.GetClient(ctx, "c-d")
	noErr(t, err, "GetClient")
	equal(t, c, d.Clients[0], "declared client wins")
	if c.ManagedBy != "" || c.Keys[0].UploadedBy != "" {
		t.Fatalf("declared client: managed_by %q, uploaded_by %q; want the zero values", c.ManagedBy, c.Keys[0].UploadedBy)
	}
	clients, err := s.ListClients(ctx)
	noErr(t, err, "ListClients")
	if len(clients) != 2 || clients[0].ClientName != "declared" || clients[1].ClientID != "c-e" {
		t.Fatalf("ListClients through the overlay: %+v", clients)
	}

	_, err = s.GetScope(ctx, "acme:missing")
	wantErr(t, err, store.ErrNotFound, "GetScope of a key neither declared nor stored")
}

func testStaticTxReads(t *testing.T, bare store.Store) {
	ctx := t.Context()
	seedTwins(t, bare)
	s := store.WithStatic(bare, declared())
	update(t, s, func(tx store.Tx) error {
		sc, err := tx.GetScope(ctx, "acme:d")
		noErr(t, err, "Tx.GetScope")
		if sc.Description != "declared" {
			t.Fatalf("Tx.GetScope: %+v, want the declared scope", sc)
		}
		list, err := tx.ListClients(ctx)
		noErr(t, err, "Tx.ListClients")
		if len(list) != 2 || list[0].ClientName != "declared" {
			t.Fatalf("Tx.ListClients: %+v", list)
		}
		return nil
	})
}

func testStaticWritesPass(t *testing.T, bare store.Store) {
	ctx := t.Context()
	s := store.WithStatic(bare, declared())
	g0 := generation(t, s)
	update(t, s, func(tx store.Tx) error {
		noErr(t, tx.PutPrefix(ctx, store.Prefix{Prefix: "other", OwnerOrg: "910000003"}), "PutPrefix")
		noErr(t, tx.CreateScope(ctx, scopeRec("new")), "CreateScope")
		noErr(t, tx.PutAccess(ctx, store.Access{Scope: "acme:d", ConsumerOrgno: "910000004", State: store.AccessApproved}), "PutAccess")
		noErr(t, tx.PutDelegation(ctx, store.Delegation{Scope: "acme:d", ConsumerOrgno: "910000002", SupplierOrgno: "910000007", State: store.DelegationActive}), "PutDelegation")
		noErr(t, tx.CreateClient(ctx, clientRec("c-new")), "CreateClient")
		return tx.AppendAudit(ctx, store.AuditEvent{Action: "x", Orgs: []string{"910000003"}})
	})
	if g := generation(t, s); g <= g0 {
		t.Fatalf("generation %d after a committed Update through the overlay, was %d", g, g0)
	}
	_, err := bare.GetScope(ctx, "acme:new")
	noErr(t, err, "the write reached the database")
	ev, err := s.ListAudit(ctx, store.AuditFilter{Org: "910000003"})
	noErr(t, err, "ListAudit")
	if len(ev) != 1 {
		t.Fatalf("ListAudit through the overlay: %d events, want 1", len(ev))
	}
	noErr(t, s.InsertIssuedToken(ctx, tokenRec("c-d", "j", time.Now())), "InsertIssuedToken passes through")
	noErr(t, s.StartInsertIssuedToken(ctx, tokenRec("c-d", "k", time.Now()))(), "StartInsertIssuedToken passes through")
	wantErr(t, s.StartInsertIssuedToken(ctx, tokenRec("c-d", "j", time.Now()))(), store.ErrConflict, "StartInsertIssuedToken replay through the overlay")
}

func testStaticWritesRefused(t *testing.T, bare store.Store) {
	ctx := t.Context()
	d := declared()
	s := store.WithStatic(bare, d)
	sc, cl := d.Scopes[0], d.Clients[0]
	cases := []struct {
		name string
		fn   func(tx store.Tx) error
		want []error
	}{
		{"fail/put-prefix", func(tx store.Tx) error { return tx.PutPrefix(ctx, d.Prefixes[0]) }, []error{store.ErrReadOnly}},
		{"fail/create-scope", func(tx store.Tx) error { return tx.CreateScope(ctx, sc) }, []error{store.ErrConflict, store.ErrReadOnly}},
		{"fail/update-scope", func(tx store.Tx) error { return tx.UpdateScope(ctx, sc) }, []error{store.ErrReadOnly}},
		{"fail/put-access", func(tx store.Tx) error { return tx.PutAccess(ctx, d.Access[0]) }, []error{store.ErrReadOnly}},
		{"fail/put-delegation", func(tx store.Tx) error { return tx.PutDelegation(ctx, d.Delegations[0]) }, []error{store.ErrReadOnly}},
		{"fail/create-client", func(tx store.Tx) error { return tx.CreateClient(ctx, cl) }, []error{store.ErrConflict, store.ErrReadOnly}},
		{"fail/update-client", func(tx store.Tx) error { return tx.UpdateClient(ctx, cl) }, []error{store.ErrReadOnly}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g0 := generation(t, s)
			err := s.Update(ctx, tc.fn)
			for _, want := range tc.want {
				wantErr(t, err, want, tc.name)
			}
			if errors.Is(err, store.ErrNotFound) {
				t.Fatalf("%s: %v also matches ErrNotFound", tc.name, err)
			}
			if g := generation(t, s); g != g0 {
				t.Fatalf("%s: generation moved from %d to %d", tc.name, g0, g)
			}
		})
	}
	// Nothing reached the database.
	_, err := bare.GetScope(ctx, sc.Name)
	wantErr(t, err, store.ErrNotFound, "declared scope in the database")
	_, err = bare.GetClient(ctx, cl.ClientID)
	wantErr(t, err, store.ErrNotFound, "declared client in the database")
}
