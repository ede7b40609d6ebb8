package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portvakt/portvakt/internal/config"
	"github.com/portvakt/portvakt/internal/devmode"
	"github.com/portvakt/portvakt/internal/testserver"
	"github.com/portvakt/portvakt/pkg/client"
	"github.com/portvakt/portvakt/pkg/dpop"
)

// TestAdminTokenBinding: `admin scopes create|update --token-binding` and
// `admin clients create|update --require-dpop` set the policy, the tables
// show it, an update keeps what its flags do not name, and a token without
// the binding is refused.
func TestAdminTokenBinding(t *testing.T) {
	e := startServer(t)
	platform, provider, consumer := org(1), org(2), org(3)
	admin := e.certCreds(platform, cliPlatformClient)
	e.mustCLI(with(admin, "admin", "prefixes", "set", "acme", provider)...)
	provID := e.clientID(e.mustCLI(with(admin, "admin", "clients", "create", "--json", "--org", provider, "--name", "acme-admin",
		"--description", "ACME self-service", "--scope", "portvakt:scopes.read,portvakt:scopes.write")...))
	consID := e.clientID(e.mustCLI(with(admin, "admin", "clients", "create", "--json", "--org", consumer, "--name", "consumer-admin",
		"--description", "consumer self-service", "--scope", "portvakt:clients.read,portvakt:clients.write")...))
	prov, cons := e.certCreds(provider, provID), e.certCreds(consumer, consID)

	field := func(out, name string) any {
		t.Helper()
		var m map[string]any
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("%v: %q", err, out)
		}
		return m[name]
	}
	t.Run("ok/binding/scopes-create-token-binding", func(t *testing.T) {
		out := e.mustCLI(with(prov, "admin", "scopes", "create", "acme:pay", "--description", "Payments", "--token-binding", "dpop")...)
		wantLines(t, "scopes create", out, "BINDING", "dpop")
		if got := field(e.mustCLI(with(prov, "admin", "scopes", "create", "acme:plain", "--description", "d", "--json")...), "token_binding"); got != "none" {
			t.Fatalf("default token_binding %v, want none", got)
		}
	})
	t.Run("ok/binding/scopes-update-token-binding", func(t *testing.T) {
		if got := field(e.mustCLI(with(prov, "admin", "scopes", "update", "acme:pay", "--token-binding", "any", "--json")...), "token_binding"); got != "any" {
			t.Fatalf("token_binding %v, want any", got)
		}
		if got := field(e.mustCLI(with(prov, "admin", "scopes", "update", "acme:pay", "--description", "Payments v2", "--json")...), "token_binding"); got != "any" {
			t.Fatalf("an update without --token-binding changed it to %v", got)
		}
	})
	t.Run("fail/binding/scopes-create-token-binding-invalid", func(t *testing.T) {
		out, err := e.cli(with(prov, "admin", "scopes", "create", "acme:x", "--description", "d", "--token-binding", "tpm")...)
		if err == nil || !strings.Contains(err.Error(), "token_binding") {
			t.Fatalf("got %v %q, want a problem naming token_binding", err, out)
		}
	})
	e.mustCLI(with(prov, "admin", "access", "grant", "acme:pay", consumer)...)

	var payID string
	t.Run("ok/binding/clients-create-require-dpop", func(t *testing.T) {
		out := e.mustCLI(with(cons, "admin", "clients", "create", "--json", "--name", "pay", "--description", "pays", "--scope", "acme:pay", "--require-dpop")...)
		payID = e.clientID(out)
		if field(out, "require_dpop") != true {
			t.Fatalf("require_dpop not set: %s", out)
		}
		wantLines(t, "clients get", e.mustCLI(with(cons, "admin", "clients", "get", payID)...), "DPOP", "true")
	})
	t.Run("ok/binding/clients-update-keeps-and-lifts-require-dpop", func(t *testing.T) {
		if got := field(e.mustCLI(with(cons, "admin", "clients", "update", payID, "--name", "payments", "--json")...), "require_dpop"); got != true {
			t.Fatalf("an update without --require-dpop changed it to %v", got)
		}
		if got := field(e.mustCLI(with(cons, "admin", "clients", "update", payID, "--require-dpop=false", "--json")...), "require_dpop"); got != false {
			t.Fatalf("require_dpop %v after --require-dpop=false", got)
		}
	})
	t.Run("fail/binding/token-without-dpop-for-a-dpop-scope", func(t *testing.T) {
		out, err := e.cli(with(e.certCreds(consumer, payID), "token", "--scope", "acme:pay")...)
		if err == nil || !strings.Contains(err.Error()+out, "invalid_scope") || !strings.Contains(err.Error()+out, "token_binding: any") {
			t.Fatalf("got %v %q, want invalid_scope naming the binding", err, out)
		}
	})
	t.Run("ok/binding/token-with-dpop-key", func(t *testing.T) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "dpop.key")
		if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		dk, err := dpop.NewKey(k)
		if err != nil {
			t.Fatal(err)
		}
		out := e.mustCLI(with(e.certCreds(consumer, payID), "token", "--scope", "acme:pay", "--dpop-key", file, "--decode")...)
		for _, want := range []string{`"token_type": "DPoP"`, `"jkt": "` + dk.Thumbprint() + `"`} {
			if !strings.Contains(out, want) {
				t.Errorf("token --dpop-key: no %s in\n%s", want, out)
			}
		}
		if _, err := e.cli(with(e.certCreds(consumer, payID), "token", "--scope", "acme:pay", "--dpop-key", filepath.Join(t.TempDir(), "none"))...); err == nil || !strings.Contains(err.Error(), "--dpop-key") {
			t.Fatalf("a missing --dpop-key file: %v", err)
		}
	})
}

// A scope and a client declared in the config file carry the policy: the
// declared scope's token_binding and the declared client's require_dpop
// hold at the token endpoint of a real server process.
func TestDeclaredTokenBinding(t *testing.T) {
	s := testserver.Start(t, testserver.Options{Records: func(r *config.Records) {
		for i := range r.Scopes {
			if r.Scopes[i].Subscope == "write" {
				r.Scopes[i].TokenBinding = "dpop"
			}
		}
		for i := range r.Clients {
			if r.Clients[i].ClientID == devmode.ConsumerKIDClient {
				r.Clients[i].RequireDPoP = true
			}
		}
	}})
	consumer, kid := s.PKI.ConsumerCert, s.PKI.ConsumerKID
	fetch := func(c testserver.Client, withDPoP bool, scopes ...string) (*client.Response, error) {
		cfg := s.ClientConfig(c, scopes...)
		if withDPoP {
			cfg.DPoP = &client.DPoP{}
		}
		ts, err := client.NewTokenSource(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		return ts.Fetch(t.Context())
	}
	refused := func(t *testing.T, err error, code, desc string) {
		t.Helper()
		var ce *client.Error
		if !errors.As(err, &ce) || ce.StatusCode != 400 || ce.Code != code || !strings.Contains(ce.Description, desc) {
			t.Fatalf("got %v, want 400 %s with %q", err, code, desc)
		}
	}
	t.Run("fail/binding/declared-dpop-scope-without-proof", func(t *testing.T) {
		_, err := fetch(consumer, false, "demo:write")
		refused(t, err, "invalid_scope", "requires a DPoP-bound token (token_binding: dpop)")
	})
	t.Run("ok/binding/declared-dpop-scope-with-proof", func(t *testing.T) {
		resp, err := fetch(consumer, true, "demo:write")
		if err != nil || resp.TokenType != "DPoP" {
			t.Fatalf("%+v %v", resp, err)
		}
		_, claims, err := client.DecodeToken(resp.AccessToken)
		if cnf, _ := claims["cnf"].(map[string]any); err != nil || cnf["jkt"] == nil {
			t.Fatalf("cnf %v (%v)", claims["cnf"], err)
		}
	})
	t.Run("ok/binding/declared-none-scope-bearer", func(t *testing.T) {
		if resp, err := fetch(consumer, false, "demo:read"); err != nil || resp.TokenType != "Bearer" {
			t.Fatalf("%+v %v", resp, err)
		}
	})
	t.Run("fail/binding/declared-require-dpop-client-without-proof-is-invalid_request", func(t *testing.T) {
		_, err := fetch(kid, false, "demo:read")
		refused(t, err, "invalid_request", "require_dpop")
	})
	t.Run("ok/binding/declared-require-dpop-client-with-proof", func(t *testing.T) {
		if resp, err := fetch(kid, true, "demo:read"); err != nil || resp.TokenType != "DPoP" {
			t.Fatalf("%+v %v", resp, err)
		}
	})
}
