package tokenendpoint_test

import (
	"crypto"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/entcert"
	"github.com/portvakt/portvakt/internal/exchange"
	"github.com/portvakt/portvakt/internal/pgtest"
	"github.com/portvakt/portvakt/internal/server"
	"github.com/portvakt/portvakt/internal/store/sqlstore"
	"github.com/portvakt/portvakt/internal/testpki"
	"github.com/portvakt/portvakt/internal/tokenendpoint"
)

// storeConfig is a fresh database of the named engine. PostgreSQL needs
// PORTVAKT_TEST_POSTGRES_DSN: without it the test skips, loudly, and under
// CI it fails.
func storeConfig(t *testing.T, engine string) sqlstore.Config {
	t.Helper()
	if engine == "sqlite" {
		return sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: filepath.Join(t.TempDir(), "portvakt.db")}
	}
	return sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: pgtest.FreshSchema(t, pgtest.DSN(t))}
}

// certEnvOptions shape the server of newCertEnv.
type certEnvOptions struct {
	engine string // "sqlite" or "postgres"
	// policy adjusts the trust policy (revocation, hooks).
	policy func(*entcert.Policy)
	// requestTimeout bounds each request (the server's default otherwise).
	requestTimeout time.Duration
}

// newCertEnv is newEnv with a trust policy of the test's own and a store of
// either engine: the server under test for hostile certificate chains.
func newCertEnv(t *testing.T, o certEnvOptions) *env {
	t.Helper()
	pki, ids, keys := fixtures(t)
	c := &clock{t: time.Now().Truncate(time.Second)}
	db, st, cache := openStore(t, storeConfig(t, o.engine), records(t, ids, c.Now()))
	p := entcert.Policy{Roots: []*x509.Certificate{pki.Root.Cert}, Intermediates: []*x509.Certificate{pki.Intermediate.Cert}, Now: c.Now}
	if o.policy != nil {
		o.policy(&p)
	}
	certs, err := entcert.NewVerifier(p)
	if err != nil {
		t.Fatal(err)
	}
	ex := exchange.New(exchange.Config{Issuer: issuer, Now: c.Now}, cache, certs, db, keys)
	logs := &logBuffer{}
	h, err := server.Public{
		Issuer: issuer, Token: tokenendpoint.New(ex, tokenendpoint.Config{}), JWKS: keys.JWKS,
		Log: slog.New(slog.NewJSONHandler(logs, nil)), RequestTimeout: o.requestTimeout,
	}.Handler()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, clock: c, db: db, store: st, cache: cache, keys: keys, handler: h, pki: pki, ids: ids, logs: logs}
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	return e
}

// certIdentity is the consumer's certificate client sending chain as its
// x5c, signing with key (which need not match the leaf: a hostile chain is
// refused before the signature is looked at).
func certIdentity(e *env, key crypto.Signer, chain ...[]byte) *identity {
	x5c := make([]string, len(chain))
	for i, der := range chain {
		x5c[i] = base64.StdEncoding.EncodeToString(der)
	}
	return &identity{clientID: e.ids["consumer-seid2"].clientID, key: key, x5c: x5c}
}

// wantRefused asserts a 400 invalid_grant naming the problem, and no token.
func wantRefused(t *testing.T, e *env, r response, want string) {
	t.Helper()
	if r.status != http.StatusBadRequest || r.code() != "invalid_grant" || !strings.Contains(r.desc(), want) {
		t.Fatalf("got %d %s, want 400 invalid_grant with %q", r.status, r.raw, want)
	}
	if n := e.issued(); n != 0 {
		t.Fatalf("%d tokens issued", n)
	}
}

var (
	bigCAOnce sync.Once
	bigCA     *testpki.CA
	bigCAErr  error
)

// caOf8192 is a real CA with an 8192-bit RSA key under the shared root,
// made once per test binary (a fast multi-prime key: about a second).
func caOf8192(t *testing.T, pki *testpki.PKI) *testpki.CA {
	t.Helper()
	bigCAOnce.Do(func() {
		var k *rsa.PrivateKey
		if k, bigCAErr = testpki.RSAKeyFast(8192); bigCAErr == nil {
			bigCA, bigCAErr = pki.Root.SubCAWithKey("Test 8192 CA", time.Now(), k, nil)
		}
	})
	if bigCAErr != nil {
		t.Fatal(bigCAErr)
	}
	return bigCA
}

func mustFakeRSA(t *testing.T, bits, e int) *rsa.PublicKey {
	t.Helper()
	k, err := testpki.FakeRSAKey(bits, e, false)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestHostileX5C is issue 14 class 1: every key of a sent chain is bounded
// before any signature in it is verified, a forged chain never gets an
// attacker's key used, and a failing chain sent again is answered from the
// negative cache.
func TestHostileX5C(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) { testHostileX5C(t, engine) })
	}
}

func testHostileX5C(t *testing.T, engine string) {
	pki, _, _ := fixtures(t)
	now := time.Now()
	leafKey, err := testpki.ECKey(elliptic.P256())
	if err != nil {
		t.Fatal(err)
	}
	signKey, err := testpki.RSAKey(2048) // signs assertions whose leaf has no private key
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := pki.Leaf(testpki.LeafOptions{Org: consumerOrg, Key: leafKey})
	if err != nil {
		t.Fatal(err)
	}
	caFor := func(t *testing.T, pub crypto.PublicKey) []byte {
		t.Helper()
		c, err := pki.Root.SubCAFor("Hostile CA", pub, now, 0)
		if err != nil {
			t.Fatal(err)
		}
		return c.Raw
	}
	leafFor := func(t *testing.T, pub crypto.PublicKey) []byte {
		t.Helper()
		l, err := pki.Leaf(testpki.LeafOptions{Org: consumerOrg, Key: leafKey, PublicKey: pub})
		if err != nil {
			t.Fatal(err)
		}
		return l.Cert.Raw
	}

	for _, c := range []struct {
		name  string
		key   crypto.Signer
		chain func(t *testing.T) [][]byte
		want  string // "" = a token
	}{
		{
			name: "ok/x5c/8192-bit-intermediate",
			key:  leafKey,
			chain: func(t *testing.T) [][]byte {
				ca := caOf8192(t, pki)
				l, err := ca.Leaf(testpki.LeafOptions{Org: consumerOrg, Key: leafKey}, now)
				if err != nil {
					t.Fatal(err)
				}
				return [][]byte{l.Cert.Raw, ca.Cert.Raw}
			},
		},
		{
			name:  "fail/x5c/oversized-intermediate-key",
			key:   leafKey,
			chain: func(t *testing.T) [][]byte { return [][]byte{leaf.Cert.Raw, caFor(t, mustFakeRSA(t, 100000, 65537))} },
			want:  "Certificate 1 of the x5c header has an RSA key of 100000 bits; at most 8192 are accepted",
		},
		{
			name:  "fail/x5c/oversized-leaf-key",
			key:   signKey,
			chain: func(t *testing.T) [][]byte { return [][]byte{leafFor(t, mustFakeRSA(t, 16384, 65537))} },
			want:  "Certificate 0 of the x5c header (the leaf) has an RSA key of 16384 bits; at most 8192 are accepted",
		},
		{
			name:  "fail/x5c/even-exponent",
			key:   leafKey,
			chain: func(t *testing.T) [][]byte { return [][]byte{leaf.Cert.Raw, caFor(t, mustFakeRSA(t, 4096, 65536))} },
			want:  "Certificate 1 of the x5c header has an RSA key with public exponent 65536; it must be odd and at least 3",
		},
		{
			name:  "fail/x5c/exponent-one",
			key:   signKey,
			chain: func(t *testing.T) [][]byte { return [][]byte{leafFor(t, mustFakeRSA(t, 2048, 1))} },
			want:  "(the leaf) has an RSA key with public exponent 1; it must be odd and at least 3",
		},
		{
			name:  "fail/x5c/short-leaf-key",
			key:   signKey,
			chain: func(t *testing.T) [][]byte { return [][]byte{leafFor(t, mustFakeRSA(t, 1024, 65537))} },
			want:  "RSA key has 1024 bits; at least 2048 are required",
		},
		{
			name: "fail/x5c/forged-intermediate",
			key:  leafKey,
			chain: func(t *testing.T) [][]byte {
				// Another PKI under the trusted one's names.
				impostor, err := testpki.New("Test")
				if err != nil {
					t.Fatal(err)
				}
				return [][]byte{leaf.Cert.Raw, impostor.Intermediate.Cert.Raw}
			},
			want: "certificate 1 of the x5c header names a trusted CA as its issuer but is not signed by it",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newCertEnv(t, certEnvOptions{engine: engine})
			id := certIdentity(e, c.key, c.chain(t)...)
			r := e.grant(e.sign(id, e.claims(id, "demo:read"), nil))
			if c.want != "" {
				wantRefused(t, e, r, c.want)
				return
			}
			if r.status != http.StatusOK || e.issued() != 1 {
				t.Fatalf("%d %s", r.status, r.raw)
			}
		})
	}

	t.Run("fail/x5c/negative-cache-repeat", func(t *testing.T) {
		var neg negLookups
		hits, misses := &neg.hits, &neg.misses
		e := newCertEnv(t, certEnvOptions{engine: engine, policy: func(p *entcert.Policy) {
			p.Observer = &neg
		}})
		id := certIdentity(e, leafKey, leaf.Cert.Raw, caFor(t, mustFakeRSA(t, 100000, 65537)))
		const want = "Certificate 1 of the x5c header has an RSA key of 100000 bits"
		first := e.grant(e.sign(id, e.claims(id, "demo:read"), nil))
		wantRefused(t, e, first, want)
		if hits.Load() != 0 || misses.Load() != 1 {
			t.Fatalf("first sight: %d hits, %d misses", hits.Load(), misses.Load())
		}
		// A new assertion around the same chain: answered from the cache,
		// with the same description.
		second := e.grant(e.sign(id, e.claims(id, "demo:read"), nil))
		wantRefused(t, e, second, want)
		if hits.Load() != 1 || misses.Load() != 1 {
			t.Fatalf("repeat: %d hits, %d misses", hits.Load(), misses.Load())
		}
		if trimTrace(first.desc()) != trimTrace(second.desc()) {
			t.Fatalf("descriptions differ: %q / %q", first.desc(), second.desc())
		}
	})
}

// trimTrace drops the "(request_id: ...)" that ends every description.
func trimTrace(s string) string {
	if i := strings.LastIndex(s, " (request_id:"); i >= 0 {
		return s[:i]
	}
	return s
}

// TestHostileCRL is issue 14 class 7 through the token endpoint: a CRL
// server that redirects elsewhere, hangs or fails costs the request no more
// than its deadline, is asked once per failure TTL, and gets no token.
func TestHostileCRL(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) { testHostileCRL(t, engine) })
	}
}

func testHostileCRL(t *testing.T, engine string) {
	pki, _, _ := fixtures(t)
	leafKey, err := testpki.ECKey(elliptic.P256())
	if err != nil {
		t.Fatal(err)
	}
	crl, err := pki.Intermediate.CRL(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// serve answers every path with h and counts the requests.
	serve := func(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
		var n atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.Add(1); h(w, r) }))
		t.Cleanup(srv.Close)
		return srv, &n
	}
	good := func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(crl) }
	// setup is a server checking revocation, and a client whose leaf names
	// url as its CRL distribution point.
	setup := func(t *testing.T, url string, o certEnvOptions) (*env, *identity) {
		rc, err := entcert.NewCRLChecker(entcert.CRLOptions{})
		if err != nil {
			t.Fatal(err)
		}
		o.engine = engine
		o.policy = func(p *entcert.Policy) { p.Revocation = rc }
		e := newCertEnv(t, o)
		l, err := pki.Leaf(testpki.LeafOptions{Org: consumerOrg, Key: leafKey, CRLURLs: []string{url}})
		if err != nil {
			t.Fatal(err)
		}
		return e, certIdentity(e, leafKey, l.Cert.Raw)
	}
	grant := func(e *env, id *identity) response { return e.grant(e.sign(id, e.claims(id, "demo:read"), nil)) }

	t.Run("ok/x5c/crl-not-revoked", func(t *testing.T) {
		srv, _ := serve(t, good)
		e, id := setup(t, srv.URL+"/crl", certEnvOptions{})
		if r := grant(e, id); r.status != http.StatusOK {
			t.Fatalf("%d %s", r.status, r.raw)
		}
	})
	t.Run("fail/x5c/crl-redirect-to-another-host", func(t *testing.T) {
		other, otherHits := serve(t, good)
		srv, _ := serve(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.URL+"/crl", http.StatusFound)
		})
		e, id := setup(t, srv.URL+"/crl", certEnvOptions{})
		wantRefused(t, e, grant(e, id), "revocation status could not be checked")
		if otherHits.Load() != 0 {
			t.Fatal("the redirect to another host was followed")
		}
	})
	t.Run("fail/x5c/crl-slow-server", func(t *testing.T) {
		// The CRL server answers only when the test ends: the request's
		// deadline alone can end the wait.
		release := make(chan struct{})
		srv, hits := serve(t, func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		})
		t.Cleanup(func() { close(release) })
		e, id := setup(t, srv.URL+"/crl", certEnvOptions{requestTimeout: 300 * time.Millisecond})
		wantRefused(t, e, grant(e, id), "revocation status could not be checked")
		if hits.Load() != 1 {
			t.Fatalf("%d CRL requests, want 1", hits.Load())
		}
	})
	t.Run("fail/x5c/crl-failure-remembered", func(t *testing.T) {
		srv, hits := serve(t, http.NotFound)
		e, id := setup(t, srv.URL+"/crl", certEnvOptions{})
		for range 3 {
			wantRefused(t, e, grant(e, id), "revocation status could not be checked")
		}
		if hits.Load() != 1 {
			t.Fatalf("%d CRL requests within the failure TTL, want 1", hits.Load())
		}
	})
	t.Run("fail/x5c/crl-revoked", func(t *testing.T) {
		var revoked atomic.Pointer[[]byte]
		srv, _ := serve(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(*revoked.Load()) })
		e, id := setup(t, srv.URL+"/crl", certEnvOptions{})
		der, err := base64.StdEncoding.DecodeString(id.x5c[0])
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		b, err := pki.Intermediate.CRL(time.Now(), leaf.SerialNumber)
		if err != nil {
			t.Fatal(err)
		}
		revoked.Store(&b)
		wantRefused(t, e, grant(e, id), "has been revoked")
	})
}

// negLookups counts the failed-chain cache's lookups (an entcert.Observer).
type negLookups struct{ hits, misses atomic.Int32 }

func (*negLookups) CacheLookup(bool)                      {}
func (*negLookups) CRLFetch(string, entcert.CRLOutcome)   {}
func (*negLookups) CRLInUse(string, time.Time, time.Time) {}

func (n *negLookups) NegativeLookup(hit bool) {
	if hit {
		n.hits.Add(1)
	} else {
		n.misses.Add(1)
	}
}
