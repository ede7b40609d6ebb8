package devpki_test

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/portvakt/portvakt/internal/devpki"
	"github.com/portvakt/portvakt/internal/entcert"
)

// TestIssuedCertificatesVerify: what the dev mode issues is accepted by the
// token endpoint's own certificate verifier, at the clock it was made for,
// with the org number read from the place its style puts it.
func TestIssuedCertificatesVerify(t *testing.T) {
	now := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)
	pki, err := devpki.New("Devpki Test", now)
	if err != nil {
		t.Fatal(err)
	}
	v, err := entcert.NewVerifier(entcert.Policy{
		Roots: []*x509.Certificate{pki.Root.Cert}, Intermediates: []*x509.Certificate{pki.Issuing.Cert},
		Now: func() time.Time { return now }, CacheSize: -1, NegativeCacheSize: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		style    devpki.Style
		wantSEID int
	}{
		{"ok/seid1", devpki.SEID1, 1},
		{"ok/seid2", devpki.SEID2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const org = "310000035"
			cred, err := pki.Issue(devpki.Enterprise{Org: org, Name: "Demo Consumer AS", Style: tc.style}, now)
			if err != nil {
				t.Fatal(err)
			}
			chain := make([][]byte, len(cred.Chain))
			for i, c := range cred.Chain {
				chain[i] = c.Raw
			}
			id, err := v.Verify(t.Context(), chain)
			if err != nil {
				t.Fatal(err)
			}
			if id.Org != org || id.SEID != tc.wantSEID {
				t.Fatalf("org %s SEID %d, want %s SEID %d", id.Org, id.SEID, org, tc.wantSEID)
			}
			if got, want := cred.Cert.NotBefore, now.Add(-devpki.Backdate); !got.Equal(want) {
				t.Fatalf("NotBefore %s, want %s", got, want)
			}
			if got, want := cred.Cert.NotAfter, now.Add(devpki.LeafValidity); !got.Equal(want) {
				t.Fatalf("NotAfter %s, want %s", got, want)
			}
			// The same chain a year and a day later is refused: the clock
			// passed in is the one the certificates are made for.
			late, err := entcert.NewVerifier(entcert.Policy{Roots: []*x509.Certificate{pki.Root.Cert},
				Now: func() time.Time { return now.Add(devpki.LeafValidity + 24*time.Hour) }, CacheSize: -1, NegativeCacheSize: -1})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := late.Verify(t.Context(), chain); err == nil {
				t.Fatal("an expired dev certificate verified")
			}
		})
	}
}

func TestPKCS12RoundTrip(t *testing.T) {
	now := time.Now()
	pki, err := devpki.New("Devpki Test", now)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := pki.Issue(devpki.Enterprise{Org: "310000043", Name: "Demo Vendor AS", Style: devpki.SEID2}, now)
	if err != nil {
		t.Fatal(err)
	}
	p12, err := cred.PKCS12("portvakt-dev")
	if err != nil {
		t.Fatal(err)
	}
	key, cert, cas, err := pkcs12.DecodeChain(p12, "portvakt-dev")
	if err != nil {
		t.Fatal(err)
	}
	if !cert.Equal(cred.Cert) || len(cas) != 1 || !cas[0].Equal(pki.Issuing.Cert) || key == nil {
		t.Fatal("ok/round-trip: the .p12 does not hold the leaf, its key and the issuing CA")
	}
	if _, _, _, err := pkcs12.DecodeChain(p12, "wrong"); err == nil {
		t.Fatal("fail/wrong-password: decoded")
	}
}

func TestEnterpriseSubject(t *testing.T) {
	for _, tc := range []struct {
		name    string
		e       devpki.Enterprise
		wantErr string
	}{
		{name: "ok/seid1", e: devpki.Enterprise{Org: "310000035", Name: "A AS", Style: devpki.SEID1}},
		{name: "ok/seid2", e: devpki.Enterprise{Org: "310000035", Name: "A AS", Style: devpki.SEID2}},
		{name: "fail/no-org", e: devpki.Enterprise{Name: "A AS", Style: devpki.SEID2}, wantErr: "needs an org number"},
		{name: "fail/no-name", e: devpki.Enterprise{Org: "310000035", Style: devpki.SEID2}, wantErr: "needs an org number and a name"},
		{name: "fail/no-style", e: devpki.Enterprise{Org: "310000035", Name: "A AS"}, wantErr: "unknown certificate style"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := devpki.LeafTemplate(tc.e, time.Now())
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestSerialNumbers(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		s, err := devpki.SerialNumber()
		if err != nil {
			t.Fatal(err)
		}
		if s.Sign() <= 0 || s.BitLen() > 159 {
			t.Fatalf("serial %s is not a positive number of at most 20 octets", s)
		}
		if seen[s.String()] {
			t.Fatalf("serial %s twice", s)
		}
		seen[s.String()] = true
	}
}
