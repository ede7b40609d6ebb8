package interop

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/testserver"
	"github.com/portvakt/portvakt/pkg/client"
	"github.com/portvakt/portvakt/pkg/mtls"
	"github.com/portvakt/portvakt/pkg/resource"
)

// mtlsAPI is a provider's API protected by pkg/resource, served over TLS
// with a request for client certificates: it answers with the certificate
// thumbprint the token is bound to.
func mtlsAPI(t *testing.T, s *testserver.Server) *httptest.Server {
	t.Helper()
	v, err := resource.NewVerifier(t.Context(), resource.VerifierConfig{Issuer: s.Issuer, HTTPClient: s.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(resource.RequireScope(v, "demo:read")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := resource.FromContext(r.Context())
		_ = json.NewEncoder(w).Encode(map[string]string{"consumer": c.ConsumerOrg, "x5t": c.X5T})
	})))
	cert, err := s.PKI.Intermediate.TLSServer(time.Now(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	// Any client certificate completes the handshake (its key is proven);
	// whether it is the token's is pkg/resource's check.
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// The end-to-end story of certificate-bound tokens: a consumer with one
// option in pkg/client (its enterprise certificate, reused as the TLS client
// certificate) gets a token bound to that certificate from portvakt's TLS
// listener, calls a provider's API protected by pkg/resource, and the same
// token replayed from another client certificate, or without one, is
// refused.
func TestMTLSWithBothLibraries(t *testing.T) {
	s := testserver.Start(t, testserver.Options{TLSClientAuth: "request"})
	p := s.PKI
	api := mtlsAPI(t, s)
	x5t := mtls.Thumbprint(p.ConsumerCert.Leaf.Cert)

	cfg := s.ClientConfig(p.ConsumerCert, "demo:read")
	cfg.HTTPClient = s.HTTPClient()
	cfg.MTLS = &client.MTLS{}
	ts, err := client.NewTokenSource(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	hc := ts.HTTPClient()
	for i := range 2 { // the second call reuses the token
		code, body := call(t, hc, api.URL+"/records", "", "")
		if code != 200 || !strings.Contains(body, `"x5t":"`+x5t+`"`) || !strings.Contains(body, testserver.ConsumerOrg) {
			t.Fatalf("ok/mtls/call-%d: %d %s", i, code, body)
		}
	}
	tok, err := ts.Token()
	if err != nil || tok.TokenType != "Bearer" {
		t.Fatalf("token %v (%v): RFC 8705 keeps token_type Bearer", tok, err)
	}
	t.Run("ok/mtls/metadata", func(t *testing.T) {
		code, body := call(t, s.HTTPClient(), s.URL+".well-known/oauth-authorization-server", "", "")
		if code != 200 || !strings.Contains(body, `"tls_client_certificate_bound_access_tokens":true`) {
			t.Fatalf("%d %s", code, body)
		}
	})
	for _, rc := range []struct {
		name string
		hc   *http.Client
	}{
		{"fail/stolen/another-client-certificate", s.HTTPClient(p.VendorCert.Leaf.TLSClient())},
		{"fail/stolen/no-client-certificate", s.HTTPClient()},
	} {
		t.Run(rc.name, func(t *testing.T) {
			code, body := call(t, rc.hc, api.URL+"/records", "Bearer "+tok.AccessToken, "")
			if code != 401 || !strings.Contains(body, "invalid_token") || !strings.Contains(body, "client certificate") {
				t.Fatalf("%d %s, want 401 invalid_token about the client certificate", code, body)
			}
		})
	}
	t.Run("ok/bearer-client-unchanged", func(t *testing.T) {
		cfg := s.ClientConfig(p.ConsumerCert, "demo:read")
		cfg.HTTPClient = s.HTTPClient()
		ts, err := client.NewTokenSource(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		code, body := call(t, ts.HTTPClient(), api.URL+"/records", "", "")
		if code != 200 || !strings.Contains(body, `"x5t":""`) {
			t.Fatalf("%d %s", code, body)
		}
	})
}
