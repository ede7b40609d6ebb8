package main

import (
	"crypto"
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/config"
	"github.com/portvakt/portvakt/internal/testpki"
)

func TestCertificateParts(t *testing.T) {
	pki, err := testpki.New("Parts")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := pki.Intermediate.TLSServer(time.Now(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keyPEM, err := testpki.KeyPEM(sc.PrivateKey.(crypto.Signer))
	if err != nil {
		t.Fatal(err)
	}
	certFile := write("tls.pem", testpki.CertPEM(sc.Leaf))
	keyFile := write("tls-key.pem", keyPEM)
	root := write("root.pem", testpki.CertPEM(pki.Root.Cert))
	for _, tc := range []struct {
		name      string
		tls       config.TLS
		roots     []string
		served    bool
		clientReq tls.ClientAuthType
		proxy     bool
		err       string
	}{
		{"ok/plain", config.TLS{ClientAuth: "none"}, nil, false, tls.NoClientCert, false, ""},
		{"ok/proxy-mode", config.TLS{ClientAuth: "none", Proxy: config.TLSProxy{Header: "X-SSL-Client-Cert", Trusted: []string{"10.0.0.0/8"}}}, nil, false, tls.NoClientCert, true, ""},
		{"ok/request-with-trust-roots", config.TLS{CertFile: certFile, KeyFile: keyFile, ClientAuth: "request"}, []string{root}, true, tls.RequestClientCert, false, ""},
		{"ok/require-with-client-cas", config.TLS{CertFile: certFile, KeyFile: keyFile, ClientAuth: "require", ClientCAFiles: []string{root}}, nil, true, tls.RequireAnyClientCert, false, ""},
		{"fail/key-not-of-the-certificate", config.TLS{CertFile: certFile, KeyFile: root, ClientAuth: "none"}, nil, false, 0, false, "tls.cert_file"},
		{"fail/client-ca-file-missing", config.TLS{CertFile: certFile, KeyFile: keyFile, ClientAuth: "request", ClientCAFiles: []string{filepath.Join(dir, "nope.pem")}}, nil, false, 0, false, "client CAs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &config.Config{TLS: tc.tls, Trust: config.Trust{Roots: tc.roots}}
			tc2, src, err := certificateParts(cfg, time.Now)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("certificateParts error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (tc2 != nil) != tc.served || src.ProxyMode() != tc.proxy {
				t.Fatalf("served %v, proxy mode %v", tc2 != nil, src.ProxyMode())
			}
			if tc2 != nil && (tc2.ClientAuth != tc.clientReq || (tc.clientReq != tls.NoClientCert) != (tc2.VerifyConnection != nil)) {
				t.Fatalf("ClientAuth %v, VerifyConnection set %v", tc2.ClientAuth, tc2.VerifyConnection != nil)
			}
		})
	}
}
