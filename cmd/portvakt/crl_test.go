package main

import (
	"crypto/elliptic"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/pgtest"
	"github.com/portvakt/portvakt/internal/testpki"
	"github.com/portvakt/portvakt/pkg/client"
)

// TestRevocationFromDistributionPoint is the server as configured, on
// both engines: trust.revocation on, enterprise certificates naming a
// loopback CRL distribution point, a good one served a token and a revoked
// one refused, one fetch for both, and the fetch and the CRL's freshness
// on /metrics.
func TestRevocationFromDistributionPoint(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			dsn := ""
			if engine == "postgres" {
				dsn = pgtest.FreshSchema(t, pgtest.DSN(t))
			}
			testRevocationFromDistributionPoint(t, dsn)
		})
	}
}

func testRevocationFromDistributionPoint(t *testing.T, pgDSN string) {
	pki, err := testpki.New("CRL Test")
	if err != nil {
		t.Fatal(err)
	}
	dp := testpki.NewCRLServer()
	t.Cleanup(dp.Close)
	consumer := org(3)
	leaf := func() *testpki.Leaf {
		k, err := testpki.ECKey(elliptic.P256())
		if err != nil {
			t.Fatal(err)
		}
		l, err := pki.Leaf(testpki.LeafOptions{Org: consumer, Key: k, CRLURLs: []string{dp.URL}})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	good, revoked := leaf(), leaf()
	now := time.Now()
	crl, err := pki.Intermediate.CRLOf(testpki.CRLSpec{ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(time.Hour),
		Revoked: []testpki.Revoked{{Serial: revoked.Cert.SerialNumber}}})
	if err != nil {
		t.Fatal(err)
	}
	dp.Serve(crl, "application/pkix-crl")

	dir := t.TempDir()
	for name, b := range map[string][]byte{
		"root.pem":         testpki.CertPEM(pki.Root.Cert),
		"intermediate.pem": testpki.CertPEM(pki.Intermediate.Cert),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pub, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ops, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + pub.Addr().String() + "/"
	const goodID, revokedID = "0c0c0c0c-0000-4000-8000-000000000001", "0c0c0c0c-0000-4000-8000-000000000002"
	yaml := fmt.Sprintf(`issuer: %s
listen: %s
ops: {listen: %s}
data_dir: %s
platform: {org: "%s"}
trust:
  roots: [root.pem]
  intermediates: [intermediate.pem]
  revocation: {enabled: true}
signing: {kek_file: kek.b64}
log: {level: error}
records:
  prefixes: [{prefix: demo, owner_org: "%s"}]
  scopes: [{prefix: demo, subscope: read, description: Read}]
  access: [{scope: "demo:read", consumer_orgno: "%s"}]
  clients:
    - {client_id: %s, client_orgno: "%s", client_name: good, description: good, scopes: ["demo:read"]}
    - {client_id: %s, client_orgno: "%s", client_name: revoked, description: revoked, scopes: ["demo:read"]}
`, issuer, pub.Addr(), ops.Addr(), filepath.Join(dir, "data"), org(1), org(2), consumer, goodID, consumer, revokedID, consumer)
	if pgDSN != "" {
		yaml += fmt.Sprintf("database: {driver: postgres, dsn: %q}\n", pgDSN)
	}
	if err := os.WriteFile(filepath.Join(dir, "kek.b64"), newKEK(t), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "portvakt.yaml"), []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := readConfig(t, filepath.Join(dir, "portvakt.yaml"))
	runApp(t, cfg, slog.New(slog.DiscardHandler), pub, ops)
	waitReady(t, "http://"+ops.Addr().String()+"/readyz")

	token := func(id string, l *testpki.Leaf) error {
		s, err := client.CertificateSigner(l.Key, l.Chain)
		if err != nil {
			t.Fatal(err)
		}
		ts, err := client.NewTokenSource(t.Context(), client.Config{Issuer: issuer, TokenURL: issuer + "token", ClientID: id, Signer: s, Scopes: []string{"demo:read"}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = ts.Fetch(t.Context())
		return err
	}
	if err := token(goodID, good); err != nil {
		t.Fatalf("good certificate: %v", err)
	}
	err = token(revokedID, revoked)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.StatusCode != http.StatusBadRequest || ce.Code != "invalid_grant" || !strings.Contains(ce.Description, "has been revoked") {
		t.Fatalf("revoked certificate: %v", err)
	}
	if n := dp.Hits(); n != 1 {
		t.Fatalf("%d CRL requests, want 1", n)
	}
	got := scrape(t, cfg)
	src := fmt.Sprintf("source=%q", dp.URL)
	if got[`portvakt_crl_fetches_total{outcome="ok",`+src+`}`] != 1 {
		t.Errorf("portvakt_crl_fetches_total{outcome=\"ok\",%s} = %v, want 1", src, got[`portvakt_crl_fetches_total{outcome="ok",`+src+`}`])
	}
	// The CRL was made an hour before its nextUpdate is due, seconds ago.
	if age := got[`portvakt_crl_since_this_update_seconds{`+src+`}`]; age < 3600 || age > 3600+120 {
		t.Errorf("portvakt_crl_since_this_update_seconds = %v, want an hour and the test's seconds", age)
	}
	if left := got[`portvakt_crl_until_next_update_seconds{`+src+`}`]; left <= 3600-120 || left > 3600 {
		t.Errorf("portvakt_crl_until_next_update_seconds = %v, want an hour less the test's seconds", left)
	}
}
