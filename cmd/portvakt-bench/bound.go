package main

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

// boundMeter measures how many tokens per second this machine's cores can pay
// the server's crypto for: per token one RSA-2048 PKCS#1 v1.5 SHA-256 sign
// (the access token, RS256) and one RS256 verify (the assertion), on
// GOMAXPROCS goroutines. Its keys are made once, so samples can be short and
// many. Sample while the server is idle.
type boundMeter struct {
	signKey   *rsa.PrivateKey
	clientPub *rsa.PublicKey
	sig       []byte // the assertion's signature
	// Typical sizes: a token's signing input and an assertion's.
	token, assertion []byte
}

func newBoundMeter() (*boundMeter, error) {
	signKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	clientKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	m := &boundMeter{signKey: signKey, clientPub: &clientKey.PublicKey, token: make([]byte, 700), assertion: make([]byte, 600)}
	h := sha256.Sum256(m.assertion)
	if m.sig, err = rsa.SignPKCS1v15(rand.Reader, clientKey, crypto.SHA256, h[:]); err != nil {
		return nil, err
	}
	return m, nil
}

// boundSample is what one sample paid for: ops tokens' crypto in secs.
type boundSample struct {
	ops  int64
	secs float64
}

func (s boundSample) rate() float64 { return float64(s.ops) / s.secs }

// pooled is the rate over all samples together: total tokens over total
// seconds, so each sample weighs by its length.
func pooled(samples []boundSample) float64 {
	var ops int64
	var secs float64
	for _, s := range samples {
		ops += s.ops
		secs += s.secs
	}
	if secs == 0 {
		return 0
	}
	return float64(ops) / secs
}

// sample runs the crypto on all cores for about d. Its goroutines carry the
// pprof label phase=bound, so a profile of the tool can leave them out.
func (m *boundMeter) sample(d time.Duration) (boundSample, error) {
	var n atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	var firstErr atomic.Value
	start := time.Now()
	pprof.Do(context.Background(), pprof.Labels("phase", "bound"), func(context.Context) {
		for range runtime.GOMAXPROCS(0) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					h := sha256.Sum256(m.token)
					if _, err := rsa.SignPKCS1v15(nil, m.signKey, crypto.SHA256, h[:]); err != nil {
						firstErr.CompareAndSwap(nil, err)
						return
					}
					h = sha256.Sum256(m.assertion)
					if err := rsa.VerifyPKCS1v15(m.clientPub, crypto.SHA256, h[:], m.sig); err != nil {
						firstErr.CompareAndSwap(nil, err)
						return
					}
					n.Add(1)
				}
			}()
		}
	})
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	if e, ok := firstErr.Load().(error); ok {
		return boundSample{}, e
	}
	return boundSample{ops: n.Load(), secs: time.Since(start).Seconds()}, nil
}
