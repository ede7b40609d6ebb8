package server_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portvakt/portvakt/internal/server"
	"github.com/portvakt/portvakt/internal/testpki"
)

func TestTLSConfig(t *testing.T) {
	pki, err := testpki.New("Listener")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pki.Intermediate.TLSServer(pki.Now(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := pki.Leaf(testpki.LeafOptions{Org: "310000035"})
	if err != nil {
		t.Fatal(err)
	}
	cas := []*x509.Certificate{pki.Root.Cert}
	for _, tc := range []struct {
		name string
		cfg  server.TLS
		want string // "" = ok
	}{
		{"ok/none", server.TLS{Certificate: cert}, ""},
		{"ok/request", server.TLS{Certificate: cert, ClientAuth: server.ClientAuthRequest, ClientCAs: cas}, ""},
		{"fail/no-certificate", server.TLS{}, "without a certificate"},
		{"fail/unknown-mode", server.TLS{Certificate: cert, ClientAuth: "optional"}, "not none, request or require"},
		{"fail/request-without-cas", server.TLS{Certificate: cert, ClientAuth: server.ClientAuthRequest}, "without CAs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.cfg.Config()
			if tc.want == "" {
				if err != nil || c.MinVersion != tls.VersionTLS12 {
					t.Fatalf("Config() = %v, %v", c, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Config() error %v, want %q", err, tc.want)
			}
		})
	}

	// A real handshake: a chain longer than MaxClientChain is refused before
	// any of it is verified, an old TLS version is refused, the leaf alone
	// is completed by the configured intermediates.
	c, err := server.TLS{Certificate: cert, ClientAuth: server.ClientAuthRequest, ClientCAs: cas,
		ClientIntermediates: []*x509.Certificate{pki.Intermediate.Cert}}.Config()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.TLS = c
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	get := func(clientCert *tls.Certificate, maxVersion uint16) error {
		tr := srv.Client().Transport.(*http.Transport).Clone()
		defer tr.CloseIdleConnections()
		if clientCert != nil {
			tr.TLSClientConfig.Certificates = []tls.Certificate{*clientCert}
		}
		tr.TLSClientConfig.MaxVersion = maxVersion
		resp, err := (&http.Client{Transport: tr}).Get(srv.URL)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	alone := leaf.TLSClient()
	alone.Certificate = alone.Certificate[:1]
	long := leaf.TLSClient()
	for len(long.Certificate) <= server.MaxClientChain {
		long.Certificate = append(long.Certificate, pki.Intermediate.Cert.Raw)
	}
	for _, tc := range []struct {
		name       string
		cert       *tls.Certificate
		maxVersion uint16
		ok         bool
	}{
		{"ok/handshake/leaf-alone", &alone, 0, true},
		{"ok/handshake/no-certificate-in-request-mode", nil, 0, true},
		{"fail/handshake/chain-too-long", &long, 0, false},
		{"fail/handshake/tls-1.1", nil, tls.VersionTLS11, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := get(tc.cert, tc.maxVersion); (err == nil) != tc.ok {
				t.Fatalf("GET: %v, want ok = %v", err, tc.ok)
			}
		})
	}
}
