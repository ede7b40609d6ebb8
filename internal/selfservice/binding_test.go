package selfservice_test

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/portvakt/portvakt/internal/manage"
	"github.com/portvakt/portvakt/internal/store"
	"github.com/portvakt/portvakt/pkg/client"
	"github.com/portvakt/portvakt/pkg/dpop"
)

// TestBindingPolicy: a provider sets a scope's token_binding and a consumer
// its client's require_dpop through the API, the token endpoint holds
// tokens to them at once, and the audit shows what a token was bound to.
func TestBindingPolicy(t *testing.T) { eachEngine(t, testBindingPolicy) }

func testBindingPolicy(t *testing.T, eng engine) {
	w := newWorld(t, eng)
	P, C := w.provider, w.consumer
	var sc store.Scope
	var cl store.Client

	// wantFields checks a refused write: 400 naming exactly fields, no audit.
	wantFields := func(t *testing.T, name, tok, method, path string, body any, fields ...string) {
		t.Helper()
		rep, _ := w.inputCase(t, name, tok, method, path, body, http.StatusBadRequest)
		var got []string
		for _, fe := range problemOf(t, rep).Errors {
			got = append(got, fe.Field)
		}
		if !slices.Equal(got, fields) {
			t.Fatalf("fields %q, want %q (%s)", got, fields, rep.body)
		}
	}

	t.Run("ok/binding/scope-create-with-token-binding", func(t *testing.T) {
		w.must(P, "POST", "/scopes", map[string]any{"prefix": "acme", "subscope": "pay", "description": "Payments", "token_binding": "dpop"}, http.StatusCreated, &sc)
		if sc.TokenBinding != "dpop" {
			t.Fatalf("created with token_binding %q", sc.TokenBinding)
		}
		w.must(P, "GET", "/scopes?scope=acme:pay", nil, http.StatusOK, &sc)
		if sc.TokenBinding != "dpop" {
			t.Fatalf("read back token_binding %q", sc.TokenBinding)
		}
		w.must(P, "PUT", "/scopes/access/"+consumerOrg+"?scope=acme:pay", nil, http.StatusOK, nil)
	})
	t.Run("ok/binding/scope-default-is-none", func(t *testing.T) {
		w.must(P, "POST", "/scopes", map[string]any{"prefix": "acme", "subscope": "plain", "description": "d"}, http.StatusCreated, &sc)
		if sc.TokenBinding != "none" {
			t.Fatalf("token_binding %q, want none", sc.TokenBinding)
		}
	})
	t.Run("fail/binding/scope-create-token-binding-invalid", func(t *testing.T) {
		wantFields(t, t.Name(), P, "POST", "/scopes", map[string]any{"prefix": "acme", "subscope": "x", "description": "d", "token_binding": "tpm"}, "token_binding")
	})
	t.Run("fail/binding/scope-update-token-binding-invalid", func(t *testing.T) {
		wantFields(t, t.Name(), P, "PUT", "/scopes?scope=acme:pay", map[string]any{"description": "Payments", "token_binding": "DPoP"}, "token_binding")
	})
	t.Run("fail/binding/scope-token-binding-not-a-string", func(t *testing.T) {
		wantFields(t, t.Name(), P, "PUT", "/scopes?scope=acme:pay", map[string]any{"description": "Payments", "token_binding": true}, "token_binding")
	})

	// A client that requires DPoP, with a registered key.
	key, jwk := ecJWK(t, "k1")
	signer, err := client.KeySigner(key, "k1")
	if err != nil {
		t.Fatal(err)
	}
	proofKey, err := dpop.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	fetch := func(withDPoP bool, scopes ...string) (*client.Response, error) {
		t.Helper()
		cfg := client.Config{Issuer: w.issuer, TokenURL: w.issuer + "token", ClientID: cl.ClientID, Signer: signer, Scopes: scopes}
		if withDPoP {
			cfg.DPoP = &client.DPoP{Key: proofKey}
		}
		ts, err := client.NewTokenSource(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		return ts.Fetch(t.Context())
	}
	wantRefused := func(t *testing.T, err error, code, desc string) {
		t.Helper()
		var ce *client.Error
		if !errors.As(err, &ce) || ce.StatusCode != 400 || ce.Code != code || !strings.Contains(ce.Description, desc) {
			t.Fatalf("got %v, want 400 %s with %q", err, code, desc)
		}
	}
	t.Run("ok/binding/client-create-require-dpop", func(t *testing.T) {
		w.must(C, "POST", "/clients", map[string]any{"description": "pays", "scopes": []string{"acme:pay", "acme:api"}, "require_dpop": true}, http.StatusCreated, &cl)
		if !cl.RequireDPoP {
			t.Fatal("created without require_dpop")
		}
		w.must(C, "POST", "/clients/"+cl.ClientID+"/jwks", map[string]any{"keys": []any{jwk}}, http.StatusOK, nil)
		w.must(C, "GET", "/clients/"+cl.ClientID, nil, http.StatusOK, &cl)
		if !cl.RequireDPoP {
			t.Fatal("read back without require_dpop")
		}
	})
	t.Run("fail/binding/client-require-dpop-not-a-bool", func(t *testing.T) {
		wantFields(t, t.Name(), C, "PUT", "/clients/"+cl.ClientID, map[string]any{"description": "pays", "scopes": []string{"acme:pay"}, "require_dpop": "yes"}, "require_dpop")
	})
	t.Run("fail/binding/require-dpop-client-without-proof-is-invalid_request", func(t *testing.T) {
		_, err := fetch(false, "acme:api")
		wantRefused(t, err, "invalid_request", "require_dpop")
	})
	t.Run("ok/binding/dpop-token-in-the-audit", func(t *testing.T) {
		resp, err := fetch(true, "acme:pay")
		if err != nil {
			t.Fatal(err)
		}
		jti, _ := tokenClaims(t, resp.AccessToken)["jti"].(string)
		// The consumer and the provider both see what the token was bound to.
		for _, tok := range []string{C, P} {
			var page manage.AuditPage
			w.must(tok, "GET", "/audit?action=token.issue&client_id="+cl.ClientID, nil, http.StatusOK, &page)
			i := slices.IndexFunc(page.Events, func(e manage.AuditEvent) bool { return e.Target == jti })
			if i < 0 || page.Events[i].Token == nil || page.Events[i].Token.CnfJKT != proofKey.Thumbprint() || page.Events[i].Token.CnfX5T != "" {
				t.Fatalf("audit events %+v lack token %s bound to %s", page.Events, jti, proofKey.Thumbprint())
			}
		}
	})
	t.Run("ok/binding/client-update-lifts-require-dpop", func(t *testing.T) {
		w.must(C, "PUT", "/clients/"+cl.ClientID, map[string]any{"description": "pays", "scopes": []string{"acme:pay", "acme:api"}, "require_dpop": false}, http.StatusOK, &cl)
		if cl.RequireDPoP {
			t.Fatal("require_dpop still set")
		}
		resp, err := fetch(false, "acme:api")
		if err != nil || resp.TokenType != "Bearer" {
			t.Fatalf("bearer token after require_dpop was lifted: %+v %v", resp, err)
		}
		// The scope still needs DPoP.
		_, err = fetch(false, "acme:pay")
		wantRefused(t, err, "invalid_scope", "token_binding: dpop")
	})
	t.Run("ok/binding/scope-update-token-binding", func(t *testing.T) {
		w.must(P, "PUT", "/scopes?scope=acme:pay", map[string]any{"description": "Payments", "token_binding": "any"}, http.StatusOK, &sc)
		if sc.TokenBinding != "any" {
			t.Fatalf("token_binding %q, want any", sc.TokenBinding)
		}
		_, err := fetch(false, "acme:pay")
		wantRefused(t, err, "invalid_scope", "token_binding: any")
		// PUT replaces the whole record: left out, the binding is none.
		w.must(P, "PUT", "/scopes?scope=acme:pay", map[string]any{"description": "Payments"}, http.StatusOK, &sc)
		if sc.TokenBinding != "none" {
			t.Fatalf("token_binding %q after a PUT without it, want none", sc.TokenBinding)
		}
		if _, err := fetch(false, "acme:pay"); err != nil {
			t.Fatalf("bearer token once the binding was lifted: %v", err)
		}
	})
}
