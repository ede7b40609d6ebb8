package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portvakt/portvakt/internal/config"
	"github.com/portvakt/portvakt/internal/testpki"
)

// TestTrustPolicyListsEveryBadFile: a start-up with broken trust files names
// every one of them (roots, intermediates, CRL files) in one error.
func TestTrustPolicyListsEveryBadFile(t *testing.T) {
	pki, err := testpki.New("Trust Test")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key, err := testpki.KeyPEM(pki.Root.Key)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"root.pem":         testpki.CertPEM(pki.Root.Cert),
		"intermediate.pem": testpki.CertPEM(pki.Intermediate.Cert),
		"key-as-root.pem":  key,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name    string
		trust   config.Trust
		wantErr []string
	}{
		{name: "ok/root-and-intermediate", trust: config.Trust{Roots: []string{"root.pem"}, Intermediates: []string{"intermediate.pem"}}},
		{name: "fail/every-bad-file", trust: config.Trust{
			Roots:         []string{"root.pem", "missing-root.pem", "key-as-root.pem"},
			Intermediates: []string{"missing-intermediate.pem"},
			Revocation:    config.Revocation{Enabled: true, CRLFiles: []string{"missing.crl"}},
		}, wantErr: []string{"missing-root.pem", "key-as-root.pem: PEM block 1", "missing-intermediate.pem", "missing.crl"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := trustPolicy(&config.Config{Dir: dir, Trust: tc.trust}, nil)
			if len(tc.wantErr) == 0 {
				if err != nil || v == nil {
					t.Fatalf("verifier %v, error %v", v, err)
				}
				return
			}
			if err == nil {
				t.Fatal("bad trust files accepted")
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not name %q:\n%v", want, err)
				}
			}
		})
	}
}
