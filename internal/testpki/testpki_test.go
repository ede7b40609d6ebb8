package testpki

import (
	"crypto/x509"
	"encoding/asn1"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

func TestLeafVerifiesToRoot(t *testing.T) {
	p, err := New("Test")
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []Style{SEID1, SEID2, OrgInO} {
		l, err := p.Leaf(LeafOptions{Org: "974760673", Style: st})
		if err != nil {
			t.Fatal(err)
		}
		roots, inter := x509.NewCertPool(), x509.NewCertPool()
		roots.AddCert(p.Root.Cert)
		inter.AddCert(p.Intermediate.Cert)
		if _, err := l.Cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: time.Now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Fatalf("style %d: %v", st, err)
		}
		if len(l.X5C()) != 2 {
			t.Fatalf("x5c len %d", len(l.X5C()))
		}
	}
}

func TestNonCriticalKeyUsage(t *testing.T) {
	p, err := New("Test")
	if err != nil {
		t.Fatal(err)
	}
	l, err := p.Leaf(LeafOptions{Org: "974760673", NonCriticalKeyUsage: true})
	if err != nil {
		t.Fatal(err)
	}
	if l.Cert.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		t.Fatal("digitalSignature missing")
	}
	for _, e := range l.Cert.Extensions {
		if e.Id.String() == "2.5.29.15" && e.Critical {
			t.Fatal("keyUsage is critical")
		}
	}
}

func TestPKCS12RoundTrip(t *testing.T) {
	p, err := New("Test")
	if err != nil {
		t.Fatal(err)
	}
	l, err := p.Leaf(LeafOptions{Org: "974760673"})
	if err != nil {
		t.Fatal(err)
	}
	for name, enc := range map[string]func(string) ([]byte, error){"modern": l.PKCS12, "legacy": l.PKCS12Legacy} {
		der, err := enc("secret")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_, cert, cas, err := pkcs12.DecodeChain(der, "secret")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !cert.Equal(l.Cert) || len(cas) != 1 {
			t.Fatalf("%s: round trip mismatch", name)
		}
	}
}

func TestLeafPolicies(t *testing.T) {
	p, err := New("Test")
	if err != nil {
		t.Fatal(err)
	}
	want := asn1.ObjectIdentifier{2, 16, 578, 1, 26, 1, 3, 2}
	l, err := p.Leaf(LeafOptions{Org: "974760673", Policies: []asn1.ObjectIdentifier{want}})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Cert.PolicyIdentifiers) != 1 || !l.Cert.PolicyIdentifiers[0].Equal(want) {
		t.Fatalf("policies %v, want [%v]", l.Cert.PolicyIdentifiers, want)
	}
}
