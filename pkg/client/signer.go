package client

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"

	"github.com/golang-jwt/jwt/v5"
)

// Signer signs grants: a private key, the JWS algorithm that fits it, and the
// header that tells the server how to find the public key (x5c or kid). Build
// one with CertificateSigner or KeySigner; the zero value is not usable.
type Signer struct {
	key    crypto.Signer
	method *signingMethod
	// header holds x5c or kid.
	header map[string]any
	// chain is the certificate's chain, leaf first; nil for a key signer.
	chain []*x509.Certificate
}

// Algorithm is the JWS alg the signer uses (RS256, ES256 or ES384).
func (s Signer) Algorithm() string {
	if s.method == nil {
		return ""
	}
	return s.method.alg
}

func (s Signer) valid() bool { return s.key != nil && s.method != nil }

// CertificateSigner signs with an enterprise certificate's key and sends the
// chain in the x5c header, leaf first (the leaf alone is fine: the server
// completes the chain from its configured intermediates). The key must match
// the leaf. RSA keys (at least 2048 bits) sign with RS256, P-256 keys with
// ES256, P-384 keys with ES384.
func CertificateSigner(key crypto.Signer, chain []*x509.Certificate) (Signer, error) {
	if key == nil {
		return Signer{}, errors.New("client: certificate signer: no private key")
	}
	if len(chain) == 0 || chain[0] == nil {
		return Signer{}, errors.New("client: certificate signer: no certificate")
	}
	if !publicKeysEqual(key.Public(), chain[0].PublicKey) {
		return Signer{}, errors.New("client: certificate signer: the private key does not match the first certificate (the leaf must come first)")
	}
	m, err := methodFor(key)
	if err != nil {
		return Signer{}, fmt.Errorf("client: certificate signer: %w", err)
	}
	x5c := make([]string, 0, len(chain))
	for i, c := range chain {
		if c == nil {
			return Signer{}, fmt.Errorf("client: certificate signer: certificate %d is nil", i)
		}
		x5c = append(x5c, base64.StdEncoding.EncodeToString(c.Raw))
	}
	return Signer{key: key, method: m, header: map[string]any{"x5c": x5c}, chain: append([]*x509.Certificate(nil), chain...)}, nil
}

// KeySigner signs with a key registered on the client, named by kid.
func KeySigner(key crypto.Signer, kid string) (Signer, error) {
	if key == nil {
		return Signer{}, errors.New("client: key signer: no private key")
	}
	if kid == "" {
		return Signer{}, errors.New("client: key signer: kid is empty")
	}
	m, err := methodFor(key)
	if err != nil {
		return Signer{}, fmt.Errorf("client: key signer: %w", err)
	}
	return Signer{key: key, method: m, header: map[string]any{"kid": kid}}, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// methodFor picks the algorithm from the public key, so crypto.Signer
// implementations backed by an HSM or a cloud KMS work as well as in-memory
// keys.
func methodFor(key crypto.Signer) (*signingMethod, error) {
	switch pub := key.Public().(type) {
	case *rsa.PublicKey:
		if pub.N.BitLen() < 2048 {
			return nil, fmt.Errorf("RSA key of %d bits; at least 2048 are required", pub.N.BitLen())
		}
		return &signingMethod{alg: "RS256", hash: crypto.SHA256}, nil
	case *ecdsa.PublicKey:
		switch pub.Curve {
		case elliptic.P256():
			return &signingMethod{alg: "ES256", hash: crypto.SHA256, ecSize: 32}, nil
		case elliptic.P384():
			return &signingMethod{alg: "ES384", hash: crypto.SHA384, ecSize: 48}, nil
		}
		return nil, fmt.Errorf("EC curve %s is not supported (use P-256 or P-384)", pub.Curve.Params().Name)
	}
	return nil, fmt.Errorf("key type %T is not supported (use RSA or ECDSA P-256/P-384)", key.Public())
}

// signingMethod is a jwt.SigningMethod over any crypto.Signer. golang-jwt's
// own methods want *rsa.PrivateKey or *ecdsa.PrivateKey, which would shut out
// hardware-backed keys.
type signingMethod struct {
	alg    string
	hash   crypto.Hash
	ecSize int // bytes per coordinate for ECDSA; 0 for RSA
}

var _ jwt.SigningMethod = (*signingMethod)(nil)

func (m *signingMethod) Alg() string { return m.alg }

func (m *signingMethod) Verify(string, []byte, any) error {
	return errors.New("client: signing method cannot verify")
}

func (m *signingMethod) Sign(signingString string, key any) ([]byte, error) {
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("client: key %T is not a crypto.Signer", key)
	}
	h := m.hash.New()
	h.Write([]byte(signingString))
	sig, err := s.Sign(rand.Reader, h.Sum(nil), m.hash)
	if err != nil {
		return nil, err
	}
	if m.ecSize == 0 {
		return sig, nil
	}
	// crypto.Signer returns ASN.1 DER for ECDSA; JWS wants r||s (RFC 7518 3.4).
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(sig, &rs); err != nil {
		return nil, fmt.Errorf("client: ECDSA signature: %w", err)
	}
	out := make([]byte, 2*m.ecSize)
	rs.R.FillBytes(out[:m.ecSize])
	rs.S.FillBytes(out[m.ecSize:])
	return out, nil
}
