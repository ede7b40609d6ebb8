package resource

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/portvakt/portvakt/internal/testpki"
	"github.com/portvakt/portvakt/pkg/dpop"
	"github.com/portvakt/portvakt/pkg/mtls"
)

// mtlsCerts are two client certificates and a server certificate for
// 127.0.0.1, from one test PKI, made once.
var mtlsCerts = sync.OnceValues(func() (*mtlsPKI, error) {
	p, err := testpki.New("Resource")
	if err != nil {
		return nil, err
	}
	out := &mtlsPKI{pki: p}
	for _, l := range []**testpki.Leaf{&out.a, &out.b} {
		if *l, err = p.Leaf(testpki.LeafOptions{Org: "310000035"}); err != nil {
			return nil, err
		}
	}
	out.server, err = p.Intermediate.TLSServer(p.Now(), "127.0.0.1")
	return out, err
})

type mtlsPKI struct {
	pki    *testpki.PKI
	a, b   *testpki.Leaf
	server tls.Certificate
}

// mtlsFixture is a resource server protected by RequireScope, reached over
// a TLS listener that asks for client certificates, and over plain HTTP.
type mtlsFixture struct {
	certs     *mtlsPKI
	tlsSrv    *httptest.Server
	plainSrv  *httptest.Server
	boundA    string // a token bound to certificate a
	boundBoth string // bound to certificate a and a DPoP key
	plain     string
	key       *dpop.Key
	v         *Verifier
}

func newMTLSFixture(t *testing.T, mtlsCfg MTLSConfig) *mtlsFixture {
	t.Helper()
	certs, err := mtlsCerts()
	if err != nil {
		t.Fatal(err)
	}
	k := newECKey(t, "k1")
	as := newAuthServer(t, k)
	clk := newClock()
	f := &mtlsFixture{certs: certs}
	if f.key, err = dpop.GenerateKey(); err != nil {
		t.Fatal(err)
	}
	c := baseClaims(as.issuer, clk.Now())
	c["cnf"] = map[string]any{"x5t#S256": mtls.Thumbprint(certs.a.Cert)}
	f.boundA = mint(t, k, c, nil)
	c = baseClaims(as.issuer, clk.Now())
	c["token_type"] = "DPoP"
	c["cnf"] = map[string]any{"x5t#S256": mtls.Thumbprint(certs.a.Cert), "jkt": f.key.Thumbprint()}
	f.boundBoth = mint(t, k, c, nil)
	f.plain = mint(t, k, baseClaims(as.issuer, clk.Now()), nil)
	var v *Verifier
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		RequireScope(v, "acme:read")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, _ := FromContext(r.Context())
			_, _ = io.WriteString(w, "x5t="+c.X5T)
		})).ServeHTTP(w, r)
	})
	f.tlsSrv = httptest.NewUnstartedServer(h)
	// Any certificate will do for the handshake's proof of possession;
	// the binding is the token's.
	f.tlsSrv.TLS = &tls.Config{Certificates: []tls.Certificate{certs.server}, ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12}
	f.tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0)
	f.tlsSrv.StartTLS()
	t.Cleanup(f.tlsSrv.Close)
	f.plainSrv = httptest.NewServer(h)
	t.Cleanup(f.plainSrv.Close)
	v = newVerifier(t, as, clk, func(cfg *VerifierConfig) {
		cfg.MTLS = mtlsCfg
		cfg.DPoP.PublicURL = f.tlsSrv.URL
	})
	f.v = v
	return f
}

// call sends GET /data with auth over the TLS listener presenting cert
// (nil: none), or over plain HTTP when plain is set.
func (f *mtlsFixture) call(t *testing.T, plain bool, cert *testpki.Leaf, auth string, header http.Header) (*http.Response, string) {
	t.Helper()
	srv := f.tlsSrv
	if plain {
		srv = f.plainSrv
	}
	tr := srv.Client().Transport.(*http.Transport).Clone()
	if cert != nil {
		tr.TLSClientConfig.Certificates = []tls.Certificate{cert.TLSClient()}
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL+"/data", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	req.Header.Set("Authorization", auth)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestMTLSBoundTokens(t *testing.T) {
	f := newMTLSFixture(t, MTLSConfig{})
	a, b := f.certs.a, f.certs.b
	proof := func() string {
		p, err := f.key.Proof(http.MethodGet, f.tlsSrv.URL+"/data", f.boundBoth, "", newClock().Now())
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name   string
		plain  bool
		cert   *testpki.Leaf
		auth   string
		header http.Header
		status int
		www    string
	}{
		{"ok/mtls/right-certificate", false, a, "Bearer " + f.boundA, nil, 200, ""},
		{"ok/mtls/unbound-token-with-certificate", false, a, "Bearer " + f.plain, nil, 200, ""},
		{"fail/mtls/another-certificate", false, b, "Bearer " + f.boundA, nil, 401, `Bearer error="invalid_token", error_description="the token is bound to another client certificate`},
		{"fail/mtls/no-certificate", false, nil, "Bearer " + f.boundA, nil, 401, `Bearer error="invalid_token", error_description="the token is bound to a client certificate: send it over a TLS connection`},
		{"fail/mtls/plain-http", true, nil, "Bearer " + f.boundA, nil, 401, `Bearer error="invalid_token", error_description="the token is bound to a client certificate: send it over a TLS connection`},
		{"fail/mtls/header-from-untrusted-address-ignored", true, nil, "Bearer " + f.boundA, http.Header{"X-Ssl-Client-Cert": {url.PathEscape(string(testpki.CertPEM(a.Cert)))}}, 401, `Bearer error="invalid_token"`},
		{"ok/mtls/dpop-and-certificate", false, a, "DPoP " + f.boundBoth, http.Header{"Dpop": {proof()}}, 200, ""},
		{"fail/mtls/dpop-without-certificate", false, nil, "DPoP " + f.boundBoth, http.Header{"Dpop": {proof()}}, 401, `DPoP error="invalid_token", error_description="the token is bound to a client certificate`},
		{"fail/mtls/dpop-and-certificate-as-bearer", false, a, "Bearer " + f.boundBoth, nil, 401, `Bearer error="invalid_token", error_description="the token is bound to a key`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.call(t, tc.plain, tc.cert, tc.auth, tc.header)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s (%v)", resp.StatusCode, tc.status, body, resp.Header.Values("WWW-Authenticate"))
			}
			if tc.status == 200 {
				want := "x5t="
				if tc.auth != "Bearer "+f.plain {
					want += mtls.Thumbprint(a.Cert)
				}
				if body != want {
					t.Fatalf("body %q, want %q", body, want)
				}
				return
			}
			if www := resp.Header.Values("WWW-Authenticate"); len(www) == 0 || !strings.HasPrefix(www[0], tc.www) {
				t.Fatalf("WWW-Authenticate %q, want it to start with %q", www, tc.www)
			}
			var e map[string]string
			if err := json.Unmarshal([]byte(body), &e); err != nil || e["error"] != "invalid_token" {
				t.Fatalf("body %q", body)
			}
		})
	}
	t.Run("fail/mtls/verify-without-request", func(t *testing.T) {
		if _, err := f.v.Verify(t.Context(), f.boundA); err == nil || !strings.Contains(err.Error(), "bound to a client certificate") {
			t.Fatalf("Verify = %v, want a refusal of the certificate-bound token", err)
		}
	})
}

func TestMTLSProxyHeaderAtResourceServer(t *testing.T) {
	// The test's requests come from 127.0.0.1, a trusted proxy here.
	f := newMTLSFixture(t, MTLSConfig{ProxyHeader: "X-SSL-Client-Cert", TrustedProxies: []string{"127.0.0.1"}})
	hdr := func(l *testpki.Leaf) http.Header {
		return http.Header{"X-Ssl-Client-Cert": {url.PathEscape(string(testpki.CertPEM(l.Cert)))}}
	}
	for _, tc := range []struct {
		name   string
		header http.Header
		status int
	}{
		{"ok/proxy/trusted-header-right-certificate", hdr(f.certs.a), 200},
		{"fail/proxy/trusted-header-another-certificate", hdr(f.certs.b), 401},
		{"fail/proxy/trusted-header-unreadable", http.Header{"X-Ssl-Client-Cert": {"junk"}}, 401},
		{"fail/proxy/no-header", nil, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.call(t, true, nil, "Bearer "+f.boundA, tc.header)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
		})
	}
}

func TestMTLSCnfClaims(t *testing.T) {
	k := newECKey(t, "k1")
	as := newAuthServer(t, k)
	clk := newClock()
	v := newVerifier(t, as, clk, nil)
	for _, tc := range []struct {
		name string
		cnf  any
		want string
	}{
		{"fail/cnf/x5t-not-a-string", map[string]any{"x5t#S256": 7}, "cnf.x5t#S256 is malformed"},
		{"fail/cnf/unknown-member", map[string]any{"jwk": map[string]any{"kty": "EC"}}, "confirmation method"},
		{"fail/cnf/unknown-beside-x5t", map[string]any{"x5t#S256": "abc", "kid": "k"}, "confirmation method"},
		{"fail/cnf/empty", map[string]any{}, "cnf is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := baseClaims(as.issuer, clk.Now())
			c["cnf"] = tc.cnf
			r := httptest.NewRequest(http.MethodGet, "https://api.example/data", nil)
			_, err := v.VerifyBearer(t.Context(), mint(t, k, c, nil), r)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("VerifyBearer = %v, want %q", err, tc.want)
			}
		})
	}
}
