package manage_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/manage"
	"github.com/portvakt/portvakt/internal/pgtest"
	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/rules"
	"github.com/portvakt/portvakt/internal/store"
	"github.com/portvakt/portvakt/internal/store/sqlstore"
)

// The core is tested here without HTTP, over real stores: the rules the API
// and the console share. The JSON API's own tests (internal/selfservice)
// cover the same rules through real HTTP.

const (
	issuer   = "https://auth.example/"
	platform = "310000019"
	provider = "310000027"
	consumer = "310000035"
	vendor   = "310000043"
)

var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// eachCore runs fn over a core on a fresh store of each kind (SQLite, and
// PostgreSQL in a fresh schema), with the built-in records.
func eachCore(t *testing.T, fn func(t *testing.T, core *manage.Service)) {
	eachCoreWith(t, manage.Config{}, fn)
}

// eachCoreWith is eachCore with cfg's other fields (Issuer, PlatformOrg
// and Now are the tests').
func eachCoreWith(t *testing.T, cfg manage.Config, fn func(t *testing.T, core *manage.Service)) {
	engines := []struct {
		name string
		cfg  func(t *testing.T) sqlstore.Config
	}{
		{"sqlite", func(t *testing.T) sqlstore.Config {
			return sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: filepath.Join(t.TempDir(), "m.db")}
		}},
		{"postgres", func(t *testing.T) sqlstore.Config {
			return sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: pgtest.FreshSchema(t, pgtest.DSN(t))}
		}},
	}
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			db, err := sqlstore.Open(t.Context(), e.cfg(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			if err := db.Migrate(t.Context()); err != nil {
				t.Fatal(err)
			}
			st := store.WithStatic(db, records.Builtin(issuer, platform, now))
			cfg.Issuer, cfg.PlatformOrg, cfg.Now = issuer, platform, func() time.Time { return now }
			core, err := manage.New(cfg, st, rules.NewCache(st, rules.CacheConfig{}))
			if err != nil {
				t.Fatal(err)
			}
			fn(t, core)
		})
	}
}

func actor(org string, scopes ...string) *manage.Actor {
	return &manage.Actor{Org: org, ClientID: "c-" + org, Scopes: scopes}
}

func kind(err error) manage.Kind {
	var e *manage.Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

// must returns a call's value, failing the test on its error:
// must[store.Client](t)(core.GetClient(...)).
func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// story sets up a provider with a scope, a consumer with access, and
// returns the actors.
func story(t *testing.T, core *manage.Service) (admin, prov, cons *manage.Actor) {
	ctx := t.Context()
	admin = actor(platform, records.AdminScope)
	prov = actor(provider, records.ScopesWrite)
	cons = actor(consumer, records.AdminScopes...)
	must[store.Prefix](t)(core.AssignPrefix(ctx, admin, "acme", manage.PrefixInput{OwnerOrg: provider}))
	must[store.Scope](t)(core.CreateScope(ctx, prov, manage.ScopeInput{Prefix: "acme", Subscope: "api", Description: "the API", DelegationSource: issuer}))
	must[store.Access](t)(core.GrantAccess(ctx, prov, "acme:api", consumer, manage.AccessInput{}))
	return admin, prov, cons
}

func TestCoreRules(t *testing.T) {
	eachCore(t, func(t *testing.T, core *manage.Service) {
		ctx := t.Context()
		admin, prov, cons := story(t, core)
		cases := []struct {
			name string
			do   func() error
			want manage.Kind
		}{
			{"fail/no-actor", func() error { _, err := core.ListScopes(ctx, nil, false, store.Page{}); return err }, manage.InsufficientScope},
			{"fail/read-scope-does-not-write", func() error {
				_, err := core.CreateScope(ctx, actor(provider, records.ScopesRead), manage.ScopeInput{Prefix: "acme", Subscope: "x", Description: "d"})
				return err
			}, manage.InsufficientScope},
			{"fail/scope-under-another-orgs-prefix", func() error {
				_, err := core.CreateScope(ctx, actor(consumer, records.ScopesWrite), manage.ScopeInput{Prefix: "acme", Subscope: "x", Description: "d"})
				return err
			}, manage.Forbidden},
			{"fail/scope-exists", func() error {
				_, err := core.CreateScope(ctx, prov, manage.ScopeInput{Prefix: "acme", Subscope: "api", Description: "d"})
				return err
			}, manage.Conflict},
			{"fail/scope-input-invalid", func() error {
				_, err := core.CreateScope(ctx, prov, manage.ScopeInput{Prefix: "acme", Subscope: "bad name", Description: ""})
				return err
			}, manage.Invalid},
			{"fail/another-orgs-scope-is-not-found", func() error {
				_, err := core.GetScope(ctx, actor(consumer, records.ScopesRead), "acme:api")
				return err
			}, manage.NotFound},
			{"fail/prefix-with-scopes-stays", func() error {
				_, err := core.AssignPrefix(ctx, admin, "acme", manage.PrefixInput{OwnerOrg: consumer})
				return err
			}, manage.Conflict},
			{"fail/client-lists-a-scope-its-org-cannot-get", func() error {
				_, err := core.CreateClient(ctx, actor(vendor, records.ClientsWrite), manage.ClientInput{Description: "d", Scopes: []string{"acme:api"}})
				return err
			}, manage.Invalid},
			{"fail/owner-asks-for-its-own-scope", func() error {
				_, err := core.RequestAccess(ctx, actor(provider, records.AccessRequest), "acme:api", manage.AccessInput{})
				return err
			}, manage.Conflict},
			{"ok/asks-again-after-a-denial", func() error {
				must[store.Access](t)(core.RequestAccess(ctx, actor(vendor, records.AccessRequest), "acme:api", manage.AccessInput{Reason: "first"}))
				must[store.Access](t)(core.RevokeAccess(ctx, prov, "acme:api", vendor, manage.AccessInput{Reason: "no"}))
				_, err := core.RequestAccess(ctx, actor(vendor, records.AccessRequest), "acme:api", manage.AccessInput{Reason: "again"})
				return err
			}, 0},
			{"fail/delegation-to-itself", func() error { _, err := core.GiveDelegation(ctx, cons, "acme:api", consumer); return err }, manage.Invalid},
			{"ok/client-lists-a-scope-with-access", func() error {
				_, err := core.CreateClient(ctx, cons, manage.ClientInput{Description: "d", Scopes: []string{"acme:api"}})
				return err
			}, 0},
			{"ok/prefix-without-scopes-moves", func() error {
				must[store.Prefix](t)(core.AssignPrefix(ctx, admin, "empty", manage.PrefixInput{OwnerOrg: provider}))
				_, err := core.AssignPrefix(ctx, admin, "empty", manage.PrefixInput{OwnerOrg: consumer})
				return err
			}, 0},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				if got := kind(c.do()); got != c.want {
					t.Fatalf("kind %d, want %d", got, c.want)
				}
			})
		}
	})
}

// A vendor acts for a consumer only while the delegation it acts through is
// ACTIVE, and revoking portvakt:clients.write deactivates what it manages.
func TestCoreVendorBounds(t *testing.T) {
	eachCore(t, func(t *testing.T, core *manage.Service) {
		ctx := t.Context()
		_, _, cons := story(t, core)
		must[store.Delegation](t)(core.GiveDelegation(ctx, cons, "acme:api", vendor))
		must[store.Delegation](t)(core.GiveDelegation(ctx, cons, records.ClientsWrite, vendor))
		v := &manage.Actor{Org: consumer, Supplier: vendor, ClientID: "v", Scopes: []string{records.ClientsWrite}}
		cl := must[store.Client](t)(core.CreateClient(ctx, v, manage.ClientInput{Description: "made by the vendor", Scopes: []string{"acme:api"}}))
		if cl.ManagedBy != vendor || cl.ClientOrgno != consumer {
			t.Fatalf("client %+v: want managed_by %s for %s", cl, vendor, consumer)
		}
		_, err := core.CreateClient(ctx, v, manage.ClientInput{Description: "d", Scopes: []string{records.AuditRead}})
		if kind(err) != manage.Invalid {
			t.Fatalf("a vendor put an admin scope on the consumer's client: %v", err)
		}
		if err := core.RevokeDelegation(ctx, cons, records.ClientsWrite, vendor); err != nil {
			t.Fatal(err)
		}
		if _, err := core.ListClients(ctx, v, false, store.Page{}); kind(err) != manage.Forbidden {
			t.Fatalf("a vendor whose delegation was revoked still lists clients: %v", err)
		}
		got := must[store.Client](t)(core.GetClient(ctx, cons, cl.ClientID))
		if got.Active {
			t.Fatal("the vendor's client is still active after the revoke")
		}
	})
}

// The catalogue shows a private scope only to the orgs that own it or can
// get it, and nothing private to an anonymous caller.
func TestCoreCatalogue(t *testing.T) {
	eachCore(t, func(t *testing.T, core *manage.Service) {
		ctx := t.Context()
		_, prov, _ := story(t, core)
		must[store.Scope](t)(core.CreateScope(ctx, prov, manage.ScopeInput{Prefix: "acme", Subscope: "secret", Description: "private", Visibility: store.VisibilityPrivate}))
		must[store.Access](t)(core.GrantAccess(ctx, prov, "acme:secret", consumer, manage.AccessInput{}))
		names := func(a *manage.Actor) []string {
			var out []string
			for _, sc := range must[[]store.Scope](t)(core.Catalogue(ctx, a, "acme", store.Page{Limit: 1})) {
				out = append(out, sc.Name)
			}
			for _, sc := range must[[]store.Scope](t)(core.Catalogue(ctx, a, "acme", store.Page{Limit: 10})) {
				out = append(out, sc.Name)
			}
			return out
		}
		if got := names(nil); slices.Contains(got, "acme:secret") {
			t.Fatalf("anonymous catalogue %v shows the private scope", got)
		}
		if got := names(actor(vendor)); slices.Contains(got, "acme:secret") {
			t.Fatalf("another org's catalogue %v shows the private scope", got)
		}
		if got := names(actor(consumer)); !slices.Contains(got, "acme:secret") {
			t.Fatalf("the consumer's catalogue %v misses the private scope it can get", got)
		}
	})
}

// The core refuses input before it opens a transaction: a failed check
// leaves the audit trail as it was.
func TestCoreRefusalChangesNothing(t *testing.T) {
	eachCore(t, func(t *testing.T, core *manage.Service) {
		ctx := context.Background()
		_, prov, cons := story(t, core)
		audit := func() int {
			return len(must[manage.AuditPage](t)(core.Audit(ctx, actor(provider, records.AuditRead), manage.AuditQuery{Limit: "500"})).Events)
		}
		before := audit()
		if _, err := core.CreateScope(ctx, prov, manage.ScopeInput{Prefix: "acme", Subscope: "api", Description: "again"}); err == nil {
			t.Fatal("created a scope twice")
		}
		if _, err := core.GiveDelegation(ctx, cons, "acme:nothing", vendor); kind(err) != manage.Invalid {
			t.Fatalf("delegated a scope that does not exist: %v", err)
		}
		if after := audit(); after != before {
			t.Fatalf("%d audit events after refusals, %d before", after, before)
		}
	})
}

// OwnPrefixes lists the prefixes of the actor's org only, and needs a
// scopes role.
func TestCoreOwnPrefixes(t *testing.T) {
	eachCore(t, func(t *testing.T, core *manage.Service) {
		ctx := t.Context()
		admin, _, _ := story(t, core)
		must[store.Prefix](t)(core.AssignPrefix(ctx, admin, "other", manage.PrefixInput{OwnerOrg: consumer}))
		got := must[[]store.Prefix](t)(core.OwnPrefixes(ctx, actor(provider, records.ScopesRead)))
		if len(got) != 1 || got[0].Prefix != "acme" {
			t.Fatalf("ok/own-prefixes: %+v, want acme only", got)
		}
		if _, err := core.OwnPrefixes(ctx, actor(provider, records.AuditRead)); kind(err) != manage.InsufficientScope {
			t.Fatalf("fail/without-a-scopes-role: %v", err)
		}
	})
}
