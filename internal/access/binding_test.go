package access_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/access"
	"github.com/portvakt/portvakt/internal/protocol"
	"github.com/portvakt/portvakt/internal/rules"
	"github.com/portvakt/portvakt/internal/store"
)

// Thumbprints as the token endpoint finds them: a DPoP key's (JKT) and a
// client certificate's (X5T).
const (
	jkt = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
	x5t = "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"
)

// bindingRules: one scope per token_binding, all granted to consumer, and
// a scope that requires DPoP but which consumer has no access to.
func bindingRules(t testing.TB) *rules.Snapshot {
	t.Helper()
	bound := func(name, binding string) store.Scope {
		return scope(name, func(s *store.Scope) { s.TokenBinding = binding })
	}
	scopes := []store.Scope{
		bound("acme:unset", ""),
		bound("acme:none", store.TokenBindingNone),
		bound("acme:dpop", store.TokenBindingDPoP),
		bound("acme:mtls", store.TokenBindingMTLS),
		bound("acme:any", store.TokenBindingAny),
		bound("acme:unknown", "tpm"),
		bound("acme:noaccess", store.TokenBindingDPoP),
	}
	var acc []store.Access
	for _, s := range scopes {
		if s.Name != "acme:noaccess" {
			acc = append(acc, approved(s.Name, consumer))
		}
	}
	return rules.Build(scopes, acc, nil, nil)
}

func boundRequest(b access.Binding, requireDPoP bool, scopes ...string) access.Request {
	c := client(consumer, func(c *store.Client) {
		c.Scopes = []string{"acme:unset", "acme:none", "acme:dpop", "acme:mtls", "acme:any", "acme:unknown", "acme:noaccess"}
		c.RequireDPoP = requireDPoP
	})
	return access.Request{Client: c, Scopes: scopes, Binding: b}
}

// The token_binding policy and require_dpop, over every binding a request
// can bring: none, a DPoP key, a client certificate, both. The mTLS and any
// policies are checked here with an X5T given, as the TLS listener will
// give it.
func TestDecideBinding(t *testing.T) {
	recs := bindingRules(t)
	none, dpop, mtls, both := access.Binding{}, access.Binding{JKT: jkt}, access.Binding{X5T: x5t}, access.Binding{JKT: jkt, X5T: x5t}
	tests := []struct {
		name        string
		binding     access.Binding
		requireDPoP bool
		scopes      []string
		// fail cases: the error code and fragments of the description
		code string
		desc []string
	}{
		{name: "ok/binding/unset-accepts-bearer", binding: none, scopes: []string{"acme:unset"}},
		{name: "ok/binding/none-accepts-bearer", binding: none, scopes: []string{"acme:none"}},
		{name: "ok/binding/none-accepts-dpop", binding: dpop, scopes: []string{"acme:none"}},
		{name: "ok/binding/none-accepts-mtls", binding: mtls, scopes: []string{"acme:none"}},
		{name: "ok/binding/dpop-with-proof", binding: dpop, scopes: []string{"acme:dpop"}},
		{name: "ok/binding/dpop-with-proof-and-certificate", binding: both, scopes: []string{"acme:dpop"}},
		{name: "ok/binding/mtls-with-certificate", binding: mtls, scopes: []string{"acme:mtls"}},
		{name: "ok/binding/mtls-with-certificate-and-proof", binding: both, scopes: []string{"acme:mtls"}},
		{name: "ok/binding/any-with-dpop", binding: dpop, scopes: []string{"acme:any"}},
		{name: "ok/binding/any-with-mtls", binding: mtls, scopes: []string{"acme:any"}},
		{name: "ok/binding/any-with-both", binding: both, scopes: []string{"acme:any"}},
		{name: "ok/binding/each-scope-met", binding: both, scopes: []string{"acme:none", "acme:dpop", "acme:mtls", "acme:any"}},
		{name: "ok/binding/require-dpop-with-proof", binding: dpop, requireDPoP: true, scopes: []string{"acme:none"}},

		{name: "fail/binding/dpop-without-proof", binding: none, scopes: []string{"acme:dpop"},
			code: "invalid_scope", desc: []string{`scope "acme:dpop" requires a DPoP-bound token (token_binding: dpop)`, "DPoP header"}},
		{name: "fail/binding/dpop-with-certificate-only", binding: mtls, scopes: []string{"acme:dpop"},
			code: "invalid_scope", desc: []string{`scope "acme:dpop"`, "token_binding: dpop"}},
		{name: "fail/binding/mtls-without-certificate", binding: none, scopes: []string{"acme:mtls"},
			code: "invalid_scope", desc: []string{`scope "acme:mtls" requires a certificate-bound token (token_binding: mtls)`, "client certificate"}},
		{name: "fail/binding/mtls-with-proof-only", binding: dpop, scopes: []string{"acme:mtls"},
			code: "invalid_scope", desc: []string{`scope "acme:mtls"`, "token_binding: mtls"}},
		{name: "fail/binding/any-without-binding", binding: none, scopes: []string{"acme:any"},
			code: "invalid_scope", desc: []string{`scope "acme:any" requires a DPoP- or certificate-bound token (token_binding: any)`}},
		{name: "fail/binding/unknown-binding-fails-closed", binding: both, scopes: []string{"acme:unknown"},
			code: "invalid_scope", desc: []string{`scope "acme:unknown"`, `token_binding: "tpm"`}},
		{name: "fail/binding/one-of-two-scopes-needs-binding", binding: none, scopes: []string{"acme:none", "acme:dpop"},
			code: "invalid_scope", desc: []string{`scope "acme:dpop"`}},
		{name: "fail/binding/first-unmet-scope-in-request-order", binding: none, scopes: []string{"acme:any", "acme:dpop"},
			code: "invalid_scope", desc: []string{`scope "acme:any"`}},
		{name: "fail/binding/access-is-checked-before-binding", binding: none, scopes: []string{"acme:noaccess"},
			code: "invalid_scope", desc: []string{"has no access"}},
		{name: "fail/binding/require-dpop-without-proof-is-invalid_request", binding: none, requireDPoP: true, scopes: []string{"acme:none"},
			code: "invalid_request", desc: []string{"requires DPoP (require_dpop)", "DPoP header"}},
		{name: "fail/binding/require-dpop-with-certificate-only-is-invalid_request", binding: mtls, requireDPoP: true, scopes: []string{"acme:mtls"},
			code: "invalid_request", desc: []string{"require_dpop"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := access.Decide(policy, boundRequest(tc.binding, tc.requireDPoP, tc.scopes...), recs)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				want := access.Grant{Scopes: tc.scopes, ConsumerOrg: consumer, Lifetime: 120 * time.Second}
				if strings.Join(g.Scopes, " ") != strings.Join(want.Scopes, " ") || g.ConsumerOrg != want.ConsumerOrg || g.Lifetime != want.Lifetime {
					t.Fatalf("grant %+v, want %+v", g, want)
				}
				return
			}
			var pe *protocol.Error
			if !errors.As(err, &pe) || pe.Code != tc.code || pe.Status != 400 {
				t.Fatalf("got %v, want 400 %s", err, tc.code)
			}
			for _, d := range tc.desc {
				if !strings.Contains(pe.Description, d) {
					t.Fatalf("description %q lacks %q", pe.Description, d)
				}
			}
		})
	}
}
