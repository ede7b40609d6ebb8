package testpki

import (
	"bytes"
	"crypto/x509"
	"io"
	"math/big"
	"net/http"
	"testing"
	"time"
)

func TestCRLOfAndImpostor(t *testing.T) {
	p, err := New("Test")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	spec := CRLSpec{ThisUpdate: now, NextUpdate: now.Add(time.Hour), Revoked: []Revoked{{Serial: big.NewInt(9), Reason: 1}}}
	der, err := p.Intermediate.CRLOf(spec)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := crl.CheckSignatureFrom(p.Intermediate.Cert); err != nil {
		t.Fatal(err)
	}
	e := crl.RevokedCertificateEntries
	if !crl.ThisUpdate.Equal(now) || !crl.NextUpdate.Equal(spec.NextUpdate) || len(e) != 1 || e[0].SerialNumber.Int64() != 9 || e[0].ReasonCode != 1 {
		t.Fatalf("CRL %v..%v, entries %+v", crl.ThisUpdate, crl.NextUpdate, e)
	}
	imp, err := p.Intermediate.Impostor(now)
	if err != nil {
		t.Fatal(err)
	}
	fake, err := imp.CRLOf(spec)
	if err != nil {
		t.Fatal(err)
	}
	fcrl, err := x509.ParseRevocationList(fake)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fcrl.RawIssuer, p.Intermediate.Cert.RawSubject) {
		t.Fatal("the impostor's CRL does not name the intermediate")
	}
	if fcrl.CheckSignatureFrom(p.Intermediate.Cert) == nil {
		t.Fatal("the impostor's CRL verifies under the intermediate's key")
	}
}

func TestCRLServer(t *testing.T) {
	s := NewCRLServer()
	defer s.Close()
	get := func() (int, string, []byte) {
		t.Helper()
		resp, err := http.Get(s.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), b
	}
	if code, _, _ := get(); code != http.StatusNotFound {
		t.Fatalf("before Serve: %d", code)
	}
	s.Serve([]byte{0x30, 0}, "application/pkix-crl")
	if code, ct, b := get(); code != http.StatusOK || ct != "application/pkix-crl" || !bytes.Equal(b, []byte{0x30, 0}) {
		t.Fatalf("serving: %d %q %x", code, ct, b)
	}
	s.Down(true)
	if code, _, _ := get(); code != http.StatusServiceUnavailable {
		t.Fatalf("down: %d", code)
	}
	if s.Hits() != 3 {
		t.Fatalf("%d hits, want 3", s.Hits())
	}
}
