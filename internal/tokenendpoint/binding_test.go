package tokenendpoint_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/portvakt/portvakt/internal/exchange"
	"github.com/portvakt/portvakt/internal/protocol"
	"github.com/portvakt/portvakt/internal/store"
	"github.com/portvakt/portvakt/pkg/dpop"
)

// withBindings adds a scope per token_binding, granted to the consumer and
// listed by every client, and a client of the consumer that requires DPoP
// (signing with kid-ec256's key under its own client_id).
func withBindings(requireDPoP *identity) envOption {
	return func(r *store.StaticRecords) {
		now := r.Scopes[0].Created
		for _, b := range []string{"none", "dpop", "mtls", "any"} {
			name := "demo:bound-" + b
			r.Scopes = append(r.Scopes, store.Scope{
				Name: name, Prefix: "demo", Subscope: "bound-" + b, Description: b, Active: true,
				AllowedIntegrationTypes: []string{}, Visibility: store.VisibilityPublic, Audiences: []string{},
				TokenBinding: b, OwnerOrgno: providerOrg, Created: now, LastUpdated: now,
			})
			r.Access = append(r.Access, store.Access{Scope: name, ConsumerOrgno: consumerOrg, OwnerOrgno: providerOrg,
				State: store.AccessApproved, Created: now, LastUpdated: now})
			for i := range r.Clients {
				r.Clients[i].Scopes = append(slices.Clone(r.Clients[i].Scopes), name)
			}
		}
		for _, c := range r.Clients {
			if c.ClientID == bindingIDs.kid.clientID {
				c.ClientID, c.ClientName, c.RequireDPoP = requireDPoP.clientID, "requires DPoP", true
				r.Clients = append(r.Clients, c)
				break
			}
		}
	}
}

// bindingIDs are the identities of the binding tests: a key client, and
// the same key registered to a client that requires DPoP.
var bindingIDs struct{ kid, requireDPoP *identity }

func newBindingEnv(t *testing.T, engine string) *dpopEnv {
	t.Helper()
	_, ids, _ := fixtures(t)
	kid := ids["kid-ec256"]
	bindingIDs.kid = kid
	bindingIDs.requireDPoP = &identity{clientID: uuid.NewSHA1(uuid.NameSpaceURL, []byte("require-dpop")).String(), key: kid.key, kid: kid.kid}
	return newDPoPEnv(t, engine, false, withBindings(bindingIDs.requireDPoP))
}

// rows are the issued-token rows, newest first.
func (e *dpopEnv) rows(t *testing.T) []store.IssuedToken {
	t.Helper()
	rows, err := e.db.ListIssuedTokens(context.Background(), store.IssuedTokenFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// A scope's token_binding and a client's require_dpop, through real HTTP
// on both engines: the grant without the binding is refused and leaves no
// issued-token row (and its DPoP proof unused); with it the token is bound
// and its row holds the key's thumbprint. (mtls is met only over a TLS
// connection with a client certificate; without one it refuses, here even
// with a DPoP proof.)
func TestTokenBinding(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			e := newBindingEnv(t, engine)
			id, strict := bindingIDs.kid, bindingIDs.requireDPoP
			jkt, err := dpop.Thumbprint(proofKey(t, "ec256").Public())
			if err != nil {
				t.Fatal(err)
			}
			// issues checks a 200 and the binding in the token's row.
			issues := func(t *testing.T, r response, tokenType, wantJKT string) {
				t.Helper()
				if r.status != 200 || r.body["token_type"] != tokenType {
					t.Fatalf("got %d %s, want 200 token_type %s", r.status, r.raw, tokenType)
				}
				if tokenType == "DPoP" {
					e.wantBound(t, r, "ec256")
				}
				_, cl := e.verify(t, r.body["access_token"].(string))
				i := slices.IndexFunc(e.rows(t), func(row store.IssuedToken) bool { return row.TokenJTI == cl["jti"] })
				if i < 0 {
					t.Fatalf("no issued-token row for jti %v", cl["jti"])
				}
				if row := e.rows(t)[i]; row.CnfJKT != wantJKT || row.CnfX5T != "" {
					t.Fatalf("row %+v, want cnf_jkt %q and no cnf_x5t", row, wantJKT)
				}
			}
			// refused checks a 400 that wrote nothing.
			refused := func(t *testing.T, r response, code string, desc ...string) {
				t.Helper()
				before := e.issued()
				if r.status != 400 || r.code() != code {
					t.Fatalf("got %d %s, want 400 %s", r.status, r.raw, code)
				}
				for _, d := range desc {
					if !strings.Contains(r.desc(), d) {
						t.Fatalf("description %q lacks %q", r.desc(), d)
					}
				}
				if n := e.issued(); n != before {
					t.Fatalf("a refused request left %d issued-token rows", n-before)
				}
			}
			t.Run("fail/binding/dpop-scope-without-proof", func(t *testing.T) {
				// The endpoint writes the description's double quotes as single ones.
				refused(t, e.grantScope(id, "demo:bound-dpop"), "invalid_scope",
					`scope 'demo:bound-dpop' requires a DPoP-bound token (token_binding: dpop)`, "DPoP header", "(request_id: ")
			})
			t.Run("ok/binding/dpop-scope-with-proof", func(t *testing.T) {
				issues(t, e.grantScope(id, "demo:bound-dpop", e.proof(proofSpec{})), "DPoP", jkt)
			})
			t.Run("ok/binding/any-accepts-dpop", func(t *testing.T) {
				issues(t, e.grantScope(id, "demo:bound-any", e.proof(proofSpec{})), "DPoP", jkt)
			})
			t.Run("fail/binding/any-without-binding", func(t *testing.T) {
				refused(t, e.grantScope(id, "demo:bound-any"), "invalid_scope", `scope 'demo:bound-any'`, "token_binding: any")
			})
			t.Run("ok/binding/none-accepts-bearer", func(t *testing.T) {
				issues(t, e.grantScope(id, "demo:bound-none"), "Bearer", "")
			})
			t.Run("ok/binding/none-accepts-dpop", func(t *testing.T) {
				issues(t, e.grantScope(id, "demo:bound-none", e.proof(proofSpec{})), "DPoP", jkt)
			})
			t.Run("fail/binding/mtls-scope-with-dpop-only-leaves-the-proof-unused", func(t *testing.T) {
				p := e.proof(proofSpec{})
				refused(t, e.grantScope(id, "demo:bound-mtls", p), "invalid_scope",
					`scope 'demo:bound-mtls' requires a certificate-bound token (token_binding: mtls)`)
				// The refused request did not use the proof up.
				issues(t, e.grantScope(id, "demo:bound-dpop", p), "DPoP", jkt)
			})
			t.Run("fail/binding/two-scopes-one-needs-binding", func(t *testing.T) {
				refused(t, e.grantScope(id, "demo:read demo:bound-dpop"), "invalid_scope", `scope 'demo:bound-dpop'`, "token_binding: dpop")
			})
			t.Run("ok/binding/two-scopes-one-needs-binding-with-proof", func(t *testing.T) {
				r := e.grantScope(id, "demo:read demo:bound-dpop", e.proof(proofSpec{}))
				issues(t, r, "DPoP", jkt)
				if r.body["scope"] != "demo:read demo:bound-dpop" {
					t.Fatalf("scope %v", r.body["scope"])
				}
			})
			t.Run("fail/binding/require-dpop-client-without-proof-is-invalid_request", func(t *testing.T) {
				refused(t, e.grantScope(strict, "demo:read"), "invalid_request", "requires DPoP (require_dpop)", "DPoP header")
			})
			t.Run("ok/binding/require-dpop-client-with-proof", func(t *testing.T) {
				issues(t, e.grantScope(strict, "demo:read", e.proof(proofSpec{})), "DPoP", jkt)
			})
			t.Run("ok/binding/bearer-row-has-no-thumbprints", func(t *testing.T) {
				issues(t, e.grantScope(id, "demo:read"), "Bearer", "")
			})
		})
	}
}

// The certificate thumbprint the TLS listener finds (exchange.Request.X5T)
// meets mtls and any, and is written to the token's row as cnf_x5t. The
// exchange is called directly: this server has no TLS listener of its own
// here.
func TestTokenBindingWithCertificateThumbprint(t *testing.T) {
	e := newBindingEnv(t, "sqlite")
	ex := exchange.New(exchange.Config{Issuer: issuer, Now: e.clock.Now}, e.cache, nil, e.db, e.keys)
	id := bindingIDs.kid
	const x5t = "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"
	exchangeFor := func(scope, x5t string) (*exchange.Result, error) {
		return ex.Exchange(t.Context(), exchange.Request{Assertion: e.sign(id, e.claims(id, scope), nil), RemoteAddr: "127.0.0.1:1", X5T: x5t})
	}
	for _, scope := range []string{"demo:bound-mtls", "demo:bound-any", "demo:bound-none"} {
		t.Run("ok/binding/certificate-meets-"+strings.TrimPrefix(scope, "demo:bound-"), func(t *testing.T) {
			res, err := exchangeFor(scope, x5t)
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(e.rows(t), func(row store.IssuedToken) bool { return row.TokenJTI == res.TokenJTI })
			if i < 0 || e.rows(t)[i].CnfX5T != x5t || e.rows(t)[i].CnfJKT != "" {
				t.Fatalf("no row with cnf_x5t %s for token %s", x5t, res.TokenJTI)
			}
		})
	}
	for _, scope := range []string{"demo:bound-mtls", "demo:bound-any"} {
		t.Run("fail/binding/no-certificate-for-"+strings.TrimPrefix(scope, "demo:bound-"), func(t *testing.T) {
			_, err := exchangeFor(scope, "")
			var pe *protocol.Error
			if !errors.As(err, &pe) || pe.Code != "invalid_scope" || !strings.Contains(pe.Description, scope) {
				t.Fatalf("got %v, want invalid_scope naming %s", err, scope)
			}
		})
	}
	t.Run("fail/binding/certificate-does-not-meet-dpop", func(t *testing.T) {
		if _, err := exchangeFor("demo:bound-dpop", x5t); err == nil || !strings.Contains(err.Error(), "token_binding: dpop") {
			t.Fatalf("got %v, want the dpop binding refused", err)
		}
	})
}
