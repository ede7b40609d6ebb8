package tokenendpoint_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/portvakt/portvakt/internal/entcert"
	"github.com/portvakt/portvakt/internal/exchange"
	"github.com/portvakt/portvakt/internal/server"
	"github.com/portvakt/portvakt/internal/store"
	"github.com/portvakt/portvakt/internal/store/sqlstore"
	"github.com/portvakt/portvakt/internal/testpki"
	"github.com/portvakt/portvakt/internal/tokenendpoint"
	"github.com/portvakt/portvakt/pkg/dpop"
	"github.com/portvakt/portvakt/pkg/mtls"
)

// mtlsEnv is the server under test with certificate-bound tokens: a real
// TLS listener asking for client certificates (clientAuth), or a plain
// listener with the proxy-header mode (proxy), as a deployment wires them.
func newMTLSEnv(t *testing.T, clientAuth string, proxy mtls.SourceConfig, opts ...envOption) *env {
	t.Helper()
	pki, ids, keys := fixtures(t)
	c := &clock{}
	c.Set(pki.Now().Truncate(1e9))
	recs := records(t, ids, c.Now())
	for _, o := range opts {
		o(&recs)
	}
	db, st, cache := openStore(t, sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: filepath.Join(t.TempDir(), "portvakt.db")}, recs)
	certs, err := entcert.NewVerifier(entcert.Policy{Roots: []*x509.Certificate{pki.Root.Cert}, Intermediates: []*x509.Certificate{pki.Intermediate.Cert}, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	src, err := mtls.NewSource(proxy)
	if err != nil {
		t.Fatal(err)
	}
	ex := exchange.New(exchange.Config{Issuer: issuer, Now: c.Now}, cache, certs, db, keys)
	logs := &logBuffer{}
	h, err := server.Public{
		Issuer: issuer, Token: tokenendpoint.New(ex, tokenendpoint.Config{Certificates: src}), JWKS: keys.JWKS,
		Log: slog.New(slog.NewJSONHandler(logs, nil)), CertificateBound: clientAuth != server.ClientAuthNone || src.ProxyMode(),
	}.Handler()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, clock: c, db: db, store: st, cache: cache, keys: keys, handler: h, pki: pki, ids: ids, logs: logs}
	if clientAuth == "" {
		e.srv = httptest.NewServer(h)
		t.Cleanup(e.srv.Close)
		return e
	}
	serverCert, err := pki.Intermediate.TLSServer(c.Now(), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	tc, err := server.TLS{
		Certificate: serverCert, ClientAuth: clientAuth, Now: c.Now,
		// The enterprise roots, and the intermediate that completes a
		// leaf sent alone: the default of tls.client_ca_files.
		ClientCAs: []*x509.Certificate{pki.Root.Cert}, ClientIntermediates: []*x509.Certificate{pki.Intermediate.Cert},
	}.Config()
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewUnstartedServer(h)
	e.srv.TLS = tc
	e.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	e.srv.StartTLS()
	t.Cleanup(e.srv.Close)
	return e
}

// tlsCert is an identity's certificate as a TLS client certificate; leafOnly
// sends the leaf without its intermediate.
func tlsCert(t *testing.T, id *identity, leafOnly bool) tls.Certificate {
	t.Helper()
	c := tls.Certificate{PrivateKey: id.key}
	for i, s := range id.x5c {
		if leafOnly && i > 0 {
			break
		}
		der, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		c.Certificate = append(c.Certificate, der)
	}
	return c
}

// thumbprintOf is the x5t#S256 of an identity's leaf.
func thumbprintOf(t *testing.T, id *identity) string {
	t.Helper()
	der, err := base64.StdEncoding.DecodeString(id.x5c[0])
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return mtls.Thumbprint(c)
}

// clientWith is an HTTP client of the env's TLS server presenting certs.
func (e *env) clientWith(certs ...tls.Certificate) *http.Client {
	tr := e.srv.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.Certificates = certs
	e.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// grantWith posts a grant of demo:read for id with hc and the extra headers.
func (e *env) grantWith(hc *http.Client, id *identity, header http.Header) (response, error) {
	e.t.Helper()
	return e.grantScopeWith(hc, id, "demo:read", header)
}

// grantScopeWith posts a grant of scope for id with hc and the extra headers.
func (e *env) grantScopeWith(hc *http.Client, id *identity, scope string, header http.Header) (response, error) {
	e.t.Helper()
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {e.sign(id, e.claims(id, scope), nil)}}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, e.srv.URL+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	_ = json.Unmarshal(b, &r.body)
	return r, nil
}

// wantCnf checks a 200 answer: a Bearer token whose cnf is x5t#S256 = x5t,
// or no cnf at all when x5t is empty.
func (e *env) wantCnf(t *testing.T, r response, x5t string) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.raw)
	}
	if r.body["token_type"] != "Bearer" {
		t.Fatalf("token_type %v, want Bearer (RFC 8705 keeps the Bearer type)", r.body["token_type"])
	}
	cl := e.tokenClaims(t, r)
	cnf, has := cl["cnf"].(map[string]any)
	switch {
	case x5t == "" && has:
		t.Fatalf("cnf %v in a token requested without a certificate", cnf)
	case x5t != "" && (cnf["x5t#S256"] != x5t || len(cnf) != 1):
		t.Fatalf("cnf %v, want x5t#S256 %s", cl["cnf"], x5t)
	}
}

// tokenClaims verifies the answer's token with the server's keys (not over
// HTTP: a listener that requires certificates would refuse the request).
func (e *env) tokenClaims(t *testing.T, r response) jwt.MapClaims {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(e.keys.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	cl := jwt.MapClaims{}
	if _, err := jwt.ParseWithClaims(r.body["access_token"].(string), cl, func(tk *jwt.Token) (any, error) {
		return set.Key(tk.Header["kid"].(string))[0].Key, nil
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithTimeFunc(e.clock.Now)); err != nil {
		t.Fatalf("token does not verify: %v", err)
	}
	return cl
}

func TestMTLSListener(t *testing.T) {
	e := newMTLSEnv(t, server.ClientAuthRequest, mtls.SourceConfig{})
	consumer := e.ids["consumer-seid2"]
	vendor := e.ids["vendor"]
	t.Run("ok/mtls/certificate-binds-token", func(t *testing.T) {
		r, err := e.grantWith(e.clientWith(tlsCert(t, consumer, false)), consumer, nil)
		if err != nil {
			t.Fatal(err)
		}
		e.wantCnf(t, r, thumbprintOf(t, consumer))
	})
	t.Run("ok/mtls/leaf-alone-completed-by-intermediates", func(t *testing.T) {
		r, err := e.grantWith(e.clientWith(tlsCert(t, consumer, true)), consumer, nil)
		if err != nil {
			t.Fatal(err)
		}
		e.wantCnf(t, r, thumbprintOf(t, consumer))
	})
	t.Run("ok/mtls/another-certificate-than-the-grant", func(t *testing.T) {
		// The certificate binds and does not authenticate: any certificate
		// the client holds and the CAs trust will do.
		r, err := e.grantWith(e.clientWith(tlsCert(t, vendor, false)), consumer, nil)
		if err != nil {
			t.Fatal(err)
		}
		e.wantCnf(t, r, thumbprintOf(t, vendor))
	})
	t.Run("ok/mtls/key-client-with-certificate", func(t *testing.T) {
		r, err := e.grantWith(e.clientWith(tlsCert(t, consumer, false)), e.ids["kid-ec256"], nil)
		if err != nil {
			t.Fatal(err)
		}
		e.wantCnf(t, r, thumbprintOf(t, consumer))
	})
	t.Run("ok/mtls/no-certificate-no-cnf", func(t *testing.T) {
		r, err := e.grantWith(e.clientWith(), consumer, nil)
		if err != nil {
			t.Fatal(err)
		}
		e.wantCnf(t, r, "")
	})
	t.Run("fail/mtls/untrusted-certificate-fails-handshake", func(t *testing.T) {
		if _, err := e.grantWith(e.clientWith(tlsCert(t, e.ids["untrusted"], false)), consumer, nil); err == nil {
			t.Fatal("a certificate from an untrusted CA was accepted in the handshake")
		}
	})
	t.Run("fail/mtls/expired-certificate-fails-handshake", func(t *testing.T) {
		if _, err := e.grantWith(e.clientWith(tlsCert(t, e.ids["expired-cert"], false)), consumer, nil); err == nil {
			t.Fatal("an expired certificate was accepted in the handshake")
		}
	})
	t.Run("ok/mtls/metadata", func(t *testing.T) {
		resp, err := e.srv.Client().Get(e.srv.URL + "/.well-known/oauth-authorization-server")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var md map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&md); err != nil {
			t.Fatal(err)
		}
		if md["tls_client_certificate_bound_access_tokens"] != true {
			t.Fatalf("metadata %v", md)
		}
		if _, ok := md["mtls_endpoint_aliases"]; ok {
			t.Fatal("mtls_endpoint_aliases without a separate mTLS endpoint")
		}
	})
}

func TestMTLSListenerRequire(t *testing.T) {
	e := newMTLSEnv(t, server.ClientAuthRequire, mtls.SourceConfig{})
	consumer := e.ids["consumer-seid2"]
	t.Run("fail/mtls/require-refuses-handshake-without-certificate", func(t *testing.T) {
		_, err := e.grantWith(e.clientWith(), consumer, nil)
		if err == nil {
			t.Fatal("a handshake without a client certificate succeeded")
		}
		if e.issued() != 0 {
			t.Fatal("a token was issued")
		}
	})
	t.Run("ok/mtls/require-with-certificate", func(t *testing.T) {
		r, err := e.grantWith(e.clientWith(tlsCert(t, consumer, false)), consumer, nil)
		if err != nil {
			t.Fatal(err)
		}
		e.wantCnf(t, r, thumbprintOf(t, consumer))
	})
}

func TestMTLSProxyHeader(t *testing.T) {
	consumer := e2eIdentity(t, "consumer-seid2")
	escapedPEM := func(id *identity) string {
		der, _ := base64.StdEncoding.DecodeString(id.x5c[0])
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return url.PathEscape(string(testpki.CertPEM(c)))
	}
	header := func(v ...string) http.Header { return http.Header{"X-Ssl-Client-Cert": v} }
	// The test's requests come from 127.0.0.1: trusted in one env, not in the other.
	trusted := newMTLSEnv(t, "", mtls.SourceConfig{ProxyHeader: "X-SSL-Client-Cert", TrustedProxies: []string{"127.0.0.0/8"}})
	untrusted := newMTLSEnv(t, "", mtls.SourceConfig{ProxyHeader: "X-SSL-Client-Cert", TrustedProxies: []string{"192.0.2.10"}})
	t.Run("ok/proxy/trusted-header-binds", func(t *testing.T) {
		r, err := trusted.grantWith(trusted.srv.Client(), consumer, header(escapedPEM(consumer)))
		if err != nil {
			t.Fatal(err)
		}
		trusted.wantCnf(t, r, thumbprintOf(t, consumer))
	})
	t.Run("ok/proxy/trusted-base64-der-binds", func(t *testing.T) {
		r, err := trusted.grantWith(trusted.srv.Client(), consumer, header(consumer.x5c[0]))
		if err != nil {
			t.Fatal(err)
		}
		trusted.wantCnf(t, r, thumbprintOf(t, consumer))
	})
	t.Run("ok/proxy/dpop-and-certificate-bind-both", func(t *testing.T) {
		// Both members of RFC 7800's cnf: the token then needs the DPoP key
		// and the certificate (pkg/resource checks every member it finds).
		proof := (&dpopEnv{env: trusted}).proof(proofSpec{})
		h := header(escapedPEM(consumer))
		h.Set("DPoP", proof)
		r, err := trusted.grantWith(trusted.srv.Client(), consumer, h)
		if err != nil {
			t.Fatal(err)
		}
		if r.status != http.StatusOK || r.body["token_type"] != "DPoP" {
			t.Fatalf("status %d: %s", r.status, r.raw)
		}
		cl := trusted.tokenClaims(t, r)
		jkt, err := dpop.Thumbprint(proofKey(t, "ec256").Public())
		if err != nil {
			t.Fatal(err)
		}
		cnf, _ := cl["cnf"].(map[string]any)
		if cnf["jkt"] != jkt || cnf["x5t#S256"] != thumbprintOf(t, consumer) || len(cnf) != 2 {
			t.Fatalf("cnf %v, want jkt %s and x5t#S256 %s", cnf, jkt, thumbprintOf(t, consumer))
		}
	})
	t.Run("ok/proxy/trusted-empty-header-no-cnf", func(t *testing.T) {
		r, err := trusted.grantWith(trusted.srv.Client(), consumer, header(""))
		if err != nil {
			t.Fatal(err)
		}
		trusted.wantCnf(t, r, "")
	})
	t.Run("ok/proxy/untrusted-header-ignored-and-logged", func(t *testing.T) {
		r, err := untrusted.grantWith(untrusted.srv.Client(), consumer, header(escapedPEM(consumer)))
		if err != nil {
			t.Fatal(err)
		}
		untrusted.wantCnf(t, r, "")
		if !strings.Contains(untrusted.logs.String(), `"client_cert_header":"ignored: not from a trusted proxy"`) {
			t.Fatalf("the ignored header is not in the access log:\n%s", untrusted.logs.String())
		}
	})
	for _, tc := range []struct {
		name string
		h    http.Header
	}{
		{"fail/proxy/trusted-bad-header-invalid-request", header("not a certificate")},
		{"fail/proxy/trusted-repeated-header-invalid-request", header(escapedPEM(consumer), escapedPEM(consumer))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := trusted.issued()
			r, err := trusted.grantWith(trusted.srv.Client(), consumer, tc.h)
			if err != nil {
				t.Fatal(err)
			}
			checkError(t, r, http.StatusBadRequest, "invalid_request", "X-Ssl-Client-Cert")
			if trusted.issued() != before {
				t.Fatal("a refused request left an issued-token row")
			}
		})
	}
	t.Run("fail/proxy/untrusted-bad-header-ignored", func(t *testing.T) {
		r, err := untrusted.grantWith(untrusted.srv.Client(), consumer, header("not a certificate"))
		if err != nil {
			t.Fatal(err)
		}
		untrusted.wantCnf(t, r, "")
	})
}

func e2eIdentity(t *testing.T, name string) *identity {
	t.Helper()
	_, ids, _ := fixtures(t)
	return ids[name]
}

// TestTokenBindingOverTLS: a scope's token_binding against a real TLS
// listener asking for client certificates: mtls and any are met by the
// connection's certificate, dpop is not; without a certificate mtls is
// refused, naming the scope and the binding it needs.
func TestTokenBindingOverTLS(t *testing.T) {
	_, ids, _ := fixtures(t)
	kid := ids["kid-ec256"]
	strict := &identity{clientID: uuid.NewSHA1(uuid.NameSpaceURL, []byte("require-dpop")).String(), key: kid.key, kid: kid.kid}
	bindingIDs.kid, bindingIDs.requireDPoP = kid, strict
	e := newMTLSEnv(t, server.ClientAuthRequest, mtls.SourceConfig{}, withBindings(strict))
	consumer := e.ids["consumer-seid2"]
	withCert, without := e.clientWith(tlsCert(t, consumer, false)), e.clientWith()
	x5t := thumbprintOf(t, consumer)
	for _, tc := range []struct {
		name, scope string
		hc          *http.Client
		x5t, code   string
	}{
		{"ok/binding/mtls-over-tls", "demo:bound-mtls", withCert, x5t, ""},
		{"ok/binding/any-over-tls", "demo:bound-any", withCert, x5t, ""},
		{"ok/binding/none-over-tls", "demo:bound-none", withCert, x5t, ""},
		{"fail/binding/mtls-without-certificate", "demo:bound-mtls", without, "", "invalid_scope"},
		{"fail/binding/dpop-with-certificate-only", "demo:bound-dpop", withCert, "", "invalid_scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := e.grantScopeWith(tc.hc, consumer, tc.scope, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.code == "" {
				e.wantCnf(t, r, tc.x5t)
				rows, err := e.db.ListIssuedTokens(t.Context(), store.IssuedTokenFilter{Limit: 1})
				if err != nil || len(rows) != 1 || rows[0].CnfX5T != tc.x5t {
					t.Fatalf("newest issued-token row %+v (%v), want cnf_x5t %s", rows, err, tc.x5t)
				}
				return
			}
			if r.status != http.StatusBadRequest || r.body["error"] != tc.code ||
				!strings.Contains(fmt.Sprint(r.body["error_description"]), "scope '"+tc.scope+"'") {
				t.Fatalf("got %d %s, want 400 %s naming %s", r.status, r.raw, tc.code, tc.scope)
			}
		})
	}
}
