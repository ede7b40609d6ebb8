package dpop

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"sync"
	"time"
)

// MinNonceSecret is the shortest secret Nonces accept.
const MinNonceSecret = 32

// Nonces are stateless server nonces (RFC 9449 section 8): a nonce names a
// time window of length Period and carries an HMAC of it under a secret.
// One is valid during its window and the next, so a client that got it just
// before the window turned still has a whole Period to use it. Replicas
// that share the secret (and roughly the clock) accept each other's nonces;
// nothing is stored. Nonces is safe for concurrent use.
type Nonces struct {
	secret []byte
	period time.Duration
	now    func() time.Time

	mu      sync.Mutex
	window  int64
	current string
}

// NewNonces makes Nonces from secret (at least MinNonceSecret bytes; nil
// makes a random one, so only this process accepts its nonces), windows of
// period (default 5 min) and the clock now (default time.Now).
func NewNonces(secret []byte, period time.Duration, now func() time.Time) (*Nonces, error) {
	if secret == nil {
		secret = make([]byte, MinNonceSecret)
		if _, err := rand.Read(secret); err != nil {
			return nil, err
		}
	}
	if len(secret) < MinNonceSecret {
		return nil, errors.New("dpop: the nonce secret must have at least 32 bytes")
	}
	if period < 0 {
		return nil, errors.New("dpop: the nonce period must not be negative")
	}
	if period == 0 {
		period = 5 * time.Minute
	}
	if now == nil {
		now = time.Now
	}
	return &Nonces{secret: append([]byte(nil), secret...), period: period, now: now, window: -1}, nil
}

func (n *Nonces) windowAt(t time.Time) int64 { return t.UnixNano() / int64(n.period) }

func (n *Nonces) mac(w int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(w))
	h := hmac.New(sha256.New, n.secret)
	h.Write([]byte("portvakt dpop nonce\x00"))
	h.Write(b[:])
	return h.Sum(nil)[:16]
}

// Current is the nonce of the current window (the DPoP-Nonce header).
func (n *Nonces) Current() string {
	w := n.windowAt(n.now())
	n.mu.Lock()
	defer n.mu.Unlock()
	if w != n.window {
		var b [24]byte
		binary.BigEndian.PutUint64(b[:8], uint64(w))
		copy(b[8:], n.mac(w))
		n.window, n.current = w, base64.RawURLEncoding.EncodeToString(b[:])
	}
	return n.current
}

// Valid reports whether s is a nonce of the current or the previous window.
func (n *Nonces) Valid(s string) bool {
	if len(s) != 32 {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != 24 {
		return false
	}
	w := int64(binary.BigEndian.Uint64(b[:8]))
	cur := n.windowAt(n.now())
	if w != cur && w != cur-1 {
		return false
	}
	return hmac.Equal(b[8:], n.mac(w))
}
