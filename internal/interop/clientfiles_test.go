package interop

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/portvakt/portvakt/internal/testpki"
	"github.com/portvakt/portvakt/internal/testserver"
	"github.com/portvakt/portvakt/pkg/client"
)

// TestClientConfigFiles runs pkg/client's documented three lines
// (ExampleConfig_Client) against the real server, with each kind of signing
// file a consumer has: a PEM chain and key, a .p12 with its password, and a
// registered key with its kid.
func TestClientConfigFiles(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	protected := api(t, s, "demo:read")
	dir := t.TempDir()
	must := func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	write := func(name string, b []byte) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cert, kid := s.PKI.ConsumerCert, s.PKI.ConsumerKID
	chain := write("chain.pem", testpki.CertPEM(cert.Leaf.Chain...))
	certKey := write("key.pem", must(testpki.KeyPEM(cert.Leaf.Key)))
	p12 := write("cert.p12", must(cert.Leaf.PKCS12("secret")))
	kidKey := write("kid.pem", must(testpki.KeyPEM(kid.Key)))

	for _, tc := range []struct {
		name string
		conf client.Config
	}{
		{"ok/pem-chain-and-key", client.Config{ClientID: cert.ID, CertFile: chain, KeyFile: certKey}},
		{"ok/p12-with-password", client.Config{ClientID: cert.ID, PKCS12File: p12, PKCS12Password: "secret"}},
		{"ok/key-with-kid", client.Config{ClientID: kid.ID, KeyFile: kidKey, KeyID: kid.KID}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf := tc.conf
			conf.Issuer, conf.Scopes = s.Issuer, []string{"demo:read"}
			status, _, a := get(t, conf.Client(t.Context()), protected.URL)
			if status != http.StatusOK || a.Consumer != testserver.ConsumerOrg {
				t.Fatalf("HTTP %d, %+v", status, a)
			}
		})
	}
	t.Run("fail/wrong-password", func(t *testing.T) {
		conf := client.Config{Issuer: s.Issuer, ClientID: cert.ID, Scopes: []string{"demo:read"}, PKCS12File: p12, PKCS12Password: "wrong"}
		if _, err := conf.Client(t.Context()).Get(protected.URL); err == nil {
			t.Fatal("a wrong password got through")
		}
	})
}
