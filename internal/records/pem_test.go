package records_test

import (
	"crypto"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/testpki"
)

func TestPEMKey(t *testing.T) {
	pki, err := testpki.New("PEM test")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := pki.Leaf(testpki.LeafOptions{Org: "310000035"})
	if err != nil {
		t.Fatal(err)
	}
	ec, err := testpki.ECKey(elliptic.P256())
	if err != nil {
		t.Fatal(err)
	}
	pkix := func(pub crypto.PublicKey) []byte {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	keyPEM, err := testpki.KeyPEM(ec)
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := testpki.CertPEM(leaf.Cert)
	cases := []struct {
		name string
		in   []byte
		kid  string
		want crypto.PublicKey // nil: refused
		msg  string           // in the refusal
	}{
		{name: "ok/certificate", in: certPEM, kid: "cert-1", want: leaf.Cert.PublicKey},
		{name: "ok/certificate with text around it", in: append([]byte("Subject: Test Org\n"), certPEM...), kid: "cert-1", want: leaf.Cert.PublicKey},
		{name: "ok/PKIX public key", in: pkix(ec.Public()), kid: "ec-1", want: ec.Public()},
		{name: "ok/PKCS#1 RSA public key", in: pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(leaf.Cert.PublicKey.(*rsa.PublicKey))}), kid: "rsa-1", want: leaf.Cert.PublicKey},
		{name: "ok/no kid: the thumbprint", in: pkix(ec.Public()), want: ec.Public()},
		{name: "fail/private key", in: keyPEM, msg: "private key"},
		{name: "fail/certificate and private key", in: append(append([]byte{}, certPEM...), keyPEM...), msg: "private key"},
		{name: "fail/private key header without a valid block", in: []byte("-----BEGIN PRIVATE KEY-----\nnot base64\n"), msg: "private key"},
		{name: "fail/too large", in: append(certPEM, make([]byte, records.MaxPEM)...), msg: "64 KiB"},
		{name: "fail/a chain", in: testpki.CertPEM(leaf.Chain...), msg: "more than one PEM block"},
		{name: "fail/no block", in: []byte(`{"kty":"EC"}`), msg: "no PEM block"},
		{name: "fail/other block type", in: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte{1}}), msg: "CERTIFICATE REQUEST"},
		{name: "fail/broken certificate", in: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}}), msg: "cannot be read"},
		{name: "ok/Ed25519 key: read here, refused by the key check", in: pkix(edPub), kid: "ed", want: edPub},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			jwk, errs := records.PEMKey("pem", c.in, c.kid)
			if c.want == nil {
				if len(errs) != 1 || errs[0].Field != "pem" || !strings.Contains(errs[0].Detail, c.msg) || jwk != nil {
					t.Fatalf("got %s %v, want one problem of pem saying %q", jwk, errs, c.msg)
				}
				if strings.Contains(errs[0].Detail, "BEGIN") && strings.Contains(string(c.in), "PRIVATE") {
					t.Fatalf("the refusal echoes the upload: %s", errs[0].Detail)
				}
				return
			}
			if errs != nil {
				t.Fatalf("refused: %v", errs)
			}
			var k jose.JSONWebKey
			if err := k.UnmarshalJSON(jwk); err != nil {
				t.Fatal(err)
			}
			if !k.IsPublic() || k.Use != "sig" || !k.Key.(interface{ Equal(crypto.PublicKey) bool }).Equal(c.want) {
				t.Fatalf("JWK %s does not hold the public key", jwk)
			}
			if c.kid == "" {
				tp, err := k.Thumbprint(crypto.SHA256)
				if err != nil || k.KeyID != base64.RawURLEncoding.EncodeToString(tp) {
					t.Fatalf("kid %q is not the thumbprint", k.KeyID)
				}
			} else if k.KeyID != c.kid {
				t.Fatalf("kid %q, want %q", k.KeyID, c.kid)
			}
			_, verrs := records.ValidateClientKeys("keys", []json.RawMessage{jwk})
			if _, ed := c.want.(ed25519.PublicKey); ed != (len(verrs) > 0) {
				t.Fatalf("the key check says %v", verrs)
			}
		})
	}
}
