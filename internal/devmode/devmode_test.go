package devmode_test

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/portvakt/portvakt/internal/devmode"
	"github.com/portvakt/portvakt/internal/entcert"
)

type publicKeyer interface{ Equal(crypto.PublicKey) bool }

func readKey(t *testing.T, path string) crypto.Signer {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("%s: no PKCS#8 PEM key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(crypto.Signer)
}

// TestPrepare: the files configs/dev.yaml and the printed commands point at
// exist, private ones are private, every demo org's certificate verifies
// under the dev trust anchors with its org number, and a second start keeps
// the PKI.
func TestPrepare(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	dir := t.TempDir()
	if err := devmode.PrepareAt(dir, now); err != nil {
		t.Fatal(err)
	}
	pki := filepath.Join(dir, "pki")
	roots, err := entcert.ReadCertificateFile(filepath.Join(pki, "root.pem"))
	if err != nil {
		t.Fatal(err)
	}
	inters, err := entcert.ReadCertificateFile(filepath.Join(pki, "intermediate.pem"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := entcert.NewVerifier(entcert.Policy{Roots: roots, Intermediates: inters, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range devmode.Identities {
		t.Run("ok/"+id.Dir, func(t *testing.T) {
			d := filepath.Join(pki, id.Dir)
			for _, f := range []string{"cert.pem", "chain.pem", "key.pem", "cert.p12"} {
				fi, err := os.Stat(filepath.Join(d, f))
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != 0o600 {
					t.Errorf("%s: mode %v, want 0600", f, fi.Mode().Perm())
				}
			}
			chain, err := entcert.ReadCertificateFile(filepath.Join(d, "chain.pem"))
			if err != nil {
				t.Fatal(err)
			}
			ders := make([][]byte, len(chain))
			for i, c := range chain {
				ders[i] = c.Raw
			}
			got, err := v.Verify(t.Context(), ders)
			if err != nil {
				t.Fatal(err)
			}
			if got.Org != id.Org || got.SEID != int(id.Style) {
				t.Fatalf("org %s SEID %d, want %s %v", got.Org, got.SEID, id.Org, id.Style)
			}
			if cert, err := entcert.ReadCertificateFile(filepath.Join(d, "cert.pem")); err != nil || len(cert) != 1 || !cert[0].Equal(chain[0]) {
				t.Fatalf("cert.pem is not the chain's leaf (%v)", err)
			}
			key := readKey(t, filepath.Join(d, "key.pem"))
			if !key.Public().(publicKeyer).Equal(chain[0].PublicKey) {
				t.Fatal("key.pem does not belong to the certificate")
			}
			p12, err := os.ReadFile(filepath.Join(d, "cert.p12"))
			if err != nil {
				t.Fatal(err)
			}
			_, p12Cert, cas, err := pkcs12.DecodeChain(p12, devmode.P12Password)
			if err != nil || !p12Cert.Equal(chain[0]) || len(cas) != 1 || !cas[0].Equal(inters[0]) {
				t.Fatalf("cert.p12 does not hold the leaf and the issuing CA (%v)", err)
			}
		})
	}
	t.Run("ok/kid-client", func(t *testing.T) {
		key := readKey(t, filepath.Join(pki, "kid-client.key.pem"))
		b, err := os.ReadFile(filepath.Join(pki, "kid-client.jwks.json"))
		if err != nil {
			t.Fatal(err)
		}
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(b, &set); err != nil {
			t.Fatal(err)
		}
		ks := set.Key(devmode.KID)
		if len(ks) != 1 || ks[0].Algorithm != "RS256" || !key.Public().(publicKeyer).Equal(ks[0].Key) || !ks[0].IsPublic() {
			t.Fatalf("kid-client.jwks.json does not publish the kid client's public key as %s", devmode.KID)
		}
	})
	t.Run("ok/second-start-keeps-the-pki", func(t *testing.T) {
		before, err := os.ReadFile(filepath.Join(pki, "root.pem"))
		if err != nil {
			t.Fatal(err)
		}
		if err := devmode.PrepareAt(dir, now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		after, err := os.ReadFile(filepath.Join(pki, "root.pem"))
		if err != nil || !bytes.Equal(before, after) {
			t.Fatalf("the root changed on a second start (%v)", err)
		}
	})
}

// TestCommandsNamePreparedFiles: every file a printed command names exists.
func TestCommandsNamePreparedFiles(t *testing.T) {
	dir := t.TempDir()
	if err := devmode.PrepareAt(dir, time.Now()); err != nil {
		t.Fatal(err)
	}
	out := devmode.Commands("portvakt", "http://127.0.0.1:8080/", dir)
	var n int
	for _, f := range strings.Fields(out) {
		f = strings.TrimRight(f, "):")
		if !strings.HasPrefix(f, dir) {
			continue
		}
		if fi, err := os.Stat(f); err != nil || fi.IsDir() != (filepath.Base(f) == "pki") {
			t.Errorf("printed path %s: %v", f, err)
		}
		n++
	}
	if n < 5 {
		t.Fatalf("%d paths printed, want at least 5:\n%s", n, out)
	}
}
