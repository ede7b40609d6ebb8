package entcert

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/testpki"
)

// crlServer serves one CRL over loopback HTTP and counts fetches.
type crlServer struct {
	*httptest.Server
	mu    sync.Mutex
	body  []byte
	hits  atomic.Int32
	delay time.Duration
}

func newCRLServer(t testing.TB) *crlServer {
	s := &crlServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		time.Sleep(s.delay)
		s.mu.Lock()
		b := s.body
		s.mu.Unlock()
		if b == nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/pkix-crl")
		_, _ = w.Write(b)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *crlServer) set(b []byte) { s.mu.Lock(); s.body = b; s.mu.Unlock() }

func TestCRL(t *testing.T) {
	f := newFixture(t)
	other := newFixture(t)
	inter := f.pki.Intermediate
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL + "/crl"
	dead.Close() // nothing listens there any more

	type setup struct {
		crl     func(leaf *x509.Certificate) []byte // served over HTTP; nil = 404
		files   func(t *testing.T, leaf *x509.Certificate) []string
		urls    func(srv string) []string
		opts    func(*CRLOptions)
		wantErr string
	}
	crlOf := func(ca *testpki.CA, now, next time.Time, revoked ...*big.Int) []byte {
		b, err := ca.CRLUntil(now, next, revoked...)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	dayCRL := func(revoked ...*big.Int) func(*x509.Certificate) []byte {
		return func(*x509.Certificate) []byte { return crlOf(inter, f.now, f.now.Add(24*time.Hour), revoked...) }
	}
	httpURL := func(srv string) []string { return []string{srv + "/crl"} }
	writeFile := func(t *testing.T, name string, b []byte) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name string
		setup
	}{
		{name: "ok/not-revoked-http", setup: setup{crl: dayCRL(big.NewInt(42)), urls: httpURL}},
		{name: "fail/revoked-http", setup: setup{
			crl:     func(l *x509.Certificate) []byte { return dayCRL(big.NewInt(42), l.SerialNumber)(l) },
			urls:    httpURL,
			wantErr: "has been revoked",
		}},
		{name: "fail/unreachable", setup: setup{urls: func(string) []string { return []string{deadURL} }, wantErr: "revocation status could not be checked"}},
		{name: "fail/http-404", setup: setup{urls: httpURL, wantErr: "revocation status could not be checked"}},
		{name: "fail/no-distribution-point", setup: setup{crl: dayCRL(), urls: func(string) []string { return nil }, wantErr: "revocation status could not be checked"}},
		{name: "fail/ldap-only", setup: setup{crl: dayCRL(), urls: func(string) []string { return []string{"ldap://example.test/cn=crl"} }, wantErr: "revocation status could not be checked"}},
		{name: "fail/crl-of-other-ca", setup: setup{
			crl:     func(*x509.Certificate) []byte { return crlOf(other.pki.Intermediate, f.now, f.now.Add(time.Hour)) },
			urls:    httpURL,
			wantErr: "revocation status could not be checked",
		}},
		{name: "fail/stale-crl", setup: setup{
			crl:     func(*x509.Certificate) []byte { return crlOf(inter, f.now.Add(-48*time.Hour), f.now.Add(-time.Hour)) },
			urls:    httpURL,
			wantErr: "revocation status could not be checked",
		}},
		{name: "fail/garbage-crl", setup: setup{crl: func(*x509.Certificate) []byte { return []byte("junk") }, urls: httpURL, wantErr: "could not be checked"}},
		{name: "fail/oversize-crl", setup: setup{
			crl: dayCRL(), urls: httpURL, opts: func(o *CRLOptions) { o.MaxSize = 64 },
			wantErr: "could not be checked",
		}},
		{name: "ok/second-distribution-point", setup: setup{
			crl:  dayCRL(),
			urls: func(srv string) []string { return []string{deadURL, srv + "/crl"} },
		}},
		{name: "ok/file-pem", setup: setup{
			files: func(t *testing.T, l *x509.Certificate) []string {
				b := pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: dayCRL()(l)})
				return []string{writeFile(t, "a.crl", b)}
			},
			urls: func(string) []string { return nil },
		}},
		{name: "fail/revoked-file-der", setup: setup{
			files: func(t *testing.T, l *x509.Certificate) []string {
				return []string{
					writeFile(t, "other.crl", crlOf(other.pki.Intermediate, f.now, f.now.Add(time.Hour))),
					writeFile(t, "a.crl", dayCRL(l.SerialNumber)(l)),
				}
			},
			urls:    func(string) []string { return nil },
			wantErr: "has been revoked",
		}},
		{name: "fail/only-foreign-file", setup: setup{
			files: func(t *testing.T, l *x509.Certificate) []string {
				return []string{writeFile(t, "other.crl", crlOf(other.pki.Intermediate, f.now, f.now.Add(time.Hour)))}
			},
			urls:    func(string) []string { return nil },
			wantErr: "could not be checked",
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := newCRLServer(t)
			l := f.leaf(testpki.LeafOptions{CRLURLs: c.urls(srv.URL)})
			if c.crl != nil {
				srv.set(c.crl(l.Cert))
			}
			o := CRLOptions{HTTPClient: srv.Client(), Now: func() time.Time { return f.now }}
			if c.files != nil {
				o.Files = c.files(t, l.Cert)
			}
			if c.opts != nil {
				c.opts(&o)
			}
			rc, err := NewCRLChecker(o)
			if err != nil {
				t.Fatal(err)
			}
			p := f.policy()
			p.Revocation = rc
			_, err = f.verifier(p).Verify(t.Context(), ders(l.Cert))
			if c.wantErr != "" {
				wantGrantError(t, err, c.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestCRLRefreshAfterNextUpdate(t *testing.T) {
	f := newFixture(t)
	clk := &clock{t: f.now}
	srv := newCRLServer(t)
	inter := f.pki.Intermediate
	l := f.leaf(testpki.LeafOptions{CRLURLs: []string{srv.URL + "/crl"}})
	first, err := inter.CRLUntil(f.now, f.now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	srv.set(first)
	rc, err := NewCRLChecker(CRLOptions{HTTPClient: srv.Client(), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	p := f.policy()
	p.Now, p.Revocation, p.CacheSize = clk.Now, rc, -1
	v := f.verifier(p)
	if _, err := v.Verify(t.Context(), ders(l.Cert)); err != nil {
		t.Fatal(err)
	}
	// The issuer revokes; the cached CRL still holds until its NextUpdate.
	second, err := inter.CRLUntil(f.now.Add(30*time.Minute), f.now.Add(2*time.Hour), l.Cert.SerialNumber)
	if err != nil {
		t.Fatal(err)
	}
	srv.set(second)
	clk.Set(f.now.Add(30 * time.Minute))
	if _, err := v.Verify(t.Context(), ders(l.Cert)); err != nil {
		t.Fatal(err)
	}
	if srv.hits.Load() != 1 {
		t.Fatalf("%d fetches before NextUpdate, want 1", srv.hits.Load())
	}
	clk.Set(f.now.Add(61 * time.Minute))
	_, err = v.Verify(t.Context(), ders(l.Cert))
	wantGrantError(t, err, "has been revoked")
	if srv.hits.Load() != 2 {
		t.Fatalf("%d fetches, want 2", srv.hits.Load())
	}
}

func TestCRLSingleflight(t *testing.T) {
	f := newFixture(t)
	srv := newCRLServer(t)
	srv.delay = 100 * time.Millisecond
	crl, err := f.pki.Intermediate.CRL(f.now)
	if err != nil {
		t.Fatal(err)
	}
	srv.set(crl)
	rc, err := NewCRLChecker(CRLOptions{HTTPClient: srv.Client(), Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	l := f.leaf(testpki.LeafOptions{CRLURLs: []string{srv.URL + "/crl"}})
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if err := rc.Check(t.Context(), l.Cert, f.pki.Intermediate.Cert); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("%d fetches for 20 concurrent checks, want 1", n)
	}
}

// hangingServer never answers until the test ends; it counts requests.
func hangingServer(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	return srv, &hits
}

func TestCRLFetchBounds(t *testing.T) {
	f := newFixture(t)
	crl, err := f.pki.Intermediate.CRL(f.now)
	if err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return f.now }
	check := func(t *testing.T, rc *CRLChecker, ctx context.Context, urls ...string) error {
		t.Helper()
		l := f.leaf(testpki.LeafOptions{CRLURLs: urls})
		return rc.Check(ctx, l.Cert, f.pki.Intermediate.Cert)
	}
	redirector := func(t *testing.T, to func(r *http.Request) string) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, to(r), http.StatusFound)
		}))
		t.Cleanup(srv.Close)
		return srv
	}

	t.Run("ok/same-host-redirect", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/moved" {
				http.Redirect(w, r, "/crl", http.StatusFound)
				return
			}
			_, _ = w.Write(crl)
		}))
		t.Cleanup(srv.Close)
		rc, err := NewCRLChecker(CRLOptions{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		if err := check(t, rc, t.Context(), srv.URL+"/moved"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("fail/redirect-to-another-host", func(t *testing.T) {
		good := newCRLServer(t)
		good.set(crl)
		srv := redirector(t, func(*http.Request) string { return good.URL + "/crl" })
		rc, err := NewCRLChecker(CRLOptions{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		err = check(t, rc, t.Context(), srv.URL+"/crl")
		wantGrantError(t, err, "revocation status could not be checked")
		if !strings.Contains(err.Error(), "to another host") || good.hits.Load() != 0 {
			t.Fatalf("cause %v; %d requests reached the other host", err, good.hits.Load())
		}
	})
	t.Run("fail/redirect-loop", func(t *testing.T) {
		var hits atomic.Int32
		srv := redirector(t, func(r *http.Request) string { hits.Add(1); return "/again" })
		rc, err := NewCRLChecker(CRLOptions{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		err = check(t, rc, t.Context(), srv.URL+"/crl")
		wantGrantError(t, err, "could not be checked")
		if n := hits.Load(); n != maxCRLRedirects+1 {
			t.Fatalf("%d requests, want %d", n, maxCRLRedirects+1)
		}
	})
	t.Run("fail/slow-server-bounded-by-deadline", func(t *testing.T) {
		srv, hits := hangingServer(t)
		rc, err := NewCRLChecker(CRLOptions{Now: now, FetchTimeout: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		// The server never answers before the test ends, so returning at
		// all shows the caller's deadline bounded the wait.
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		err = check(t, rc, ctx, srv.URL+"/crl")
		wantGrantError(t, err, "could not be checked")
		if !errors.Is(err, context.DeadlineExceeded) || hits.Load() != 1 {
			t.Fatalf("cause %v, %d requests", err, hits.Load())
		}
	})
	t.Run("fail/one-budget-for-all-points", func(t *testing.T) {
		slow, slowHits := hangingServer(t)
		good := newCRLServer(t)
		good.set(crl)
		rc, err := NewCRLChecker(CRLOptions{Now: now, FetchTimeout: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		// The first point eats the whole budget: the second is not tried
		// (with a timeout per point it would be, after the first's).
		err = check(t, rc, t.Context(), slow.URL+"/crl", good.URL+"/crl")
		wantGrantError(t, err, "could not be checked")
		if slowHits.Load() != 1 || good.hits.Load() != 0 {
			t.Fatalf("%d requests to the slow point, %d to the second", slowHits.Load(), good.hits.Load())
		}
	})
	t.Run("fail/failure-remembered", func(t *testing.T) {
		clk := &clock{t: f.now}
		srv := newCRLServer(t) // 404 until set
		rc, err := NewCRLChecker(CRLOptions{Now: clk.Now, FailureTTL: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		l := f.leaf(testpki.LeafOptions{CRLURLs: []string{srv.URL + "/crl"}})
		for range 3 {
			wantGrantError(t, rc.Check(t.Context(), l.Cert, f.pki.Intermediate.Cert), "could not be checked")
		}
		if n := srv.hits.Load(); n != 1 {
			t.Fatalf("%d fetches within the failure TTL, want 1", n)
		}
		// Still fail closed while remembered, even though the CRL is back.
		srv.set(crl)
		clk.Set(f.now.Add(29 * time.Second))
		wantGrantError(t, rc.Check(t.Context(), l.Cert, f.pki.Intermediate.Cert), "could not be checked")
		clk.Set(f.now.Add(30 * time.Second))
		if err := rc.Check(t.Context(), l.Cert, f.pki.Intermediate.Cert); err != nil {
			t.Fatal(err)
		}
		if n := srv.hits.Load(); n != 2 {
			t.Fatalf("%d fetches, want 2", n)
		}
	})
	t.Run("fail/oversize-streamed", func(t *testing.T) {
		// No Content-Length: the limit holds on the bytes read.
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for range 64 {
				_, _ = w.Write(make([]byte, 1024))
				w.(http.Flusher).Flush()
			}
		}))
		t.Cleanup(srv.Close)
		rc, err := NewCRLChecker(CRLOptions{Now: now, MaxSize: 4096})
		if err != nil {
			t.Fatal(err)
		}
		err = check(t, rc, t.Context(), srv.URL+"/crl")
		wantGrantError(t, err, "could not be checked")
		if !strings.Contains(err.Error(), "byte limit") {
			t.Fatalf("cause %v", err)
		}
	})
}
