package selfservice_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/portvakt/portvakt/internal/selfservice"
)

// TestInput runs good and bad requests against every endpoint that takes
// input. A fail case must name every bad field and change nothing (no
// audit event); the cases run in order on one world.
func TestInput(t *testing.T) { eachEngine(t, testInput) }

// inputCase sends one request of an input table and checks what every case
// shares: the status, one audit event for an accepted write and none for a
// refused request. refused reports whether the case is a fail/ case, whose
// problem document the caller checks further.
func (w *world) inputCase(t *testing.T, name, tok, method, path string, body any, status int) (rep reply, refused bool) {
	t.Helper()
	before := len(w.auditAll(t.Context()))
	rep = w.do(tok, method, path, body)
	if rep.status != status {
		t.Fatalf("status %d, want %d: %.500s", rep.status, status, rep.body)
	}
	after := len(w.auditAll(t.Context()))
	if strings.HasPrefix(name, "ok/") {
		if method != "GET" && after != before+1 {
			t.Errorf("%d audit events written, want 1", after-before)
		}
		return rep, false
	}
	if after != before {
		t.Errorf("a refused request wrote %d audit events", after-before)
	}
	return rep, true
}

func testInput(t *testing.T, eng engine) {
	w := newWorld(t, eng)
	rsa1024 := rsaJWK(t, 1024, "small")
	rsa2048 := rsaJWK(t, 2048, "rsa")
	_, ec256 := ecJWK(t, "ec256")
	_, ec384 := ec384JWK(t, "ec384")
	_, dup := ecJWK(t, "ec256")
	ecPriv := ecPrivateJWK(t, "priv")
	encKey := ecJWKUse(t, "enc", "enc")
	badAlg := ecJWKAlg(t, "badalg", "RS256")
	six := []any{}
	for i := range 6 {
		_, k := ecJWK(t, "k"+string(rune('a'+i)))
		six = append(six, k)
	}
	long := strings.Repeat("a", 251)

	type tc struct {
		name         string
		tok          string
		method, path string
		body         any
		status       int
		fields       []string // fail: the fields named in errors, in order
	}
	P, C, A := w.provider, w.consumer, w.admin
	cl := "/clients/" + w.clientID
	cases := []tc{
		// prefixes
		{"ok/prefix", A, "PUT", "/prefixes/beta", map[string]any{"owner_org": providerOrg}, 200, nil},
		{"ok/prefix-same-owner-again", A, "PUT", "/prefixes/acme", map[string]any{"owner_org": providerOrg}, 200, nil},
		{"fail/prefix-name", A, "PUT", "/prefixes/Bad_Prefix", map[string]any{"owner_org": providerOrg}, 400, []string{"prefix"}},
		{"fail/prefix-org", A, "PUT", "/prefixes/gamma", map[string]any{"owner_org": "123456789"}, 400, []string{"owner_org"}},
		{"fail/prefix-both", A, "PUT", "/prefixes/BAD", map[string]any{"owner_org": "1"}, 400, []string{"prefix", "owner_org"}},
		{"fail/prefix-unknown-field", A, "PUT", "/prefixes/gamma", map[string]any{"owner": providerOrg}, 400, []string{"owner"}},
		{"fail/prefix-not-json", A, "PUT", "/prefixes/gamma", "{", 400, []string{"body"}},
		{"fail/prefix-builtin", A, "PUT", "/prefixes/portvakt", map[string]any{"owner_org": providerOrg}, 409, nil},
		{"fail/prefix-with-scopes-to-other", A, "PUT", "/prefixes/acme", map[string]any{"owner_org": otherOrg}, 409, nil},

		// scopes
		{"ok/scope-minimal", P, "POST", "/scopes", map[string]any{"prefix": "acme", "subscope": "v1/orders.read", "description": "d"}, 201, nil},
		{"ok/scope-full", P, "POST", "/scopes", map[string]any{
			"prefix": "acme", "subscope": "full", "description": "d", "long_description": "l", "accessible_for_all": true,
			"allowed_integration_types": []string{"maskinporten"}, "at_max_age": 7200, "visibility": "PRIVATE",
			"requires_audience": true, "audiences": []string{"https://api.acme.example/"},
		}, 201, nil},
		{"fail/scope-exists", P, "POST", "/scopes", map[string]any{"prefix": "acme", "subscope": "api", "description": "d"}, 409, nil},
		{"fail/scope-fields", P, "POST", "/scopes", map[string]any{
			"prefix": "acme", "subscope": "bad subscope", "at_max_age": 7201, "visibility": "SECRET",
			"delegation_source": "https://other.example/", "allowed_integration_types": []string{"krr"}, "audiences": []string{"not-a-uri"},
		}, 400, []string{"subscope", "description", "delegation_source", "allowed_integration_types[0]", "at_max_age", "visibility", "audiences[0]"}},
		{"fail/scope-too-long", P, "POST", "/scopes", map[string]any{"prefix": "acme", "subscope": long, "description": "d"}, 400, []string{"subscope"}},
		{"fail/scope-name-mismatch", P, "POST", "/scopes", map[string]any{"name": "acme:x", "prefix": "acme", "subscope": "y", "description": "d"}, 400, []string{"name"}},
		{"fail/scope-negative-age", P, "POST", "/scopes", map[string]any{"prefix": "acme", "subscope": "y", "description": "d", "at_max_age": -1}, 400, []string{"at_max_age"}},
		{"fail/scope-type", P, "POST", "/scopes", map[string]any{"prefix": "acme", "subscope": "y", "description": "d", "at_max_age": "60"}, 400, []string{"at_max_age"}},
		{"fail/scope-not-my-prefix", P, "POST", "/scopes", map[string]any{"prefix": "other", "subscope": "y", "description": "d"}, 403, nil},
		{"fail/scope-unassigned-prefix", P, "POST", "/scopes", map[string]any{"prefix": "nobody", "subscope": "y", "description": "d"}, 403, nil},
		{"ok/scope-update", P, "PUT", "/scopes?scope=acme:api", map[string]any{"description": "new", "delegation_source": w.issuer, "at_max_age": 60}, 200, nil},
		{"fail/scope-update-immutable", P, "PUT", "/scopes?scope=acme:api", map[string]any{"name": "acme:x", "prefix": "beta", "subscope": "x", "owner_orgno": otherOrg, "description": "d"}, 400,
			[]string{"name", "prefix", "subscope", "owner_orgno"}},
		{"fail/scope-update-no-description", P, "PUT", "/scopes?scope=acme:api", map[string]any{}, 400, []string{"description"}},
		{"fail/scope-update-no-param", P, "PUT", "/scopes", map[string]any{"description": "d"}, 400, []string{"scope"}},
		{"fail/scope-get-twice", P, "GET", "/scopes?scope=a:b&scope=c:d", nil, 400, []string{"scope"}},
		{"fail/scope-list-inactive", P, "GET", "/scopes?inactive=maybe", nil, 400, []string{"inactive"}},
		{"fail/scope-update-builtin", w.certToken(platformClient, platformOrg, "", "portvakt:scopes.write"), "PUT", "/scopes?scope=portvakt:audit.read", map[string]any{"description": "d"}, 409, nil},
		{"ok/scope-delete", P, "DELETE", "/scopes?scope=acme:v1/orders.read", nil, 204, nil},
		{"fail/scope-recreate-deleted", P, "POST", "/scopes", map[string]any{"prefix": "acme", "subscope": "v1/orders.read", "description": "d"}, 409, nil},

		// access
		{"ok/access-grant", P, "PUT", "/scopes/access/" + otherOrg + "?scope=acme:api", nil, 200, nil},
		{"ok/access-grant-again", P, "PUT", "/scopes/access/" + otherOrg + "?scope=acme:api", nil, 200, nil},
		{"fail/access-org", P, "PUT", "/scopes/access/123?scope=acme:api", nil, 400, []string{"org"}},
		{"fail/access-org-and-scope", P, "PUT", "/scopes/access/123", nil, 400, []string{"org", "scope"}},
		{"fail/access-revoke-none", P, "DELETE", "/scopes/access/" + vendorOrg + "?scope=acme:api", nil, 404, nil},
		{"ok/access-revoke", P, "DELETE", "/scopes/access/" + otherOrg + "?scope=acme:api", nil, 204, nil},
		// Without ?scope= the list spans all the provider's scopes (the inbox
		// with ?state=REQUESTED).
		{"ok/access-list-all-scopes", P, "GET", "/scopes/access", nil, 200, nil},
		{"fail/access-list-empty-scope", P, "GET", "/scopes/access?scope=", nil, 400, []string{"scope"}},
		{"fail/access-list-state", P, "GET", "/scopes/access?state=MAYBE", nil, 400, []string{"state"}},
		{"fail/access-reason-control-char", P, "PUT", "/scopes/access/" + otherOrg + "?scope=acme:api", map[string]any{"reason": "a\u0007b"}, 400, []string{"reason"}},

		// clients
		{"ok/client", C, "POST", "/clients", map[string]any{"description": "d", "scopes": []string{"acme:api", "portvakt:audit.read"}, "access_token_lifetime": 60}, 201, nil},
		{"fail/client-fields", C, "POST", "/clients", map[string]any{
			"client_id": "x", "client_orgno": otherOrg, "integration_type": "idporten", "token_endpoint_auth_method": "client_secret_basic",
			"access_token_lifetime": 9000, "scopes": []string{"acme:full", "nope:none", "acme:api", "acme:api"},
		}, 400, []string{"client_id", "client_orgno", "integration_type", "token_endpoint_auth_method", "description", "access_token_lifetime", "scopes[1]", "scopes[3]"}},
		{"fail/client-no-access", w.other, "POST", "/clients", map[string]any{"description": "d", "scopes": []string{"acme:api"}}, 400, []string{"scopes[0]"}},
		{"fail/client-bad-org", A, "POST", "/clients", map[string]any{"client_orgno": "12345", "description": "d"}, 400, []string{"client_orgno"}},
		{"ok/client-update", C, "PUT", cl, map[string]any{"client_name": "renamed", "description": "d2", "scopes": []string{"acme:api"}}, 200, nil},
		{"fail/client-update-immutable", C, "PUT", cl, map[string]any{"client_id": "x", "client_orgno": otherOrg, "integration_type": "x", "description": "d"}, 400,
			[]string{"client_id", "client_orgno", "integration_type"}},
		{"fail/client-update-scope", C, "PUT", cl, map[string]any{"description": "d", "scopes": []string{"other:none"}}, 400, []string{"scopes[0]"}},

		// keys
		{"ok/jwks-rsa-ec", C, "POST", cl + "/jwks", map[string]any{"keys": []any{rsa2048, ec256, ec384}}, 200, nil},
		{"ok/jwks-empty", C, "POST", cl + "/jwks", map[string]any{"keys": []any{}}, 200, nil},
		{"fail/jwks-missing", C, "POST", cl + "/jwks", map[string]any{}, 400, []string{"keys"}},
		{"fail/jwks-too-many", C, "POST", cl + "/jwks", map[string]any{"keys": six}, 400, []string{"keys"}},
		{"fail/jwks-bad-keys", C, "POST", cl + "/jwks", map[string]any{"keys": []any{rsa1024, ecPriv, encKey, badAlg, map[string]any{"kty": "oct", "k": "AAAA", "kid": "h"}}}, 400,
			[]string{"keys[0].n", "keys[1].d", "keys[2].use", "keys[3].alg", "keys[4].k"}},
		{"fail/jwks-bad-keys-2", C, "POST", cl + "/jwks", map[string]any{"keys": []any{ec256, dup, "str"}}, 400, []string{"keys[1].kid", "keys[2]"}},
		{"fail/jwks-no-kid", C, "POST", cl + "/jwks", map[string]any{"keys": []any{ecJWKNoKid(t)}}, 400, []string{"keys[0].kid"}},

		// delegations
		{"ok/delegation", C, "PUT", "/delegations/" + otherOrg + "?scope=acme:api", nil, 200, nil},
		{"ok/delegation-admin-scope", C, "PUT", "/delegations/" + otherOrg + "?scope=portvakt:clients.read", nil, 200, nil},
		{"fail/delegation-self", C, "PUT", "/delegations/" + consumerOrg + "?scope=acme:api", nil, 400, []string{"supplier_org"}},
		{"fail/delegation-bad-org", C, "PUT", "/delegations/12?scope=acme:api", nil, 400, []string{"supplier_org"}},
		{"fail/delegation-no-access", w.vendor, "PUT", "/delegations/" + otherOrg + "?scope=acme:api", nil, 400, []string{"scope"}},
		{"fail/delegation-not-delegable", C, "PUT", "/delegations/" + otherOrg + "?scope=acme:full", nil, 400, []string{"scope"}},
		{"fail/delegation-unknown-scope", C, "PUT", "/delegations/" + otherOrg + "?scope=nope:x", nil, 400, []string{"scope"}},
		{"fail/delegation-no-scope", C, "PUT", "/delegations/" + otherOrg, nil, 400, []string{"scope"}},
		{"fail/delegation-revoke-none", C, "DELETE", "/delegations/" + providerOrg + "?scope=acme:api", nil, 404, nil},
		{"ok/delegation-revoke", C, "DELETE", "/delegations/" + otherOrg + "?scope=acme:api", nil, 204, nil},

		// audit
		{"ok/audit-filters", C, "GET", "/audit?action=client.create&from=2020-01-01T00:00:00Z&limit=500", nil, 200, nil},
		{"fail/audit-params", C, "GET", "/audit?limit=0&cursor=x&from=yesterday&to=2020", nil, 400, []string{"limit", "cursor", "from", "to"}},

		// routing
		{"fail/unknown-path", C, "GET", "/nothing", nil, 404, nil},
		{"fail/method", C, "PATCH", "/clients", nil, 405, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rep, refused := w.inputCase(t, c.name, c.tok, c.method, c.path, c.body, c.status)
			if !refused {
				return
			}
			p := problemOf(t, rep)
			if p.Status != c.status || p.Detail == "" || p.Type == "" || p.Title == "" {
				t.Errorf("problem %+v", p)
			}
			if c.fields != nil {
				var got []string
				for _, fe := range p.Errors {
					got = append(got, fe.Field)
				}
				if !slices.Equal(got, c.fields) {
					t.Errorf("fields %q, want %q (%s)", got, c.fields, rep.body)
				}
				if p.Type != selfservice.TypeValidation {
					t.Errorf("type %s", p.Type)
				}
			}
		})
	}
}
