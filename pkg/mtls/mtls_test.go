package mtls_test

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/portvakt/portvakt/internal/testpki"
	"github.com/portvakt/portvakt/pkg/mtls"
)

var pki *testpki.PKI

func leaf(t *testing.T) *x509.Certificate {
	t.Helper()
	if pki == nil {
		p, err := testpki.New("mtls")
		if err != nil {
			t.Fatal(err)
		}
		pki = p
	}
	p := pki
	l, err := p.Leaf(testpki.LeafOptions{Org: "310000035"})
	if err != nil {
		t.Fatal(err)
	}
	return l.Cert
}

func TestThumbprint(t *testing.T) {
	c := leaf(t)
	sum := sha256.Sum256(c.Raw)
	want := base64.RawURLEncoding.EncodeToString(sum[:])
	if got := mtls.Thumbprint(c); got != want || strings.ContainsAny(got, "+/=") {
		t.Fatalf("Thumbprint = %q, want %q", got, want)
	}
}

func TestParseHeader(t *testing.T) {
	c := leaf(t)
	pemText := string(testpki.CertPEM(c))
	b64 := base64.StdEncoding.EncodeToString(c.Raw)
	for _, tc := range []struct {
		name, value string
		ok          bool
	}{
		{"ok/escaped-pem", url.PathEscape(pemText), true},
		// QueryEscape writes a space as '+', which a path unescape keeps: the
		// PEM header no longer reads. nginx escapes it as %20.
		{"fail/query-escaped-pem", url.QueryEscape(pemText), false},
		{"ok/base64-der", b64, true},
		{"ok/base64-der-unpadded", strings.TrimRight(b64, "="), true},
		{"ok/base64-der-escaped", url.QueryEscape(b64), true},
		{"fail/garbage", "not a certificate", false},
		{"fail/bad-escape", "%zz", false},
		{"fail/two-certificates", url.PathEscape(pemText + pemText), false},
		{"fail/pem-of-a-key", url.PathEscape("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), false},
		{"fail/too-large", strings.Repeat("A", mtls.MaxHeaderBytes+1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := mtls.ParseHeader(tc.value)
			if tc.ok != (err == nil) {
				t.Fatalf("ParseHeader: err = %v, want ok = %v", err, tc.ok)
			}
			if tc.ok && !got.Equal(c) {
				t.Fatal("a different certificate came back")
			}
		})
	}
}

func TestSourceCertificate(t *testing.T) {
	c := leaf(t)
	other := leaf(t)
	header := url.PathEscape(string(testpki.CertPEM(c)))
	src, err := mtls.NewSource(mtls.SourceConfig{ProxyHeader: "x-ssl-client-cert", TrustedProxies: []string{"10.0.0.0/8", "::1"}})
	if err != nil {
		t.Fatal(err)
	}
	req := func(remote string, tlsCert *x509.Certificate, vals ...string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "https://auth.example/token", nil)
		r.RemoteAddr = remote
		for _, v := range vals {
			r.Header.Add("X-SSL-Client-Cert", v)
		}
		if tlsCert != nil {
			r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{tlsCert}}
		}
		return r
	}
	for _, tc := range []struct {
		name    string
		r       *http.Request
		want    *x509.Certificate
		ignored bool
		fail    bool
	}{
		{"ok/trusted-proxy-header", req("10.1.2.3:4444", nil, header), c, false, false},
		{"ok/trusted-ipv6-proxy", req("[::1]:4444", nil, header), c, false, false},
		{"ok/trusted-proxy-empty-header-is-no-certificate", req("10.1.2.3:4444", nil, ""), nil, false, false},
		{"ok/trusted-proxy-no-header", req("10.1.2.3:4444", nil), nil, false, false},
		{"ok/trusted-proxy-own-tls-certificate-not-used", req("10.1.2.3:4444", other), nil, false, false},
		{"ok/untrusted-header-ignored", req("192.0.2.7:4444", nil, header), nil, true, false},
		{"ok/untrusted-header-ignored-tls-used", req("192.0.2.7:4444", other, header), other, true, false},
		{"ok/tls-without-header", req("192.0.2.7:4444", other), other, false, false},
		{"fail/trusted-proxy-bad-header", req("10.1.2.3:4444", nil, "junk"), nil, false, true},
		{"fail/trusted-proxy-repeated-header", req("10.1.2.3:4444", nil, header, header), nil, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := src.Certificate(tc.r)
			var he *mtls.HeaderError
			if tc.fail != errors.As(err, &he) || (!tc.fail && err != nil) {
				t.Fatalf("err = %v, want failure %v", err, tc.fail)
			}
			if tc.fail {
				return
			}
			if p.IgnoredHeader != tc.ignored {
				t.Fatalf("IgnoredHeader = %v, want %v", p.IgnoredHeader, tc.ignored)
			}
			if (p.Cert == nil) != (tc.want == nil) || (p.Cert != nil && !p.Cert.Equal(tc.want)) {
				t.Fatalf("certificate = %v, want %v", p.Cert, tc.want)
			}
		})
	}
	t.Run("ok/zero-source-reads-tls-only", func(t *testing.T) {
		var zero mtls.Source
		p, err := zero.Certificate(req("10.1.2.3:4444", other, header))
		if err != nil || p.Cert == nil || !p.Cert.Equal(other) || p.IgnoredHeader {
			t.Fatalf("zero Source: %+v, %v", p, err)
		}
	})
}

func TestNewSource(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  mtls.SourceConfig
		ok   bool
	}{
		{"ok/zero", mtls.SourceConfig{}, true},
		{"ok/proxy", mtls.SourceConfig{ProxyHeader: "X-SSL-Client-Cert", TrustedProxies: []string{"127.0.0.1", "10.0.0.0/8"}}, true},
		{"fail/header-without-proxies", mtls.SourceConfig{ProxyHeader: "X-SSL-Client-Cert"}, false},
		{"fail/proxies-without-header", mtls.SourceConfig{TrustedProxies: []string{"127.0.0.1"}}, false},
		{"fail/bad-address", mtls.SourceConfig{ProxyHeader: "X-SSL-Client-Cert", TrustedProxies: []string{"proxy.example"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := mtls.NewSource(tc.cfg); (err == nil) != tc.ok {
				t.Fatalf("NewSource: %v, want ok = %v", err, tc.ok)
			}
		})
	}
}
