package access_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/access"
	"github.com/portvakt/portvakt/internal/protocol"
	"github.com/portvakt/portvakt/internal/rules"
	"github.com/portvakt/portvakt/internal/store"
)

const (
	issuer   = "https://auth.example.no/"
	provider = "111111111" // owns the acme prefix
	consumer = "222222222" // has access to most acme scopes
	vendor   = "333333333" // acts for consumer through delegations
	stranger = "444444444" // has access to nothing
	apiA     = "https://api.acme.no/a"
	apiB     = "https://api.acme.no/b"
	apiC     = "https://api.acme.no/c"
)

var policy = access.Policy{Issuer: issuer, DefaultLifetime: 120 * time.Second}

func scope(name string, edit ...func(*store.Scope)) store.Scope {
	s := store.Scope{
		Name: name, Prefix: "acme", Subscope: strings.TrimPrefix(name, "acme:"),
		Active: true, Visibility: store.VisibilityPublic, OwnerOrgno: provider,
	}
	for _, e := range edit {
		e(&s)
	}
	return s
}

func delegable(s *store.Scope)        { s.DelegationSource = issuer }
func accessibleForAll(s *store.Scope) { s.AccessibleForAll = true }

func approved(scope, org string) store.Access {
	return store.Access{Scope: scope, ConsumerOrgno: org, OwnerOrgno: provider, State: store.AccessApproved}
}

func denied(scope, org string) store.Access {
	return store.Access{Scope: scope, ConsumerOrgno: org, OwnerOrgno: provider, State: store.AccessDenied}
}

func delegation(scope, cons, supp, state string) store.Delegation {
	return store.Delegation{Scope: scope, ConsumerOrgno: cons, SupplierOrgno: supp, State: state}
}

func testScopes() []store.Scope {
	return []store.Scope{
		scope("acme:direct"),
		scope("acme:open", accessibleForAll),
		scope("acme:denied"),
		scope("acme:deleg", delegable),
		scope("acme:opendeleg", delegable, accessibleForAll),
		scope("acme:revoked", delegable),
		scope("acme:nodeleg"),
		scope("acme:foreign", func(s *store.Scope) { s.DelegationSource = "https://other.example.no/" }),
		scope("acme:nodelegrow", delegable),
		scope("acme:inactive", func(s *store.Scope) { s.Active = false }),
		scope("acme:notonclient"),
		scope("acme:typed", func(s *store.Scope) { s.AllowedIntegrationTypes = []string{"api_klient"} }),
		scope("acme:typedok", func(s *store.Scope) {
			s.AllowedIntegrationTypes = []string{"api_klient", protocol.IntegrationMaskinporten}
		}),
		scope("acme:aud", func(s *store.Scope) { s.RequiresAudience = true; s.Audiences = []string{apiA, apiB} }),
		scope("acme:audopt", func(s *store.Scope) { s.Audiences = []string{apiA} }),
		scope("acme:audany", func(s *store.Scope) { s.RequiresAudience = true }),
		scope("acme:short", func(s *store.Scope) { s.ATMaxAge = 60 }),
		scope("acme:long", func(s *store.Scope) { s.ATMaxAge = 600 }),
	}
}

// testRules is the world every case runs against: real records in a real
// snapshot, no mocks.
func testRules(t testing.TB) *rules.Snapshot {
	t.Helper()
	scopes := testScopes()
	var acc []store.Access
	for _, s := range scopes {
		if s.Name != "acme:denied" && !s.AccessibleForAll {
			acc = append(acc, approved(s.Name, consumer))
		}
	}
	acc = append(acc, denied("acme:denied", consumer))
	dels := []store.Delegation{
		delegation("acme:deleg", consumer, vendor, store.DelegationActive),
		delegation("acme:opendeleg", stranger, vendor, store.DelegationActive),
		delegation("acme:revoked", consumer, vendor, store.DelegationRevoked),
		delegation("acme:nodeleg", consumer, vendor, store.DelegationActive),
		delegation("acme:foreign", consumer, vendor, store.DelegationActive),
		// stranger cannot get acme:deleg, so this delegation grants nothing.
		delegation("acme:deleg", stranger, vendor, store.DelegationActive),
	}
	return rules.Build(scopes, acc, dels, nil)
}

func client(org string, edit ...func(*store.Client)) store.Client {
	c := store.Client{
		ClientID:        "5e0c3a3e-7f0e-4d5c-9f4e-0c1f2a3b4c5d",
		ClientOrgno:     org,
		ClientName:      "test client",
		IntegrationType: protocol.IntegrationMaskinporten,
		Active:          true,
	}
	// The client lists every scope but acme:notonclient.
	for _, s := range testScopes() {
		if s.Name != "acme:notonclient" {
			c.Scopes = append(c.Scopes, s.Name)
		}
	}
	for _, e := range edit {
		e(&c)
	}
	return c
}

func direct(scopes ...string) access.Request {
	return access.Request{Client: client(consumer), Scopes: scopes}
}

func delegated(cons string, scopes ...string) access.Request {
	return access.Request{Client: client(vendor), Scopes: scopes, ConsumerOrg: cons}
}

func withResources(r access.Request, res ...string) access.Request {
	r.Resources = res
	return r
}

func withClient(r access.Request, edit func(*store.Client)) access.Request {
	edit(&r.Client)
	return r
}

func TestDecide(t *testing.T) {
	recs := testRules(t)
	tests := []struct {
		name string
		req  access.Request
		want access.Grant
		// for fail cases: the error code and a fragment of the description
		code, desc string
	}{
		{
			name: "ok/direct access",
			req:  direct("acme:direct"),
			want: access.Grant{Scopes: []string{"acme:direct"}, ConsumerOrg: consumer, Lifetime: 120 * time.Second},
		},
		{
			name: "ok/accessible for all",
			req:  access.Request{Client: client(stranger), Scopes: []string{"acme:open"}},
			want: access.Grant{Scopes: []string{"acme:open"}, ConsumerOrg: stranger, Lifetime: 120 * time.Second},
		},
		{
			name: "ok/several scopes keep request order",
			req:  direct("acme:open", "acme:direct", "acme:deleg"),
			want: access.Grant{Scopes: []string{"acme:open", "acme:direct", "acme:deleg"}, ConsumerOrg: consumer, Lifetime: 120 * time.Second},
		},
		{
			name: "ok/delegation",
			req:  delegated(consumer, "acme:deleg"),
			want: access.Grant{
				Scopes: []string{"acme:deleg"}, ConsumerOrg: consumer, SupplierOrg: vendor,
				DelegationSource: issuer, Lifetime: 120 * time.Second,
			},
		},
		{
			name: "ok/delegation of a scope accessible for all",
			req:  delegated(stranger, "acme:opendeleg"),
			want: access.Grant{
				Scopes: []string{"acme:opendeleg"}, ConsumerOrg: stranger, SupplierOrg: vendor,
				DelegationSource: issuer, Lifetime: 120 * time.Second,
			},
		},
		{
			name: "ok/integration type listed",
			req:  direct("acme:typedok"),
			want: access.Grant{Scopes: []string{"acme:typedok"}, ConsumerOrg: consumer, Lifetime: 120 * time.Second},
		},
		{
			name: "ok/empty integration types means any",
			req:  withClient(direct("acme:direct"), func(c *store.Client) { c.IntegrationType = "api_klient" }),
			want: access.Grant{Scopes: []string{"acme:direct"}, ConsumerOrg: consumer, Lifetime: 120 * time.Second},
		},
		{
			name: "ok/resource in audiences",
			req:  withResources(direct("acme:aud"), apiA),
			want: access.Grant{Scopes: []string{"acme:aud"}, ConsumerOrg: consumer, Audience: []string{apiA}, Lifetime: 120 * time.Second},
		},
		{
			name: "ok/several resources all allowed",
			req:  withResources(direct("acme:aud", "acme:direct"), apiB, apiA),
			want: access.Grant{Scopes: []string{"acme:aud", "acme:direct"}, ConsumerOrg: consumer, Audience: []string{apiB, apiA}, Lifetime: 120 * time.Second},
		},
		{
			name: "ok/requires audience, any resource",
			req:  withResources(direct("acme:audany"), apiC),
			want: access.Grant{Scopes: []string{"acme:audany"}, ConsumerOrg: consumer, Audience: []string{apiC}, Lifetime: 120 * time.Second},
		},
		{
			name: "ok/audiences without requires_audience, no resource",
			req:  direct("acme:audopt"),
			want: access.Grant{Scopes: []string{"acme:audopt"}, ConsumerOrg: consumer, Lifetime: 120 * time.Second},
		},
		{
			name: "ok/resource on a scope without audiences",
			req:  withResources(direct("acme:direct"), apiC),
			want: access.Grant{Scopes: []string{"acme:direct"}, ConsumerOrg: consumer, Audience: []string{apiC}, Lifetime: 120 * time.Second},
		},
		{
			name: "ok/lifetime is the smallest at_max_age",
			req:  direct("acme:long", "acme:short", "acme:direct"),
			want: access.Grant{Scopes: []string{"acme:long", "acme:short", "acme:direct"}, ConsumerOrg: consumer, Lifetime: 60 * time.Second},
		},
		{
			name: "ok/lifetime above the default when capped higher",
			req:  direct("acme:long"),
			want: access.Grant{Scopes: []string{"acme:long"}, ConsumerOrg: consumer, Lifetime: 600 * time.Second},
		},
		{
			name: "ok/client lifetime smaller",
			req:  withClient(direct("acme:long", "acme:short"), func(c *store.Client) { c.AccessTokenLifetime = 30 }),
			want: access.Grant{Scopes: []string{"acme:long", "acme:short"}, ConsumerOrg: consumer, Lifetime: 30 * time.Second},
		},
		{
			name: "ok/client lifetime larger",
			req:  withClient(direct("acme:short"), func(c *store.Client) { c.AccessTokenLifetime = 300 }),
			want: access.Grant{Scopes: []string{"acme:short"}, ConsumerOrg: consumer, Lifetime: 60 * time.Second},
		},
		{
			name: "ok/client lifetime alone",
			req:  withClient(direct("acme:direct"), func(c *store.Client) { c.AccessTokenLifetime = 90 }),
			want: access.Grant{Scopes: []string{"acme:direct"}, ConsumerOrg: consumer, Lifetime: 90 * time.Second},
		},
		{
			name: "ok/no cap gives the default",
			req:  direct("acme:direct", "acme:open"),
			want: access.Grant{Scopes: []string{"acme:direct", "acme:open"}, ConsumerOrg: consumer, Lifetime: 120 * time.Second},
		},

		{name: "fail/no scopes", req: direct(), code: protocol.CodeInvalidScope, desc: "scope claim is empty"},
		{name: "fail/unknown scope", req: direct("acme:nope"), code: protocol.CodeInvalidScope, desc: `scope "acme:nope" does not exist or is not active`},
		{name: "fail/inactive scope", req: direct("acme:inactive"), code: protocol.CodeInvalidScope, desc: `scope "acme:inactive" does not exist or is not active`},
		{name: "fail/scope not on the client", req: direct("acme:notonclient"), code: protocol.CodeInvalidScope, desc: `is not allowed scope "acme:notonclient"; add it to the client`},
		{
			name: "fail/integration type mismatch", req: direct("acme:typed"),
			code: protocol.CodeInvalidScope, desc: `scope "acme:typed" is not available to clients of integration type "maskinporten"`,
		},
		{name: "fail/denied access row", req: direct("acme:denied"), code: protocol.CodeInvalidScope, desc: `organisation 222222222 has no access to scope "acme:denied"`},
		{
			name: "fail/no access row", req: access.Request{Client: client(stranger), Scopes: []string{"acme:direct"}},
			code: protocol.CodeInvalidScope, desc: `organisation 444444444 has no access to scope "acme:direct"`,
		},
		{
			name: "fail/vendor without consumer_org has no access of its own", req: access.Request{Client: client(vendor), Scopes: []string{"acme:deleg"}},
			code: protocol.CodeInvalidScope, desc: `organisation 333333333 has no access to scope "acme:deleg"`,
		},
		{
			name: "fail/delegation missing", req: delegated(consumer, "acme:nodelegrow"),
			code: protocol.CodeInvalidScope, desc: `organisation 222222222 has not delegated scope "acme:nodelegrow" to organisation 333333333`,
		},
		{
			// The ok/delegation request, from a client a vendor manages for
			// the same org: it acts only for its owner.
			name: "fail/delegated-admin/managed-client-consumer-org",
			req: access.Request{Client: client(vendor, func(c *store.Client) { c.ManagedBy = stranger }),
				Scopes: []string{"acme:deleg"}, ConsumerOrg: consumer},
			code: protocol.CodeInvalidScope, desc: `is managed by a vendor for organisation 333333333 and acts only for it`,
		},
		{
			// The ok/direct access request from a managed client: acme:direct
			// is not delegable.
			name: "fail/delegated-admin/managed-client-non-delegable-scope",
			req:  access.Request{Client: client(consumer, func(c *store.Client) { c.ManagedBy = vendor }), Scopes: []string{"acme:direct"}},
			code: protocol.CodeInvalidScope, desc: `scope "acme:direct" cannot be delegated, and client`,
		},
		{
			name: "ok/delegated-admin/managed-client-delegable-scope",
			req:  access.Request{Client: client(consumer, func(c *store.Client) { c.ManagedBy = vendor }), Scopes: []string{"acme:deleg"}},
			want: access.Grant{Scopes: []string{"acme:deleg"}, ConsumerOrg: consumer, Lifetime: 120 * time.Second},
		},
		{
			name: "fail/delegation revoked", req: delegated(consumer, "acme:revoked"),
			code: protocol.CodeInvalidScope, desc: `has not delegated scope "acme:revoked"`,
		},
		{
			name: "fail/scope not delegable, no delegation_source", req: delegated(consumer, "acme:nodeleg"),
			code: protocol.CodeInvalidScope, desc: `scope "acme:nodeleg" cannot be delegated`,
		},
		{
			name: "fail/scope not delegable, foreign delegation_source", req: delegated(consumer, "acme:foreign"),
			code: protocol.CodeInvalidScope, desc: `scope "acme:foreign" cannot be delegated`,
		},
		{
			name: "fail/consumer without access", req: delegated(stranger, "acme:deleg"),
			code: protocol.CodeInvalidScope, desc: `consumer_org 444444444 has no access to scope "acme:deleg"`,
		},
		{
			name: "fail/consumer with a denied access row", req: delegated(consumer, "acme:denied"),
			code: protocol.CodeInvalidScope, desc: `consumer_org 222222222 has no access to scope "acme:denied"`,
		},
		{
			name: "fail/delegation does not reach another vendor", req: withClient(delegated(consumer, "acme:deleg"), func(c *store.Client) { c.ClientOrgno = stranger }),
			code: protocol.CodeInvalidScope, desc: `has not delegated scope "acme:deleg" to organisation 444444444`,
		},
		{
			name: "fail/one scope not delegated fails the whole request", req: delegated(consumer, "acme:deleg", "acme:nodelegrow"),
			code: protocol.CodeInvalidScope, desc: `"acme:nodelegrow"`,
		},
		{
			name: "fail/requires_audience without resource", req: direct("acme:aud"),
			code: protocol.CodeInvalidTarget, desc: `scope "acme:aud" requires a resource`,
		},
		{
			name: "fail/resource not in audiences", req: withResources(direct("acme:aud"), apiC),
			code: protocol.CodeInvalidTarget, desc: `resource "https://api.acme.no/c" is not an audience of scope "acme:aud"`,
		},
		{
			name: "fail/one of several resources not in audiences", req: withResources(direct("acme:direct", "acme:aud"), apiA, apiC, apiB),
			code: protocol.CodeInvalidTarget, desc: `resource "https://api.acme.no/c" is not an audience of scope "acme:aud"`,
		},
		{
			name: "fail/resource allowed by one scope, not the other", req: withResources(direct("acme:aud", "acme:audopt"), apiB),
			code: protocol.CodeInvalidTarget, desc: `resource "https://api.acme.no/b" is not an audience of scope "acme:audopt"`,
		},
		{
			name: "fail/order: the first failing scope is named", req: direct("acme:direct", "acme:denied", "acme:nope", "acme:inactive"),
			code: protocol.CodeInvalidScope, desc: `no access to scope "acme:denied"`,
		},
		{
			name: "fail/order: an earlier scope's later rule wins over a later scope's earlier rule", req: direct("acme:notonclient", "acme:nope"),
			code: protocol.CodeInvalidScope, desc: `not allowed scope "acme:notonclient"`,
		},
		{
			name: "fail/order: scopes before resources", req: direct("acme:aud", "acme:denied"),
			code: protocol.CodeInvalidScope, desc: `no access to scope "acme:denied"`,
		},
		{
			name: "fail/order: existence before the client's list", req: withClient(direct("acme:inactive"), func(c *store.Client) { c.Scopes = nil }),
			code: protocol.CodeInvalidScope, desc: "does not exist or is not active",
		},
		{
			name: "fail/order: consumer access before delegability", req: delegated(stranger, "acme:nodeleg"),
			code: protocol.CodeInvalidScope, desc: `consumer_org 444444444 has no access to scope "acme:nodeleg"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := access.Decide(policy, tt.req, recs)
			if strings.HasPrefix(tt.name, "ok/") {
				if err != nil {
					t.Fatalf("Decide: %v", err)
				}
				assertGrant(t, got, tt.want)
				return
			}
			var pe *protocol.Error
			if !errors.As(err, &pe) {
				t.Fatalf("Decide error = %v (grant %+v), want a *protocol.Error", err, got)
			}
			if pe.Code != tt.code || pe.Status != 400 {
				t.Errorf("code = %s (%d), want %s (400)", pe.Code, pe.Status, tt.code)
			}
			if !strings.Contains(pe.Description, tt.desc) {
				t.Errorf("description = %q, want it to contain %q", pe.Description, tt.desc)
			}
			if !slices.Equal(got.Scopes, nil) || got.Lifetime != 0 {
				t.Errorf("a failed decision returned a grant: %+v", got)
			}
		})
	}
}

func assertGrant(t *testing.T, got, want access.Grant) {
	t.Helper()
	if !slices.Equal(got.Scopes, want.Scopes) {
		t.Errorf("Scopes = %q, want %q", got.Scopes, want.Scopes)
	}
	if got.ConsumerOrg != want.ConsumerOrg || got.SupplierOrg != want.SupplierOrg || got.DelegationSource != want.DelegationSource {
		t.Errorf("consumer/supplier/source = %q/%q/%q, want %q/%q/%q",
			got.ConsumerOrg, got.SupplierOrg, got.DelegationSource, want.ConsumerOrg, want.SupplierOrg, want.DelegationSource)
	}
	if !slices.Equal(got.Audience, want.Audience) || (got.Audience == nil) != (want.Audience == nil) {
		t.Errorf("Audience = %#v, want %#v", got.Audience, want.Audience)
	}
	if got.Lifetime != want.Lifetime {
		t.Errorf("Lifetime = %v, want %v", got.Lifetime, want.Lifetime)
	}
}

// The grant must not alias the request: the caller may reuse its slices.
func TestDecideCopies(t *testing.T) {
	req := withResources(direct("acme:direct"), apiA)
	g, err := access.Decide(policy, req, testRules(t))
	if err != nil {
		t.Fatal(err)
	}
	req.Scopes[0], req.Resources[0] = "x", "y"
	if g.Scopes[0] != "acme:direct" || g.Audience[0] != apiA {
		t.Errorf("grant shares the request's slices: %+v", g)
	}
}

func TestDecideEmptyIssuerDelegatesNothing(t *testing.T) {
	recs := rules.Build(
		[]store.Scope{scope("acme:blank")}, // no delegation_source
		[]store.Access{approved("acme:blank", consumer)},
		[]store.Delegation{delegation("acme:blank", consumer, vendor, store.DelegationActive)},
		nil,
	)
	req := access.Request{Client: client(vendor, func(c *store.Client) { c.Scopes = []string{"acme:blank"} }), Scopes: []string{"acme:blank"}, ConsumerOrg: consumer}
	_, err := access.Decide(access.Policy{DefaultLifetime: time.Minute}, req, recs)
	if err == nil || !strings.Contains(err.Error(), "cannot be delegated") {
		t.Fatalf("Decide with an empty issuer = %v, want cannot be delegated", err)
	}
}

func TestCanGet(t *testing.T) {
	recs := testRules(t)
	tests := []struct {
		name, scope, org string
		want             bool
	}{
		{"ok/approved access", "acme:direct", consumer, true},
		{"ok/accessible for all", "acme:open", stranger, true},
		{"fail/denied access", "acme:denied", consumer, false},
		{"fail/no access row", "acme:direct", stranger, false},
		{"fail/inactive scope", "acme:inactive", consumer, false},
		{"fail/unknown scope", "acme:nope", consumer, false},
		{"fail/delegation is not own access", "acme:deleg", vendor, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := access.CanGet(recs, tt.scope, tt.org); got != tt.want {
				t.Errorf("CanGet(%s, %s) = %v, want %v", tt.scope, tt.org, got, tt.want)
			}
		})
	}
}

func TestClientMayList(t *testing.T) {
	recs := testRules(t)
	tests := []struct {
		name, scope, org string
		want             bool
	}{
		{"ok/direct access", "acme:direct", consumer, true},
		{"ok/accessible for all", "acme:open", vendor, true},
		{"ok/active delegation", "acme:deleg", vendor, true},
		{"ok/delegation from a consumer that gets it for all", "acme:opendeleg", vendor, true},
		{"fail/revoked delegation", "acme:revoked", vendor, false},
		{"fail/delegation of a scope that is not delegable", "acme:nodeleg", vendor, false},
		{"fail/no delegation", "acme:nodelegrow", vendor, false},
		{"fail/denied access", "acme:denied", consumer, false},
		{"ok/inactive scope with access stays listable (refused at token time)", "acme:inactive", consumer, true},
		{"fail/inactive scope without access", "acme:inactive", stranger, false},
		{"fail/unknown scope", "acme:nope", consumer, false},
		{"fail/no access at all", "acme:direct", stranger, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := access.ClientMayList(recs, tt.scope, tt.org); got != tt.want {
				t.Errorf("ClientMayList(%s, %s) = %v, want %v", tt.scope, tt.org, got, tt.want)
			}
		})
	}
}

// A delegation whose consumer lost its access lists nothing.
func TestClientMayListConsumerLostAccess(t *testing.T) {
	recs := rules.Build(
		[]store.Scope{scope("acme:deleg", delegable)},
		[]store.Access{denied("acme:deleg", consumer)},
		[]store.Delegation{delegation("acme:deleg", consumer, vendor, store.DelegationActive)},
		nil,
	)
	if access.ClientMayList(recs, "acme:deleg", vendor) {
		t.Error("ClientMayList = true for a delegation from a consumer without access")
	}
}

func BenchmarkDecide3Scopes(b *testing.B) {
	recs := testRules(b)
	req := withResources(direct("acme:direct", "acme:aud", "acme:short"), apiA)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := access.Decide(policy, req, recs); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecide3ScopesDelegated(b *testing.B) {
	names := []string{"acme:a", "acme:b", "acme:c"}
	var (
		scopes []store.Scope
		acc    []store.Access
		dels   []store.Delegation
	)
	for _, n := range names {
		scopes = append(scopes, scope(n, delegable))
		acc = append(acc, approved(n, consumer))
		dels = append(dels, delegation(n, consumer, vendor, store.DelegationActive))
	}
	recs := rules.Build(scopes, acc, dels, nil)
	req := access.Request{Client: client(vendor, func(c *store.Client) { c.Scopes = names }), Scopes: names, ConsumerOrg: consumer}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := access.Decide(policy, req, recs); err != nil {
			b.Fatal(err)
		}
	}
}
