package main

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// cryptoBound measures how many tokens per second this machine's cores can
// pay the server's crypto for: per token one RSA-2048 PKCS#1 v1.5 SHA-256
// sign (the access token, RS256) and one RS256 verify (the assertion), on
// GOMAXPROCS goroutines. It runs d in samples of half a second and keeps the
// best: other work on the machine only ever lowers a sample, and a high bound
// keeps the ratio conservative. Run it while the server is idle.
func cryptoBound(d time.Duration) (perSecond float64, err error) {
	signKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return 0, err
	}
	clientKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return 0, err
	}
	const sample = 500 * time.Millisecond
	for range max(1, int(d/sample)) {
		r, err := cryptoSample(signKey, clientKey, min(d, sample))
		if err != nil {
			return 0, err
		}
		perSecond = max(perSecond, r)
	}
	return perSecond, nil
}

func cryptoSample(signKey, clientKey *rsa.PrivateKey, d time.Duration) (perSecond float64, err error) {
	// Typical sizes: a token's signing input and an assertion's.
	token := make([]byte, 700)
	assertion := make([]byte, 600)
	ha := sha256.Sum256(assertion)
	sig, err := rsa.SignPKCS1v15(rand.Reader, clientKey, crypto.SHA256, ha[:])
	if err != nil {
		return 0, err
	}
	pub := &clientKey.PublicKey
	var n atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	var firstErr atomic.Value
	start := time.Now()
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				h := sha256.Sum256(token)
				if _, err := rsa.SignPKCS1v15(nil, signKey, crypto.SHA256, h[:]); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				h = sha256.Sum256(assertion)
				if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				n.Add(1)
			}
		}()
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	if e, ok := firstErr.Load().(error); ok {
		return 0, e
	}
	return float64(n.Load()) / time.Since(start).Seconds(), nil
}
