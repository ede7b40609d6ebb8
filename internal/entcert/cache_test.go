package entcert

import (
	"context"
	"crypto/x509"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/testpki"
)

// clock is a pinned clock that tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

func TestCacheHitDoesNotParse(t *testing.T) {
	f := newFixture(t)
	v := f.verifier(f.policy())
	chain := ders(f.leaf(testpki.LeafOptions{}).Chain...)
	if _, err := v.Verify(t.Context(), chain); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	// Parsing a certificate allocates dozens of objects; a hit allocates none.
	if n := testing.AllocsPerRun(100, func() {
		if _, err := v.Verify(ctx, chain); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("cache hit allocates %v times per call; want 0 (no parsing)", n)
	}
}

func TestCacheHeaderIntermediatesDoNotMatter(t *testing.T) {
	// A leaf verified once with its intermediate in x5c stays verified when
	// it is later sent alone: the verdict depends only on the leaf and the
	// trust config (see Verify).
	f := newFixture(t)
	p := f.policy()
	p.Intermediates = nil
	v := f.verifier(p)
	l := f.leaf(testpki.LeafOptions{})
	if _, err := v.Verify(t.Context(), ders(l.Chain...)); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(t.Context(), ders(l.Cert)); err != nil {
		t.Fatalf("cached leaf sent alone: %v", err)
	}
}

func TestCacheExpiresWithLeaf(t *testing.T) {
	f := newFixture(t)
	clk := &clock{t: f.now}
	p := f.policy()
	p.Now = clk.Now
	v := f.verifier(p)
	l := f.leaf(testpki.LeafOptions{NotAfter: f.now.Add(time.Hour)})
	chain := ders(l.Cert)
	if _, err := v.Verify(t.Context(), chain); err != nil {
		t.Fatal(err)
	}
	clk.Set(f.now.Add(59 * time.Minute))
	if _, err := v.Verify(t.Context(), chain); err != nil {
		t.Fatalf("before NotAfter: %v", err)
	}
	clk.Set(f.now.Add(61 * time.Minute))
	_, err := v.Verify(t.Context(), chain)
	wantGrantError(t, err, "The certificate expired")
	if v.cache.len() != 0 {
		t.Fatal("expired entry still cached")
	}
	// A clock moved back before NotBefore is not served from the cache either.
	clk.Set(f.now)
	if _, err := v.Verify(t.Context(), chain); err != nil {
		t.Fatal(err)
	}
	clk.Set(f.now.Add(-2 * time.Hour))
	_, err = v.Verify(t.Context(), chain)
	wantGrantError(t, err, "not valid yet")
}

// countingChecker counts the calls reaching a real RevocationChecker.
type countingChecker struct {
	RevocationChecker
	n atomic.Int32
}

func (c *countingChecker) Check(ctx context.Context, leaf, issuer *x509.Certificate) error {
	c.n.Add(1)
	return c.RevocationChecker.Check(ctx, leaf, issuer)
}

func TestCacheTTLWithRevocation(t *testing.T) {
	f := newFixture(t)
	clk := &clock{t: f.now}
	srv := newCRLServer(t)
	crl, err := f.pki.Intermediate.CRL(f.now)
	if err != nil {
		t.Fatal(err)
	}
	srv.set(crl)
	rc, err := NewCRLChecker(CRLOptions{HTTPClient: srv.Client(), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	cc := &countingChecker{RevocationChecker: rc}
	p := f.policy()
	p.Now, p.Revocation, p.CacheTTL = clk.Now, cc, 5*time.Minute
	v := f.verifier(p)
	chain := ders(f.leaf(testpki.LeafOptions{CRLURLs: []string{srv.URL + "/crl"}}).Cert)
	for _, step := range []struct {
		at     time.Duration
		checks int32
	}{{0, 1}, {time.Minute, 1}, {4 * time.Minute, 1}, {5 * time.Minute, 2}, {6 * time.Minute, 2}} {
		clk.Set(f.now.Add(step.at))
		if _, err := v.Verify(t.Context(), chain); err != nil {
			t.Fatal(err)
		}
		if got := cc.n.Load(); got != step.checks {
			t.Fatalf("at +%v: %d revocation checks, want %d", step.at, got, step.checks)
		}
	}
	if srv.hits.Load() != 1 {
		t.Fatalf("%d CRL fetches, want 1 (cached until NextUpdate)", srv.hits.Load())
	}
}

func TestCacheBounded(t *testing.T) {
	f := newFixture(t)
	p := f.policy()
	p.CacheSize = 2
	v := f.verifier(p)
	var chains [][][]byte
	for range 3 {
		chains = append(chains, ders(f.leaf(testpki.LeafOptions{}).Cert))
	}
	for _, c := range chains {
		if _, err := v.Verify(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}
	if v.cache.len() != 2 {
		t.Fatalf("cache holds %d entries, want 2", v.cache.len())
	}
	fp := sha256Sum(chains[0][0])
	if _, ok := v.cache.get(fp, f.now); ok {
		t.Fatal("least recently used entry not evicted")
	}
}

func TestVerifyConcurrent(t *testing.T) {
	f := newFixture(t)
	v := f.verifier(f.policy())
	var chains [][][]byte
	for range 4 {
		chains = append(chains, ders(f.leaf(testpki.LeafOptions{}).Cert))
	}
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			for j := range 50 {
				if _, err := v.Verify(t.Context(), chains[(i+j)%len(chains)]); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func benchVerifier(b *testing.B, cacheSize int) (*Verifier, [][]byte) {
	f := newFixture(b)
	p := f.policy()
	p.CacheSize = cacheSize
	v := f.verifier(p)
	// An RSA-2048 leaf with its intermediate: the common real-world shape.
	l := f.leaf(testpki.LeafOptions{Key: mustRSA(b, 2048), Style: testpki.SEID1})
	return v, ders(l.Chain...)
}

func BenchmarkVerifyCached(b *testing.B) {
	v, chain := benchVerifier(b, 0)
	ctx := b.Context()
	if _, err := v.Verify(ctx, chain); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, chain); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyUncached(b *testing.B) {
	v, chain := benchVerifier(b, -1)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, chain); err != nil {
			b.Fatal(err)
		}
	}
}

// lookupLog records what an Observer is told, in order.
type lookupLog struct {
	noCRLEvents
	mu  sync.Mutex
	got []string
}

func (l *lookupLog) add(s string) { l.mu.Lock(); defer l.mu.Unlock(); l.got = append(l.got, s) }

func (l *lookupLog) CacheLookup(hit bool)    { l.add(fmt.Sprintf("cache hit=%v", hit)) }
func (l *lookupLog) NegativeLookup(hit bool) { l.add(fmt.Sprintf("negative hit=%v", hit)) }

func TestObserverIsToldOfEveryLookup(t *testing.T) {
	f := newFixture(t)
	var log lookupLog
	p := f.policy()
	p.Observer = &log
	v := f.verifier(p)
	good := ders(f.leaf(testpki.LeafOptions{}).Chain...)
	bad := ders(f.leaf(testpki.LeafOptions{SelfSigned: true}).Cert)
	for _, chain := range [][][]byte{good, good, bad, bad} {
		_, _ = v.Verify(t.Context(), chain)
	}
	want := "[cache hit=false negative hit=false cache hit=true cache hit=false negative hit=false cache hit=false negative hit=true]"
	if got := fmt.Sprint(log.got); got != want {
		t.Fatalf("observer told %s, want %s", got, want)
	}
}
