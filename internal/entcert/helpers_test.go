package entcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/testpki"
)

func mustRSA(t testing.TB, bits int) *rsa.PrivateKey {
	t.Helper()
	k, err := testpki.RSAKey(bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustEC(t testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := testpki.ECKey(c)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

// noCRLEvents is the part of an Observer that a test of the caches ignores.
type noCRLEvents struct{}

func (noCRLEvents) CRLFetch(string, CRLOutcome)           {}
func (noCRLEvents) CRLInUse(string, time.Time, time.Time) {}
