package cryptobound

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"
)

// Meter runs the crypto of tokens. Its keys are made once, so samples can be
// short and many. Sample while the server is idle.
type Meter struct {
	signKey   *rsa.PrivateKey
	clientPub *rsa.PublicKey
	sig       []byte // the assertion's signature
	// Typical sizes: a token's signing input and an assertion's.
	token, assertion []byte
}

// NewMeter makes the signing key and a client key with its assertion
// signature.
func NewMeter() (*Meter, error) {
	signKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	clientKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	m := &Meter{signKey: signKey, clientPub: &clientKey.PublicKey, token: make([]byte, 700), assertion: make([]byte, 600)}
	h := sha256.Sum256(m.assertion)
	if m.sig, err = rsa.SignPKCS1v15(rand.Reader, clientKey, crypto.SHA256, h[:]); err != nil {
		return nil, err
	}
	return m, nil
}

// Sample is what one sample paid for: Ops tokens' crypto in Secs.
type Sample struct {
	Ops  int64
	Secs float64
}

// Rate is the sample's tokens per second.
func (s Sample) Rate() float64 { return float64(s.Ops) / s.Secs }

// Pooled is the rate over all samples together: total tokens over total
// seconds, so each sample weighs by its length. No samples give 0.
func Pooled(samples []Sample) float64 {
	var ops int64
	var secs float64
	for _, s := range samples {
		ops += s.Ops
		secs += s.Secs
	}
	if secs == 0 {
		return 0
	}
	return float64(ops) / secs
}

// Range is the smallest and the largest sample rate; ok is false with no
// samples.
func Range(samples []Sample) (lo, hi float64, ok bool) {
	for i, s := range samples {
		r := s.Rate()
		if i == 0 {
			lo, hi = r, r
		}
		lo, hi = min(lo, r), max(hi, r)
	}
	return lo, hi, len(samples) > 0
}

// For runs the crypto on all cores for about d.
func (m *Meter) For(d time.Duration) (Sample, error) {
	var stop atomic.Bool
	timer := time.AfterFunc(d, func() { stop.Store(true) })
	defer timer.Stop()
	return m.run(func(int64) bool { return !stop.Load() })
}

// Ops runs the crypto of exactly n tokens on all cores.
func (m *Meter) Ops(n int) (Sample, error) {
	return m.run(func(taken int64) bool { return taken <= int64(n) })
}

// run has GOMAXPROCS goroutines do one token's crypto at a time while more
// reports true for the count of tokens taken so far (this one included). The
// goroutines carry the pprof label phase=bound, so a profile of a program
// that samples the bound can leave them out.
func (m *Meter) run(more func(taken int64) bool) (Sample, error) {
	var taken, done atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	start := time.Now()
	pprof.Do(context.Background(), pprof.Labels("phase", "bound"), func(context.Context) {
		for range runtime.GOMAXPROCS(0) {
			wg.Go(func() {
				for more(taken.Add(1)) {
					if err := m.token1(); err != nil {
						firstErr.CompareAndSwap(nil, err)
						return
					}
					done.Add(1)
				}
			})
		}
	})
	wg.Wait()
	if e, ok := firstErr.Load().(error); ok {
		return Sample{}, e
	}
	return Sample{Ops: done.Load(), Secs: time.Since(start).Seconds()}, nil
}

// token1 is one token's crypto: sign the token, verify the assertion.
func (m *Meter) token1() error {
	h := sha256.Sum256(m.token)
	if _, err := rsa.SignPKCS1v15(nil, m.signKey, crypto.SHA256, h[:]); err != nil {
		return err
	}
	h = sha256.Sum256(m.assertion)
	return rsa.VerifyPKCS1v15(m.clientPub, crypto.SHA256, h[:], m.sig)
}
