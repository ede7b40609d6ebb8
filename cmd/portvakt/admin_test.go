package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/portvakt/portvakt/internal/norid"
	"github.com/portvakt/portvakt/internal/testpki"
)

const cliPlatformClient = "0b0b0b0b-0000-4000-8000-0000000000aa"

// cliEnv is a running server built by build() from a config that declares
// only the platform admin org and its client.
type cliEnv struct {
	t      *testing.T
	dir    string
	issuer string
	pki    *testpki.PKI
}

func startServer(t *testing.T) *cliEnv {
	t.Helper()
	return startServerOn(t, "")
}

// startServerOn is startServer on the PostgreSQL database pgDSN names, or
// on SQLite in the test's directory when pgDSN is empty.
func startServerOn(t *testing.T, pgDSN string) *cliEnv {
	t.Helper()
	dir := t.TempDir()
	pki, err := testpki.New("CLI Test")
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("root.pem", testpki.CertPEM(pki.Root.Cert))
	write("intermediate.pem", testpki.CertPEM(pki.Intermediate.Cert))
	write("kek.b64", newKEK(t))
	pub, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ops, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + pub.Addr().String() + "/"
	yaml := fmt.Sprintf(`issuer: %s
listen: %s
ops: {listen: %s}
data_dir: %s
platform: {org: "%s"}
trust: {roots: [root.pem], intermediates: [intermediate.pem]}
signing: {kek_file: kek.b64}
log: {level: error}
records:
  clients:
    - client_id: %s
      client_orgno: "%s"
      client_name: platform-admin
      description: the platform admin
      scopes: [portvakt:admin, portvakt:clients.write, portvakt:clients.read, portvakt:audit.read]
`, issuer, pub.Addr(), ops.Addr(), filepath.Join(dir, "data"), org(1), cliPlatformClient, org(1))
	if pgDSN != "" {
		yaml += fmt.Sprintf("database: {driver: postgres, dsn: %q}\n", pgDSN)
	}
	write("portvakt.yaml", []byte(yaml))
	runApp(t, readConfig(t, filepath.Join(dir, "portvakt.yaml")), slog.New(slog.DiscardHandler), pub, ops)
	return &cliEnv{t: t, dir: dir, issuer: issuer, pki: pki}
}

// org is the n-th synthetic test org (valid under mod-11).
func org(n int) string {
	o, ok := norid.CompleteOrg(fmt.Sprintf("3100000%d", n))
	if !ok {
		panic(n)
	}
	return o
}

// certCreds writes org's enterprise certificate and key and returns the
// signing flags of a certificate client.
func (e *cliEnv) certCreds(o, clientID string) []string {
	e.t.Helper()
	l, err := e.pki.Leaf(testpki.LeafOptions{Org: o})
	if err != nil {
		e.t.Fatal(err)
	}
	kp, err := testpki.KeyPEM(l.Key)
	if err != nil {
		e.t.Fatal(err)
	}
	cert, key := filepath.Join(e.dir, o+".pem"), filepath.Join(e.dir, o+".key")
	if err := os.WriteFile(cert, testpki.CertPEM(l.Cert), 0o600); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(key, kp, 0o600); err != nil {
		e.t.Fatal(err)
	}
	return []string{"--issuer", e.issuer, "--client-id", clientID, "--cert", cert, "--key", key}
}

// cli runs `portvakt args...` and returns its output.
func (e *cliEnv) cli(args ...string) (string, error) {
	e.t.Helper()
	root := rootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(e.t.Context())
	return out.String(), err
}

func (e *cliEnv) mustCLI(args ...string) string {
	e.t.Helper()
	out, err := e.cli(args...)
	if err != nil {
		e.t.Fatalf("portvakt %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (e *cliEnv) clientID(out string) string {
	e.t.Helper()
	var c struct {
		ClientID string `json:"client_id"`
	}
	if err := json.Unmarshal([]byte(out), &c); err != nil || c.ClientID == "" {
		e.t.Fatalf("no client_id in %q: %v", out, err)
	}
	return c.ClientID
}

// TestAdminWalkthrough is the README walkthrough: a provider, a consumer
// and a vendor go from nothing to tokens with `portvakt admin` only.
func TestAdminWalkthrough(t *testing.T) {
	e := startServer(t)
	platform, provider, consumer, vendor := org(1), org(2), org(3), org(4)
	admin := e.certCreds(platform, cliPlatformClient)

	// The platform admin assigns a prefix and onboards three orgs.
	if out := e.mustCLI(with(admin, "admin", "prefixes", "set", "acme", provider)...); !strings.Contains(out, "acme") || !strings.Contains(out, "PREFIX") {
		t.Fatalf("prefixes set: %q", out)
	}
	provID := e.clientID(e.mustCLI(with(admin, "admin", "clients", "create", "--json", "--org", provider, "--name", "acme-admin",
		"--description", "ACME self-service", "--scope", "portvakt:scopes.read,portvakt:scopes.write,portvakt:audit.read,portvakt:webhooks.write")...))
	consID := e.clientID(e.mustCLI(with(admin, "admin", "clients", "create", "--json", "--org", consumer, "--name", "consumer-admin",
		"--description", "consumer self-service", "--scope", "portvakt:clients.read,portvakt:clients.write,portvakt:delegations.write,portvakt:scopes.read,portvakt:audit.read,portvakt:access.request")...))
	vendID := e.clientID(e.mustCLI(with(admin, "admin", "clients", "create", "--json", "--org", vendor, "--name", "vendor-admin",
		"--description", "vendor self-service", "--scope", "portvakt:clients.read,portvakt:clients.write,portvakt:scopes.read")...))
	prov, cons, vend := e.certCreds(provider, provID), e.certCreds(consumer, consID), e.certCreds(vendor, vendID)

	// The provider creates a delegable scope and grants the consumer.
	e.mustCLI(with(prov, "admin", "scopes", "create", "acme:api", "--description", "The ACME API", "--delegable")...)
	e.mustCLI(with(prov, "admin", "access", "grant", "acme:api", consumer)...)
	if out := e.mustCLI(with(prov, "admin", "scopes", "list")...); !strings.Contains(out, "acme:api") || !strings.Contains(out, "NAME") {
		t.Fatalf("scopes list: %q", out)
	}
	if out := e.mustCLI(with(prov, "admin", "access", "list", "acme:api")...); !strings.Contains(out, consumer) {
		t.Fatalf("access list: %q", out)
	}

	// The consumer makes a kid client, uploads its public key, gets a token.
	kidID := e.clientID(e.mustCLI(with(cons, "admin", "clients", "create", "--json", "--name", "acme-integration",
		"--description", "calls the ACME API", "--scope", "acme:api")...))
	keyFile := ecKeyFile(t, filepath.Join(e.dir, "integration.key"))
	if out := e.mustCLI(with(cons, "admin", "clients", "keys", "upload", kidID, keyFile, "--key-id", "key-1")...); !strings.Contains(out, "key-1") {
		t.Fatalf("keys upload: %q", out)
	}
	kidToken := []string{"token", "--issuer", e.issuer, "--client-id", kidID, "--key", keyFile, "--kid", "key-1", "--scope", "acme:api"}
	if out := e.mustCLI(kidToken...); !strings.Contains(out, "access_token") {
		t.Fatalf("consumer token: %q", out)
	}

	// The consumer delegates to the vendor; the vendor gets a delegated token.
	e.mustCLI(with(cons, "admin", "delegations", "create", "acme:api", vendor)...)
	vcID := e.clientID(e.mustCLI(with(vend, "admin", "clients", "create", "--json", "--name", "acme-for-customers",
		"--description", "vendor integration", "--scope", "acme:api")...))
	vendInt := slices.Clone(vend)
	vendInt[3] = vcID // the vendor's integration client, not its admin client
	vendorToken := with(vendInt, "token", "--scope", "acme:api", "--consumer-org", consumer, "--decode")
	if out := e.mustCLI(vendorToken...); !strings.Contains(out, "0192:"+consumer) || !strings.Contains(out, "0192:"+vendor) {
		t.Fatalf("vendor token: %q", out)
	}
	if out := e.mustCLI(with(vend, "admin", "delegations", "list")...); !strings.Contains(out, consumer) {
		t.Fatalf("vendor's delegations: %q", out)
	}

	// The provider removes access; the next token request is refused.
	wantLines(t, "access revoke", e.mustCLI(with(prov, "admin", "access", "revoke", "acme:api", consumer)...), "acme:api", consumer, "DENIED")
	if out, err := e.cli(kidToken...); err == nil || !strings.Contains(err.Error()+out, "invalid_scope") {
		t.Fatalf("token after revoke: %v %q", err, out)
	}

	// The provider registers a webhook for requests; the consumer asks for
	// the scope back, is denied with a reason, asks again, is approved,
	// and its client gets tokens again.
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusAccepted) }))
	defer receiver.Close()
	hookURL := receiver.URL + "/portvakt"
	out := e.mustCLI(with(prov, "admin", "webhooks", "create", "--url", hookURL, "--event", "access.requested,access.withdrawn")...)
	wantLines(t, "webhooks create", out, hookURL, "events: access.requested, access.withdrawn")
	wantLines(t, "webhooks list", e.mustCLI(with(prov, "admin", "webhooks", "list")...), hookURL)
	e.mustCLI(with(cons, "admin", "access", "request", "acme:api", "--reason", "We bill ACME's customers monthly")...)
	wantLines(t, "inbox", e.mustCLI(with(prov, "admin", "access", "inbox")...), consumer, "REQUESTED", "reason: We bill ACME's customers monthly")
	e.mustCLI(with(prov, "admin", "access", "deny", consumer, "--scope", "acme:api", "--reason", "Sign the data processing agreement first")...)
	wantLines(t, "mine", e.mustCLI(with(cons, "admin", "access", "mine", "--state", "DENIED")...), "DENIED", "reason: Sign the data processing agreement first")
	e.mustCLI(with(cons, "admin", "access", "request", "acme:api", "--reason", "Agreement signed on 1 December")...)
	e.mustCLI(with(prov, "admin", "access", "approve", consumer, "--scope", "acme:api")...)
	if out := e.mustCLI(kidToken...); !strings.Contains(out, "access_token") {
		t.Fatalf("consumer token after approval: %q", out)
	}

	// The audit trail, as the consumer sees it.
	out = e.mustCLI(with(cons, "admin", "audit")...)
	for _, want := range []string{"access.request", "access.revoke", "delegation.create", "client.keys.replace", "client.create", "access.grant"} {
		if !strings.Contains(out, want) {
			t.Errorf("audit lacks %s:\n%s", want, out)
		}
	}
	// Token events: the vendor's delegated token, as the consumer, the
	// vendor and the provider see it.
	var page struct {
		Events []struct {
			Action        string `json:"action"`
			ActorOrg      string `json:"actor_org"`
			ActorClientID string `json:"actor_client_id"`
			Token         struct {
				ConsumerOrgno string   `json:"consumer_orgno"`
				SupplierOrgno string   `json:"supplier_orgno"`
				Scopes        []string `json:"scopes"`
			} `json:"token"`
		} `json:"events"`
		NextCursor string `json:"next_cursor"`
	}
	for _, viewer := range [][]string{cons, prov} {
		out := e.mustCLI(with(viewer, "admin", "audit", "--json", "--action", "token.issue", "--scope", "acme:api", "--client", vcID)...)
		if err := json.Unmarshal([]byte(out), &page); err != nil {
			t.Fatal(err)
		}
		if len(page.Events) != 1 || page.Events[0].ActorOrg != vendor || page.Events[0].Token.ConsumerOrgno != consumer ||
			page.Events[0].Token.SupplierOrgno != vendor || !slices.Equal(page.Events[0].Token.Scopes, []string{"acme:api"}) {
			t.Errorf("delegated token in the audit: %s", out)
		}
	}
	out = e.mustCLI(with(cons, "admin", "audit", "--action", "token.issue", "--limit", "1", "--from", "2001-01-01T00:00:00Z", "--to", "2999-01-01T00:00:00Z")...)
	if !strings.Contains(out, "token.issue") || !strings.Contains(out, "scopes: ") || !strings.Contains(out, "more: --cursor ") {
		t.Errorf("audit --action token.issue --limit 1:\n%s", out)
	}
	cursor := out[strings.LastIndex(out, "--cursor ")+len("--cursor "):]
	if next := e.mustCLI(with(cons, "admin", "audit", "--limit", "1", "--action", "token.issue", "--cursor", strings.TrimSpace(cursor))...); !strings.Contains(next, "token.issue") {
		t.Errorf("audit next page:\n%s", next)
	}
	if _, err := e.cli(with(cons, "admin", "audit", "--from", "yesterday", "--scope", "nope")...); err == nil ||
		!strings.Contains(err.Error(), "from") || !strings.Contains(err.Error(), "scope") {
		t.Errorf("audit with bad filters: %v", err)
	}
	// Errors come back as the problem's detail, field by field.
	if out, err := e.cli(with(cons, "admin", "clients", "create", "--scope", "nope:none")...); err == nil ||
		!strings.Contains(err.Error(), "description: is required") || !strings.Contains(err.Error(), "scopes[0]") {
		t.Fatalf("bad client: %v %q", err, out)
	}
	// Another org sees nothing of it.
	if _, err := e.cli(with(vend, "admin", "clients", "get", kidID)...); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("vendor reads consumer's client: %v", err)
	}
	// Revoking the delegation prints the row as it was left; the vendor's
	// next token for the consumer is refused.
	wantLines(t, "delegations revoke", e.mustCLI(with(cons, "admin", "delegations", "revoke", "acme:api", vendor)...),
		"acme:api", vendor, "REVOKED")
	if out, err := e.cli(vendorToken...); err == nil || !strings.Contains(err.Error()+out, "invalid") {
		t.Fatalf("vendor token after the delegation was revoked: %v %q", err, out)
	}
}
