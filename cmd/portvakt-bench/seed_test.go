package main

import (
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/norid"
	"github.com/portvakt/portvakt/internal/store"
	"github.com/portvakt/portvakt/internal/store/sqlstore"
)

// The seeded platform has the sizes asked for, through the store's own reads.
func TestSeedFillsTheStore(t *testing.T) {
	ctx := t.Context()
	dsn := filepath.Join(t.TempDir(), "seed.db")
	d := datasets["S"]
	d.Tokens, d.Expired = 500, 40
	if err := seed(ctx, sqlstore.Config{Driver: "sqlite", DSN: dsn}, d, time.Now().UTC(), t.TempDir(), io.Discard); err != nil {
		t.Fatal(err)
	}
	st, err := sqlstore.Open(ctx, sqlstore.Config{Driver: "sqlite", DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	count := func(what string, n, want int, err error) {
		t.Helper()
		if err != nil || n != want {
			t.Errorf("%s: %d (%v), want %d", what, n, err, want)
		}
	}
	scopes, err := st.ListScopes(ctx)
	count("scopes", len(scopes), d.Scopes, err)
	access, err := st.ListAccess(ctx, store.AccessFilter{})
	count("access rows", len(access), d.Access, err)
	dels, err := st.ListDelegations(ctx, store.DelegationFilter{})
	count("delegations", len(dels), d.Delegations, err)
	clients, err := st.ListClients(ctx)
	count("clients", len(clients), d.Clients+2, err) // and the two admin clients
	orgs := seedOrgs(d.Orgs)
	big := 0
	for _, c := range clients {
		if c.ClientOrgno == orgs[0] {
			big++
		}
	}
	count("clients of the big org", big, d.BigOrgClients+1, nil)
	few, err := st.ListIssuedTokens(ctx, store.IssuedTokenFilter{Org: orgs[1], Limit: 1000})
	count("tokens of the few-tokens org", len(few), d.FewTokens, err)
	all, err := st.ListIssuedTokens(ctx, store.IssuedTokenFilter{Limit: 1000})
	count("issued tokens", len(all), d.Tokens+d.Expired, err)
	seen := map[string]bool{}
	for _, o := range orgs {
		if !norid.ValidOrg(o) || seen[o] {
			t.Fatalf("seeded org %s is invalid or repeated", o)
		}
		seen[o] = true
	}
}
