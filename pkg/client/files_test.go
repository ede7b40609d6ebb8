package client

import (
	"context"
	"crypto/elliptic"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/portvakt/portvakt/internal/testpki"
)

// api is a resource server that answers with the Authorization header it got.
func api(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(r.Header.Get("Authorization")))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, hc *http.Client, url string) (string, error) {
	t.Helper()
	resp, err := hc.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String(), nil
}

func write(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConfigFiles: the three-line path, Config{...}.Client(ctx), with each
// kind of signing file.
func TestConfigFiles(t *testing.T) {
	pki, err := testpki.New("Files CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := pki.Leaf(testpki.LeafOptions{Org: "910000000", Style: testpki.SEID2})
	if err != nil {
		t.Fatal(err)
	}
	kidKey, err := testpki.ECKey(elliptic.P256())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	leafKey, err := testpki.KeyPEM(leaf.Key)
	if err != nil {
		t.Fatal(err)
	}
	kidPEM, err := testpki.KeyPEM(kidKey)
	if err != nil {
		t.Fatal(err)
	}
	p12, err := leaf.PKCS12("secret")
	if err != nil {
		t.Fatal(err)
	}
	// The chain file lists the intermediate before the leaf, as files do.
	chain := write(t, dir, "chain.pem", testpki.CertPEM(append(leaf.Chain[1:], leaf.Cert)...))
	key := write(t, dir, "key.pem", leafKey)
	kid := write(t, dir, "kid.pem", kidPEM)
	p12File := write(t, dir, "cert.p12", p12)
	api := api(t)

	for _, tc := range []struct {
		name   string
		files  func(*Config)
		pub    any
		header string // x5c or kid
	}{
		{"ok/pem-chain-and-key", func(c *Config) { c.CertFile, c.KeyFile = chain, key }, leaf.Key.Public(), "x5c"},
		{"ok/p12-with-password", func(c *Config) { c.PKCS12File, c.PKCS12Password = p12File, "secret" }, leaf.Key.Public(), "x5c"},
		{"ok/key-with-kid", func(c *Config) { c.KeyFile, c.KeyID = kid, "key-7" }, kidKey.Public(), "kid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newTokenServer(t, tc.pub)
			conf := &Config{Issuer: srv.issuer, ClientID: "c1", Scopes: []string{"acme:read"}}
			tc.files(conf)
			got, err := get(t, conf.Client(t.Context()), api.URL)
			if err != nil {
				t.Fatal(err)
			}
			if got != "Bearer tok-1" {
				t.Fatalf("the API got Authorization %q", got)
			}
			h := srv.headers[0]
			if _, ok := h[tc.header]; !ok {
				t.Fatalf("grant header %v has no %s", h, tc.header)
			}
			if tc.header == "kid" && h["kid"] != "key-7" {
				t.Fatalf("kid %v", h["kid"])
			}
			if tc.header == "x5c" && len(h["x5c"].([]any)) != len(leaf.Chain) {
				t.Fatalf("x5c has %d certificates, want the leaf and its intermediate", len(h["x5c"].([]any)))
			}
			// TokenSource is the same path without the HTTP client.
			tok, err := conf.TokenSource(t.Context()).Token()
			if err != nil || tok.AccessToken != "tok-2" {
				t.Fatalf("TokenSource: %v %v", tok, err)
			}
		})
	}

	for _, tc := range []struct {
		name  string
		files func(*Config)
		want  string
	}{
		{"fail/no-signing-key", func(*Config) {}, "no signing key: set CertFile and KeyFile"},
		{"fail/cert-without-key", func(c *Config) { c.CertFile = chain }, "CertFile needs KeyFile"},
		{"fail/cert-and-kid", func(c *Config) { c.CertFile, c.KeyFile, c.KeyID = chain, key, "k" }, "CertFile and KeyID are both set"},
		{"fail/key-without-cert-or-kid", func(c *Config) { c.KeyFile = kid }, "KeyFile needs CertFile"},
		{"fail/kid-without-key", func(c *Config) { c.KeyID = "k" }, "KeyID needs KeyFile"},
		{"fail/p12-and-pem", func(c *Config) { c.PKCS12File, c.CertFile, c.KeyFile = p12File, chain, key }, "leave CertFile and KeyFile empty"},
		{"fail/password-without-p12", func(c *Config) { c.CertFile, c.KeyFile, c.PKCS12Password = chain, key, "x" }, "PKCS12Password is set without PKCS12File"},
		{"fail/signer-and-files", func(c *Config) {
			s, _ := KeySigner(kidKey, "k")
			c.Signer, c.KeyFile, c.KeyID = s, kid, "k"
		}, "Signer and the file fields"},
		{"fail/missing-file", func(c *Config) { c.CertFile, c.KeyFile = filepath.Join(dir, "gone.pem"), key }, "client: CertFile: open " + filepath.Join(dir, "gone.pem")},
		{"fail/wrong-password", func(c *Config) { c.PKCS12File, c.PKCS12Password = p12File, "wrong" }, "PKCS#12: wrong password (PKCS12File " + p12File + ")"},
		{"fail/key-does-not-match-cert", func(c *Config) { c.CertFile, c.KeyFile = chain, kid }, "no certificate matches the private key"},
		{"fail/issuer-without-slash", func(c *Config) {
			c.Issuer = "https://auth.example.no"
			c.KeyFile, c.KeyID = kid, "k"
		}, `Issuer "https://auth.example.no" has no trailing slash: add one (https://auth.example.no/)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf := &Config{Issuer: "https://auth.example.no/", ClientID: "c1", Scopes: []string{"acme:read"}}
			tc.files(conf)
			_, err := conf.TokenSource(t.Context()).Token()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Token: %v, want it to contain %q", err, tc.want)
			}
			// The HTTP client fails its requests with the same error, and
			// sends nothing to the API.
			if _, err := get(t, conf.Client(t.Context()), api.URL); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Client: %v", err)
			}
		})
	}
}

// countingTransport counts the requests it carries.
type countingTransport struct{ n atomic.Int32 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// TestConfigClientHonoursEveryField: the fields that shape the grant reach
// it, HTTPClient carries the token requests, and the context's
// oauth2.HTTPClient carries the API calls.
func TestConfigClientHonoursEveryField(t *testing.T) {
	k, err := testpki.ECKey(elliptic.P256())
	if err != nil {
		t.Fatal(err)
	}
	kidPEM, err := testpki.KeyPEM(k)
	if err != nil {
		t.Fatal(err)
	}
	srv := newTokenServer(t, k.Public())
	clk := newClock()
	tokenHTTP, apiHTTP := &countingTransport{}, &countingTransport{}
	conf := &Config{
		Issuer: srv.issuer, TokenURL: srv.issuer + "token", ClientID: "c1",
		Scopes: []string{"acme:a", "acme:b"}, Resources: []string{"https://api.example.no/"},
		ConsumerOrg: "910000001", PID: "01010112345",
		KeyFile: write(t, t.TempDir(), "k.pem", kidPEM), KeyID: "k1",
		HTTPClient:  &http.Client{Transport: tokenHTTP, Timeout: 7 * time.Second},
		RenewBefore: 10 * time.Second, AssertionLifetime: 30 * time.Second, Now: clk.Now,
	}
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, &http.Client{Transport: apiHTTP})
	hc := conf.Client(ctx)
	if hc.Timeout != 7*time.Second {
		t.Errorf("timeout %s, want HTTPClient's", hc.Timeout)
	}
	for range 2 {
		if _, err := get(t, hc, api(t).URL); err != nil {
			t.Fatal(err)
		}
	}
	if srv.posts.Load() != 1 || srv.discovers.Load() != 0 {
		t.Fatalf("%d token requests and %d discoveries: the token is cached and TokenURL skips discovery", srv.posts.Load(), srv.discovers.Load())
	}
	if tokenHTTP.n.Load() != 1 || apiHTTP.n.Load() != 2 {
		t.Fatalf("token requests through HTTPClient %d, API calls through the context's client %d", tokenHTTP.n.Load(), apiHTTP.n.Load())
	}
	g := srv.grants[0]
	iat, _ := g.GetIssuedAt()
	exp, _ := g.GetExpirationTime()
	if g["scope"] != "acme:a acme:b" || g["resource"] == nil || g["consumer_org"] != "910000001" || g["pid"] != "01010112345" ||
		g["iss"] != "c1" || !iat.Equal(clk.Now()) || exp.Sub(iat.Time) != 30*time.Second {
		t.Fatalf("grant %v", g)
	}
	// RenewBefore: 120 s tokens are replaced 10 s before they expire.
	clk.Advance(109 * time.Second)
	if _, err := get(t, hc, api(t).URL); err != nil || srv.posts.Load() != 1 {
		t.Fatalf("renewed early: %d posts, %v", srv.posts.Load(), err)
	}
	clk.Advance(2 * time.Second)
	if _, err := get(t, hc, api(t).URL); err != nil || srv.posts.Load() != 2 {
		t.Fatalf("not renewed: %d posts, %v", srv.posts.Load(), err)
	}
}
