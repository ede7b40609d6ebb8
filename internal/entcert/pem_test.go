package entcert

import (
	"bytes"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portvakt/portvakt/internal/testpki"
)

func TestReadCertificateFile(t *testing.T) {
	pki, err := testpki.New("PEM Test")
	if err != nil {
		t.Fatal(err)
	}
	root := testpki.CertPEM(pki.Root.Cert)
	inter := testpki.CertPEM(pki.Intermediate.Cert)
	keyPEM, err := testpki.KeyPEM(pki.Root.Key)
	if err != nil {
		t.Fatal(err)
	}
	withHeaders := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: pki.Root.Cert.Raw})
	notDER := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not a certificate")})
	// A block whose base64 is damaged: pem.Decode would skip it silently
	// and return the next block.
	damaged := bytes.Replace(root, []byte("\n"), []byte("\n*"), 3)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	many := bytes.Repeat(inter, MaxTrustFileCertificates+1)

	cases := []struct {
		name      string
		data      []byte // nil: no file
		wantCerts int
		wantBlock int
		wantErr   string
	}{
		{name: "ok/one-root", data: root, wantCerts: 1},
		{name: "ok/bundle-with-comments", data: cat([]byte("# Portvakt roots\nsubject=CN = PEM Test Root CA\n"), root, []byte("\n# issuing\n"), inter), wantCerts: 2},
		{name: "ok/crlf", data: bytes.ReplaceAll(cat(root, inter), []byte("\n"), []byte("\r\n")), wantCerts: 2},
		{name: "ok/at-the-count-limit", data: bytes.Repeat(inter, MaxTrustFileCertificates), wantCerts: MaxTrustFileCertificates},
		{name: "fail/missing", data: nil, wantErr: "cannot be read: no such file"},
		{name: "fail/empty", data: []byte{}, wantErr: "holds no PEM certificate"},
		{name: "fail/der-not-pem", data: pki.Root.Cert.Raw, wantErr: "holds no PEM certificate"},
		{name: "fail/private-key", data: cat(root, keyPEM), wantBlock: 2, wantErr: `is a "PRIVATE KEY" block; a trust file holds only CERTIFICATE blocks`},
		{name: "fail/headers", data: withHeaders, wantBlock: 1, wantErr: "has PEM headers"},
		{name: "fail/not-der", data: cat(root, inter, notDER), wantBlock: 3, wantErr: "is not a valid X.509 certificate"},
		{name: "fail/unterminated", data: cat(root, inter[:len(inter)/2]), wantBlock: 2, wantErr: "is not valid PEM"},
		{name: "fail/damaged-before-good", data: cat(damaged, inter), wantBlock: 1, wantErr: "is not valid PEM"},
		{name: "fail/too-many", data: many, wantErr: "holds more than 500 PEM blocks"},
		{name: "fail/too-large", data: cat(root, bytes.Repeat([]byte("#"), MaxTrustFileBytes)), wantErr: "over the limit of 1048576"},
	}
	dir := t.TempDir()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, "/", "_")+".pem")
			if tc.data != nil {
				if err := os.WriteFile(path, tc.data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			certs, err := ReadCertificateFile(path)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if len(certs) != tc.wantCerts {
					t.Fatalf("%d certificates, want %d", len(certs), tc.wantCerts)
				}
				return
			}
			var te *TrustFileError
			if !errors.As(err, &te) {
				t.Fatalf("error %v (%T), want a *TrustFileError", err, err)
			}
			if certs != nil || te.File != path || te.Block != tc.wantBlock || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), path) {
				t.Fatalf("got %d certs, error %q (block %d), want block %d and %q naming the file", len(certs), err, te.Block, tc.wantBlock, tc.wantErr)
			}
			if strings.Contains(err.Error(), "MII") {
				t.Fatalf("the error quotes the file's contents: %q", err)
			}
		})
	}
}

// TestReadCertificateFilesListsEveryBadFile: an operator fixes every file in
// one go, not one per restart.
func TestReadCertificateFilesListsEveryBadFile(t *testing.T) {
	pki, err := testpki.New("PEM Test")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	good, bad, missing := filepath.Join(dir, "root.pem"), filepath.Join(dir, "bad.pem"), filepath.Join(dir, "missing.pem")
	if err := os.WriteFile(good, testpki.CertPEM(pki.Root.Cert, pki.Intermediate.Cert), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("nothing here"), 0o600); err != nil {
		t.Fatal(err)
	}
	certs, err := ReadCertificateFiles([]string{good, good})
	if err != nil || len(certs) != 4 {
		t.Fatalf("ok/two-files: %d certificates, %v", len(certs), err)
	}
	certs, err = ReadCertificateFiles([]string{missing, good, bad})
	if err == nil || certs != nil {
		t.Fatalf("fail/two-bad-files: %d certificates, no error", len(certs))
	}
	for _, want := range []string{missing, bad} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("fail/two-bad-files: error does not name %s:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), good) {
		t.Errorf("fail/two-bad-files: error names the good file:\n%v", err)
	}
}
