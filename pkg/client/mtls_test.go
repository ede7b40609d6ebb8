package client

import (
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/portvakt/portvakt/internal/testpki"
)

// mtlsServer is a token endpoint and an API behind a TLS listener that
// requires a client certificate; it remembers the thumbprint each request
// came with.
type mtlsServer struct {
	srv *httptest.Server
	mu  sync.Mutex
	saw map[string]string // path -> x5t#S256 of the client certificate
}

func newMTLSServer(t *testing.T) *mtlsServer {
	t.Helper()
	s := &mtlsServer{saw: map[string]string{}}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sum := sha256.Sum256(r.TLS.PeerCertificates[0].Raw)
		s.mu.Lock()
		s.saw[r.URL.Path] = base64.RawURLEncoding.EncodeToString(sum[:])
		s.mu.Unlock()
		if r.URL.Path == "/token" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"access_token":"tok-1","token_type":"Bearer","expires_in":120}`)
			return
		}
		_, _ = io.WriteString(w, r.Header.Get("Authorization"))
	}))
	s.srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.srv.StartTLS()
	t.Cleanup(s.srv.Close)
	return s
}

func (s *mtlsServer) seen(path string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saw[path]
}

func TestMTLS(t *testing.T) {
	pki, err := testpki.New("MTLS CA")
	if err != nil {
		t.Fatal(err)
	}
	ent, err := pki.Leaf(testpki.LeafOptions{Org: "910000000"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.Leaf(testpki.LeafOptions{Org: "910000000", Name: "Other"})
	if err != nil {
		t.Fatal(err)
	}
	thumb := func(l *testpki.Leaf) string {
		sum := sha256.Sum256(l.Cert.Raw)
		return base64.RawURLEncoding.EncodeToString(sum[:])
	}
	entSigner, err := CertificateSigner(ent.Key, ent.Chain)
	if err != nil {
		t.Fatal(err)
	}
	kidKey, err := testpki.ECKey(elliptic.P256())
	if err != nil {
		t.Fatal(err)
	}
	kidSigner, err := KeySigner(kidKey, "k1")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	otherKey, err := testpki.KeyPEM(other.Key)
	if err != nil {
		t.Fatal(err)
	}
	otherCert := write(t, dir, "other.pem", testpki.CertPEM(other.Chain...))
	otherKeyFile := write(t, dir, "other-key.pem", otherKey)
	otherTLS := other.TLSClient()

	for _, tc := range []struct {
		name   string
		signer Signer
		mtls   *MTLS
		want   *testpki.Leaf
	}{
		{"ok/mtls/enterprise-certificate-reused", entSigner, &MTLS{}, ent},
		{"ok/mtls/pem-files", kidSigner, &MTLS{CertFile: otherCert, KeyFile: otherKeyFile}, other},
		{"ok/mtls/in-memory", entSigner, &MTLS{Certificate: &otherTLS}, other},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newMTLSServer(t)
			cfg := Config{Issuer: s.srv.URL + "/", TokenURL: s.srv.URL + "/token", ClientID: "c1", Scopes: []string{"acme:read"},
				Signer: tc.signer, HTTPClient: s.srv.Client(), MTLS: tc.mtls}
			ts, err := NewTokenSource(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := get(t, ts.HTTPClient(), s.srv.URL+"/api/a")
			if err != nil || got != "Bearer tok-1" {
				t.Fatalf("API call: %q, %v", got, err)
			}
			// The three-line path too.
			if got, err := get(t, cfg.Client(t.Context()), s.srv.URL+"/api/b"); err != nil || got != "Bearer tok-1" {
				t.Fatalf("Config.Client call: %q, %v", got, err)
			}
			for _, path := range []string{"/token", "/api/a", "/api/b"} {
				if s.seen(path) != thumb(tc.want) {
					t.Errorf("%s came with certificate %q, want %q", path, s.seen(path), thumb(tc.want))
				}
			}
		})
	}
	t.Run("fail/mtls/no-certificate-without-mtls", func(t *testing.T) {
		s := newMTLSServer(t)
		ts, err := NewTokenSource(t.Context(), Config{Issuer: s.srv.URL + "/", TokenURL: s.srv.URL + "/token", ClientID: "c1",
			Scopes: []string{"acme:read"}, Signer: entSigner, HTTPClient: s.srv.Client()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ts.Token(); err == nil {
			t.Fatal("the TLS listener that requires a certificate answered a client without one")
		}
	})
	for _, tc := range []struct {
		name   string
		signer Signer
		mtls   *MTLS
		hc     *http.Client
		want   string
	}{
		{"fail/mtls/key-signer-names-no-certificate", kidSigner, &MTLS{}, nil, "MTLS names no certificate"},
		{"fail/mtls/cert-without-key", entSigner, &MTLS{CertFile: otherCert}, nil, "MTLS.CertFile and MTLS.KeyFile go together"},
		{"fail/mtls/certificate-and-files", entSigner, &MTLS{CertFile: otherCert, KeyFile: otherKeyFile, Certificate: &otherTLS}, nil, "both set"},
		{"fail/mtls/empty-certificate", entSigner, &MTLS{Certificate: &tls.Certificate{}}, nil, "holds no certificate"},
		{"fail/mtls/missing-file", entSigner, &MTLS{CertFile: dir + "/nope.pem", KeyFile: otherKeyFile}, nil, "MTLS.CertFile"},
		{"fail/mtls/foreign-transport", entSigner, &MTLS{}, &http.Client{Transport: roundTripFunc(nil)}, "*http.Transport"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewTokenSource(t.Context(), Config{Issuer: "https://auth.example/", ClientID: "c1", Scopes: []string{"acme:read"},
				Signer: tc.signer, MTLS: tc.mtls, HTTPClient: tc.hc})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewTokenSource = %v, want an error with %q", err, tc.want)
			}
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
