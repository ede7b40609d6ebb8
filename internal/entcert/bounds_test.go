package entcert

import (
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/testpki"
)

func fakeRSA(t testing.TB, bits, e int) any {
	t.Helper()
	k, err := testpki.FakeRSAKey(bits, e, false)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// caFor is a CA certificate for pub under the fixture's root (the
// intermediate has path length 0, so it cannot issue CAs).
func (f *fixture) caFor(pub any) *x509.Certificate {
	f.t.Helper()
	c, err := f.pki.Root.SubCAFor("Sub CA", pub, f.now, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func TestKeyBounds(t *testing.T) {
	f := newFixture(t)
	leaf := f.leaf(testpki.LeafOptions{})
	p521, err := f.pki.Root.SubCAWithKey("P-521 CA", f.now, mustEC(t, elliptic.P521()), nil)
	if err != nil {
		t.Fatal(err)
	}
	leafOfP521, err := p521.Leaf(testpki.LeafOptions{Org: goodOrg, Key: mustEC(t, elliptic.P256())}, f.now)
	if err != nil {
		t.Fatal(err)
	}
	elsewhere, err := testpki.New("Elsewhere")
	if err != nil {
		t.Fatal(err)
	}
	// A CA of another PKI under the very names of the trusted one: it
	// claims the trusted root as its issuer, but the root never signed it.
	impostor := newFixture(t)

	for _, c := range []struct {
		name    string
		chain   [][]byte
		wantErr string
	}{
		{name: "ok/p521-intermediate", chain: ders(leafOfP521.Chain...)},
		{name: "ok/unrelated-ca-ignored", chain: ders(leaf.Cert, f.pki.Intermediate.Cert, elsewhere.Intermediate.Cert, elsewhere.Root.Cert)},
		{name: "ok/configured-certificates-sent-again", chain: ders(leaf.Cert, f.pki.Intermediate.Cert, f.pki.Root.Cert, f.pki.Intermediate.Cert)},
		{
			name:    "fail/oversized-intermediate-key",
			chain:   ders(leaf.Cert, f.caFor(fakeRSA(t, 100000, 65537))),
			wantErr: "Certificate 1 of the x5c header has an RSA key of 100000 bits; at most 8192 are accepted",
		},
		{
			name:    "fail/oversized-key-last",
			chain:   ders(leaf.Cert, f.pki.Intermediate.Cert, f.caFor(fakeRSA(t, 8193, 65537))),
			wantErr: "Certificate 2 of the x5c header has an RSA key of 8193 bits",
		},
		{
			name:    "fail/oversized-leaf-key",
			chain:   ders(f.leaf(testpki.LeafOptions{PublicKey: fakeRSA(t, 16384, 65537)}).Cert),
			wantErr: "Certificate 0 of the x5c header (the leaf) has an RSA key of 16384 bits; at most 8192 are accepted",
		},
		{
			name:    "fail/even-exponent",
			chain:   ders(leaf.Cert, f.caFor(fakeRSA(t, 2048, 65536))),
			wantErr: "public exponent 65536; it must be odd and at least 3",
		},
		{
			name:    "fail/exponent-one",
			chain:   ders(f.leaf(testpki.LeafOptions{PublicKey: fakeRSA(t, 2048, 1)}).Cert),
			wantErr: "(the leaf) has an RSA key with public exponent 1; it must be odd and at least 3",
		},
		{
			name:    "fail/exponent-too-large",
			chain:   ders(leaf.Cert, f.caFor(fakeRSA(t, 2048, 1<<33+1))),
			wantErr: "at most 2147483647 is accepted",
		},
		{
			name: "fail/even-modulus",
			chain: func() [][]byte {
				k, err := testpki.FakeRSAKey(2048, 65537, true)
				if err != nil {
					t.Fatal(err)
				}
				return ders(leaf.Cert, f.caFor(k))
			}(),
			wantErr: "even modulus",
		},
		{
			name:    "fail/short-leaf-key",
			chain:   ders(f.leaf(testpki.LeafOptions{PublicKey: fakeRSA(t, 2047, 65537)}).Cert),
			wantErr: "has 2047 bits; at least 2048 are required",
		},
		{
			name:    "fail/p521-leaf",
			chain:   ders(f.leaf(testpki.LeafOptions{Key: mustEC(t, elliptic.P521())}).Cert),
			wantErr: "EC on P-256 or P-384",
		},
		{
			name:    "fail/too-many-elements",
			chain:   ders(leaf.Cert, f.pki.Intermediate.Cert, manyNames(t, f, 600)),
			wantErr: "Certificate 2 of the x5c header brings the x5c header over 2000 ASN.1 elements",
		},
		{
			name:    "fail/forged-intermediate",
			chain:   ders(leaf.Cert, impostor.pki.Intermediate.Cert),
			wantErr: "certificate 1 of the x5c header names a trusted CA as its issuer but is not signed by it",
		},
		{
			name:    "fail/leaf-of-forged-intermediate",
			chain:   ders(impostor.leaf(testpki.LeafOptions{}).Cert),
			wantErr: "does not chain to a trusted CA",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := f.verifier(f.policy())
			id, err := v.Verify(t.Context(), c.chain)
			if c.wantErr != "" {
				wantGrantError(t, err, c.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if id.Org != goodOrg {
				t.Fatalf("org %q", id.Org)
			}
		})
	}
}

// manyNames is a CA certificate whose subject holds n attributes (four
// ASN.1 elements each), signed by the fixture's root.
func manyNames(t *testing.T, f *fixture, n int) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), NotBefore: f.now.Add(-time.Hour), NotAfter: f.now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	for range n {
		tmpl.Subject.ExtraNames = append(tmpl.Subject.ExtraNames, pkix.AttributeTypeAndValue{Type: asn1.ObjectIdentifier{2, 5, 4, 11}, Value: "unit"})
	}
	k := mustEC(t, elliptic.P256())
	der, err := x509.CreateCertificate(rand.Reader, tmpl, f.pki.Root.Cert, k.Public(), f.pki.Root.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCountElements(t *testing.T) {
	for _, c := range []struct {
		name string
		der  []byte
		want int
	}{
		{"ok/empty", nil, 0},
		{"ok/integer", []byte{0x02, 0x01, 0x05}, 1},
		{"ok/sequence-of-two", []byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02}, 3},
		{"ok/octet-string-holding-der", []byte{0x04, 0x05, 0x30, 0x03, 0x02, 0x01, 0x01}, 3},
		{"ok/long-length", append([]byte{0x04, 0x81, 0x80}, make([]byte, 128)...), 65},
		{"fail/truncated-counts-prefix", []byte{0x30, 0x06, 0x02, 0x01, 0x01}, 0},
		{"fail/indefinite-length", []byte{0x30, 0x80, 0x00, 0x00}, 0},
		{"fail/high-tag", []byte{0x1f, 0x81, 0x01, 0x00}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := countElements(c.der, 1000); got != c.want {
				t.Fatalf("%d elements, want %d", got, c.want)
			}
		})
	}
	// The budget stops the count early.
	deep := []byte{}
	for range 100 {
		deep = append([]byte{0x30, byte(len(deep))}, deep...)
		if len(deep) > 120 {
			break
		}
	}
	if got := countElements(deep, 10); got > 11 {
		t.Fatalf("counted %d with a budget of 10", got)
	}
}

func TestChainKey(t *testing.T) {
	a, b := []byte{0x30, 1, 2}, []byte{3, 4}
	ab := append(append([]byte(nil), a...), b...)
	keys := map[[32]byte]string{}
	for name, chain := range map[string][][]byte{
		"a,b": {a, b}, "ab": {ab}, "b,a": {b, a}, "a,b,(empty)": {a, b, {}},
	} {
		k := chainKey(chain)
		if other, ok := keys[k]; ok {
			t.Fatalf("chains %s and %s share a key", name, other)
		}
		keys[k] = name
	}
}

// negCounter counts the lookups of the failed-chain cache (an Observer).
type negCounter struct {
	noCRLEvents
	hits, misses atomic.Int32
}

func (c *negCounter) CacheLookup(bool) {}

func (c *negCounter) NegativeLookup(hit bool) {
	if hit {
		c.hits.Add(1)
	} else {
		c.misses.Add(1)
	}
}

func TestNegativeCache(t *testing.T) {
	f := newFixture(t)
	clk := &clock{t: f.now}
	var n negCounter
	p := f.policy()
	p.Now, p.Observer, p.NegativeCacheTTL = clk.Now, &n, time.Minute
	v := f.verifier(p)
	bad := ders(f.leaf(testpki.LeafOptions{}).Cert, f.caFor(fakeRSA(t, 100000, 65537)))

	_, err1 := v.Verify(t.Context(), bad)
	_, err2 := v.Verify(t.Context(), bad)
	wantGrantError(t, err2, "at most 8192 are accepted")
	if err1.Error() == err2.Error() || n.hits.Load() != 1 || n.misses.Load() != 1 {
		t.Fatalf("second lookup: hits %d misses %d; errors %q / %q", n.hits.Load(), n.misses.Load(), err1, err2)
	}
	// The same bytes split differently are another chain.
	joined := [][]byte{append(append([]byte(nil), bad[0]...), bad[1]...)}
	_, err := v.Verify(t.Context(), joined)
	wantGrantError(t, err, "not a valid DER")
	if n.hits.Load() != 1 {
		t.Fatal("a different split of the same bytes hit the cache")
	}
	// Lapsed after the TTL: the work is done again.
	clk.Set(f.now.Add(time.Minute))
	_, err = v.Verify(t.Context(), bad)
	wantGrantError(t, err, "at most 8192 are accepted")
	if n.hits.Load() != 1 {
		t.Fatal("served from the cache after its TTL")
	}
	// A clock set back is not served from the cache either.
	clk.Set(f.now)
	if _, err := v.Verify(t.Context(), bad); err == nil || n.hits.Load() != 1 {
		t.Fatalf("clock set back: %v, hits %d", err, n.hits.Load())
	}
	// A success is never in the negative cache.
	good := ders(f.leaf(testpki.LeafOptions{}).Cert)
	for range 2 {
		if _, err := v.Verify(t.Context(), good); err != nil {
			t.Fatal(err)
		}
	}
}

func TestNegativeCacheNotYetValid(t *testing.T) {
	f := newFixture(t)
	clk := &clock{t: f.now}
	var n negCounter
	p := f.policy()
	p.Now, p.Observer, p.NegativeCacheTTL = clk.Now, &n, time.Hour
	v := f.verifier(p)
	chain := ders(f.leaf(testpki.LeafOptions{NotBefore: f.now.Add(10 * time.Second), NotAfter: f.now.Add(time.Hour)}).Cert)
	_, err := v.Verify(t.Context(), chain)
	wantGrantError(t, err, "not valid yet")
	// Remembered only until it becomes valid, whatever the TTL.
	clk.Set(f.now.Add(10 * time.Second))
	if _, err := v.Verify(t.Context(), chain); err != nil {
		t.Fatalf("once valid: %v (hits %d)", err, n.hits.Load())
	}
}

func TestNegativeCacheBounded(t *testing.T) {
	f := newFixture(t)
	p := f.policy()
	p.NegativeCacheSize = 2
	v := f.verifier(p)
	for range 5 {
		_, err := v.Verify(t.Context(), ders(f.leaf(testpki.LeafOptions{SelfSigned: true}).Cert))
		wantGrantError(t, err, "self-signed")
	}
	if v.neg.len() != 2 {
		t.Fatalf("negative cache holds %d entries, want 2", v.neg.len())
	}
}

func TestNegativeCacheRevocation(t *testing.T) {
	f := newFixture(t)
	srv := newCRLServer(t)
	var n negCounter
	p := f.policy()
	p.Observer = &n
	rc, err := NewCRLChecker(CRLOptions{HTTPClient: srv.Client(), Now: func() time.Time { return f.now }, FailureTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	p.Revocation = rc
	v := f.verifier(p)
	l := f.leaf(testpki.LeafOptions{CRLURLs: []string{srv.URL + "/crl"}})

	// No CRL to be had: transient, never remembered.
	for range 2 {
		_, err := v.Verify(t.Context(), ders(l.Cert))
		wantGrantError(t, err, "could not be checked")
	}
	if n.hits.Load() != 0 {
		t.Fatal("an unknown revocation status was served from the negative cache")
	}
	// Revoked: the chain's own fault, remembered.
	crl, err := f.pki.Intermediate.CRL(f.now, l.Cert.SerialNumber)
	if err != nil {
		t.Fatal(err)
	}
	srv.set(crl)
	for range 2 {
		_, err := v.Verify(t.Context(), ders(l.Cert))
		wantGrantError(t, err, "has been revoked")
	}
	if n.hits.Load() != 1 {
		t.Fatalf("revoked chain: %d negative hits, want 1", n.hits.Load())
	}
}
