package config

import (
	"strings"
	"testing"
)

func TestTLSConfig(t *testing.T) {
	t.Run("ok/defaults", func(t *testing.T) {
		c, err := Parse(nil, "", true)
		if err != nil {
			t.Fatal(err)
		}
		if c.TLS.ClientAuth != "none" || c.TLS.Served() || c.TLS.CertificatesSeen() {
			t.Fatalf("defaults %+v", c.TLS)
		}
	})
	t.Run("ok/file-and-environment", func(t *testing.T) {
		t.Setenv("PORTVAKT_TLS_PROXY_TRUSTED", "10.0.0.0/8,192.0.2.1")
		c, err := Parse([]byte("platform: {org: \"310000019\"}\ntrust: {roots: [root.pem]}\ntls:\n  cert_file: c.pem\n  key_file: k.pem\n  client_auth: request\n  proxy: {header: X-SSL-Client-Cert}\n"), "", true)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if !c.TLS.Served() || !c.TLS.CertificatesSeen() || len(c.TLS.Proxy.Trusted) != 2 || c.TLS.Proxy.Trusted[1] != "192.0.2.1" {
			t.Fatalf("parsed %+v", c.TLS)
		}
	})
	t.Run("ok/proxy-mode-alone-sees-certificates", func(t *testing.T) {
		c, err := Parse([]byte("platform: {org: \"310000019\"}\ntls:\n  proxy: {header: X-SSL-Client-Cert, trusted: [127.0.0.1]}\n"), "", true)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err != nil || c.TLS.Served() || !c.TLS.CertificatesSeen() {
			t.Fatalf("Validate() = %v, %+v", err, c.TLS)
		}
	})
	for _, tc := range []struct {
		name, yaml, key string
	}{
		{"fail/cert-without-key", "tls: {cert_file: c.pem}\n", "tls.key_file"},
		{"fail/client-auth-value", "tls: {cert_file: c.pem, key_file: k.pem, client_auth: optional}\n", "tls.client_auth"},
		{"fail/client-auth-without-tls", "trust: {roots: [r.pem]}\ntls: {client_auth: require}\n", "tls.client_auth"},
		{"fail/client-auth-without-cas", "tls: {cert_file: c.pem, key_file: k.pem, client_auth: request}\n", "tls.client_ca_files"},
		{"fail/header-without-trusted", "tls: {proxy: {header: X-SSL-Client-Cert}}\n", "tls.proxy.trusted"},
		{"fail/trusted-without-header", "tls: {proxy: {trusted: [127.0.0.1]}}\n", "tls.proxy.header"},
		{"fail/trusted-not-an-address", "tls: {proxy: {header: X-SSL-Client-Cert, trusted: [proxy.example]}}\n", "tls.proxy.trusted[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) { wantProblem(t, tc.yaml, tc.key) })
	}
	t.Run("fail/missing-files-listed", func(t *testing.T) {
		c, err := Parse([]byte("trust: {roots: [r.pem]}\ntls: {cert_file: /nonexistent/c.pem, key_file: /nonexistent/k.pem, client_ca_files: [/nonexistent/ca.pem]}\n"), "", true)
		if err != nil {
			t.Fatal(err)
		}
		err = c.Check()
		for _, key := range []string{"tls.cert_file", "tls.key_file", "tls.client_ca_files[0]"} {
			if err == nil || !strings.Contains(err.Error(), key) {
				t.Errorf("Check() = %v, want a problem with %s", err, key)
			}
		}
	})
}
