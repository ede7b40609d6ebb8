package entcert

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/portvakt/portvakt/internal/protocol"
)

// Key bounds of docs/protocol.md, checked on every sent certificate before any
// signature in the chain is verified. An RSA verification costs about the
// square of the modulus length times the length of the exponent, so an
// unbounded key lets one request buy seconds of CPU.
const (
	MaxRSABits     = 8192
	MinLeafRSABits = 2048
	// maxRSAExponent is what crypto/rsa accepts at all; a larger exponent
	// would fail later anyway, this says so before any work.
	maxRSAExponent = 1<<31 - 1
	// MaxChainElements bounds the ASN.1 elements of all sent certificates
	// together. Parsing costs per element, not per byte: a 16 KiB
	// certificate of a thousand name attributes or extensions takes
	// crypto/x509 milliseconds, a request's worth of CPU, while a real
	// enterprise certificate holds 150 to 300 elements and a whole chain
	// rarely 800.
	MaxChainElements = 2000
)

// parseChain parses every sent certificate and checks its key against the
// bounds. It does no signature work.
func parseChain(chain [][]byte) ([]*x509.Certificate, error) {
	budget := MaxChainElements
	for i, der := range chain {
		budget -= countElements(der, budget)
		if budget < 0 {
			return nil, protocol.InvalidGrant("%s brings the x5c header over %d ASN.1 elements; real certificate chains hold far fewer", certName(i), MaxChainElements).
				WithCause(fmt.Errorf("x5c[%d]: element budget exhausted", i))
		}
	}
	certs := make([]*x509.Certificate, len(chain))
	for i, der := range chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			if i == 0 {
				return nil, protocol.InvalidGrant("The first certificate of the x5c header (the leaf) is not a valid DER X.509 certificate").WithCause(err)
			}
			return nil, protocol.InvalidGrant("Certificate %d of the x5c header is not a valid DER X.509 certificate", i).WithCause(err)
		}
		if err := checkKeyBounds(i, c); err != nil {
			return nil, err
		}
		certs[i] = c
	}
	return certs, nil
}

// certName names certificate i of an x5c header in a description.
func certName(i int) string {
	if i == 0 {
		return "Certificate 0 of the x5c header (the leaf)"
	}
	return fmt.Sprintf("Certificate %d of the x5c header", i)
}

// checkKeyBounds refuses a key that is costly to use or not a key at all.
// The leaf (i == 0) signs the assertion, so it is held to docs/protocol.md's
// algorithms: RSA of at least 2048 bits or EC on P-256 or P-384. A CA
// certificate may also carry P-521 or Ed25519: its key is used only after a
// trusted key has vouched for it (see Verifier.pool), so an attacker cannot
// choose it, and a P-521 verification costs less than an 8192-bit RSA one.
func checkKeyBounds(i int, c *x509.Certificate) error {
	name := certName(i)
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		bits := k.N.BitLen()
		switch {
		case bits > MaxRSABits:
			return protocol.InvalidGrant("%s has an RSA key of %d bits; at most %d are accepted", name, bits, MaxRSABits).
				WithCause(fmt.Errorf("x5c[%d]: RSA modulus of %d bits", i, bits))
		case k.E < 3 || k.E&1 == 0:
			return protocol.InvalidGrant("%s has an RSA key with public exponent %d; it must be odd and at least 3", name, k.E).
				WithCause(fmt.Errorf("x5c[%d]: RSA exponent %d", i, k.E))
		case k.E > maxRSAExponent:
			return protocol.InvalidGrant("%s has an RSA key with public exponent %d; at most %d is accepted", name, k.E, maxRSAExponent).
				WithCause(fmt.Errorf("x5c[%d]: RSA exponent %d", i, k.E))
		case k.N.Bit(0) == 0:
			return protocol.InvalidGrant("%s has an RSA key with an even modulus, which is not an RSA key", name).
				WithCause(fmt.Errorf("x5c[%d]: even RSA modulus", i))
		case i == 0 && bits < MinLeafRSABits:
			return protocol.InvalidGrant("The certificate's RSA key has %d bits; at least %d are required", bits, MinLeafRSABits).
				WithCause(errors.New("short RSA key"))
		}
		return nil
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() || k.Curve == elliptic.P384() || (i > 0 && k.Curve == elliptic.P521()) {
			return nil
		}
	case ed25519.PublicKey:
		if i > 0 {
			return nil
		}
	}
	if i == 0 {
		return protocol.InvalidGrant("The certificate's key must be RSA (at least 2048 bits) or EC on P-256 or P-384").
			WithCause(fmt.Errorf("leaf key type %T", c.PublicKey))
	}
	return protocol.InvalidGrant("%s has a %s key; a CA certificate must carry an RSA, EC (P-256, P-384, P-521) or Ed25519 key", name, keyKind(c)).
		WithCause(fmt.Errorf("x5c[%d]: key type %T", i, c.PublicKey))
}

func lowerFirst(s string) string { return strings.ToLower(s[:1]) + s[1:] }

func keyKind(c *x509.Certificate) string {
	if k, ok := c.PublicKey.(*ecdsa.PublicKey); ok {
		return "EC " + k.Curve.Params().Name
	}
	return c.PublicKeyAlgorithm.String()
}

// pool returns the intermediates that x509.Verify may use for this chain:
// the configured ones, and those sent certificates that a trusted key has
// already vouched for.
//
// x509.Verify builds chains from the leaf upwards and checks each signature
// with the key of the candidate issuer, so a chain of the client's own making
// would have it verify signatures with keys the client chose (up to a
// hundred of them, through candidates that share a subject). Here the sent
// certificates are authenticated from the top instead: a sent CA certificate
// enters the pool only once its signature verifies under a configured root or
// intermediate, or under a sent certificate that entered before it. Every
// signature checked here is therefore checked with a key a trusted CA
// chose, and a certificate that names a trusted issuer but is not signed by
// it refuses the chain at once, so a forged chain costs at most one failed
// verification per trusted certificate of that name. A sent certificate that
// names no trusted issuer is left out unverified: it cannot be on a trusted
// chain. The pool only ever holds fewer certificates than the header sent, so
// x509.Verify still makes every decision; this step only keeps attacker
// keys away from it.
func (v *Verifier) pool(sent []*x509.Certificate) (*x509.CertPool, error) {
	seen := make(map[[32]byte]bool, len(sent))
	pending := make([]int, 0, len(sent)) // indexes into sent
	for j, c := range sent {
		fp := sha256.Sum256(c.Raw)
		if v.configured[fp] || seen[fp] {
			continue // already trusted, or sent twice
		}
		seen[fp] = true
		// crypto/x509 never accepts a v3 non-CA as an issuer; a v1 CA is
		// not accepted here (no CA has issued one in decades).
		if !c.BasicConstraintsValid || !c.IsCA {
			continue
		}
		pending = append(pending, j)
	}
	if len(pending) == 0 {
		return v.intermediates, nil
	}
	var pool *x509.CertPool
	added := map[string][]*x509.Certificate{} // by RawSubject
	for progress := true; progress && len(pending) > 0; {
		progress = false
		// An x5c lists each certificate before its issuer (RFC 7515), so
		// the last come first; rounds handle any other order.
		for k := len(pending) - 1; k >= 0; k-- {
			c := sent[pending[k]]
			parents := v.bySubject[string(c.RawIssuer)]
			if more := added[string(c.RawIssuer)]; len(more) > 0 {
				parents = append(append([]*x509.Certificate(nil), parents...), more...)
			}
			if len(parents) == 0 {
				continue
			}
			var errs []error
			for _, p := range parents {
				err := c.CheckSignatureFrom(p)
				if err == nil {
					errs = nil
					break
				}
				errs = append(errs, err)
			}
			if errs != nil {
				return nil, protocol.InvalidGrant("The certificate does not chain to a trusted CA: %s names a trusted CA as its issuer but is not signed by it", lowerFirst(certName(pending[k]+1))).
					WithCause(fmt.Errorf("x5c[%d]: %w", pending[k]+1, errors.Join(errs...)))
			}
			if pool == nil {
				pool = v.intermediates.Clone()
			}
			pool.AddCert(c)
			added[string(c.RawSubject)] = append(added[string(c.RawSubject)], c)
			pending = append(pending[:k], pending[k+1:]...)
			progress = true
		}
	}
	if pool == nil {
		return v.intermediates, nil
	}
	return pool, nil
}

// countElements counts the DER elements in b, descending into constructed
// elements and into OCTET STRINGs (where extension values live, which
// crypto/x509 parses too). It counts at most budget+1 and never fails: the
// well-formed part is counted and the parser refuses the rest.
func countElements(b []byte, budget int) int {
	n := 0
	for len(b) > 0 && n <= budget {
		tag, content, rest, ok := readTLV(b)
		if !ok {
			break
		}
		n++
		if tag&0x20 != 0 || tag == 0x04 { // constructed, or OCTET STRING
			n += countElements(content, budget-n)
		}
		b = rest
	}
	return n
}

// readTLV splits the first DER element (low tag number, definite length of
// at most three length bytes) off b.
func readTLV(b []byte) (tag byte, content, rest []byte, ok bool) {
	if len(b) < 2 || b[0]&0x1f == 0x1f {
		return 0, nil, nil, false
	}
	tag, l := b[0], int(b[1])
	b = b[2:]
	if l&0x80 != 0 {
		n := l & 0x7f
		if n == 0 || n > 3 || len(b) < n {
			return 0, nil, nil, false
		}
		l = 0
		for _, c := range b[:n] {
			l = l<<8 | int(c)
		}
		b = b[n:]
	}
	if l > len(b) {
		return 0, nil, nil, false
	}
	return tag, b[:l], b[l:], true
}
