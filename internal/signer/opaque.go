package signer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"github.com/golang-jwt/jwt/v5"
)

// signerMethod is a golang-jwt signing method over any crypto.Signer: an
// HSM's key, say, whose private part the process never holds. golang-jwt's
// own RS256 and ES256 want *rsa.PrivateKey and *ecdsa.PrivateKey; this one
// hashes, asks the signer, and for ES256 turns the ASN.1 signature that
// crypto.Signer returns into the fixed-size r||s of JWS (RFC 7518 3.4).
// Verifying is golang-jwt's own.
type signerMethod struct {
	alg    string
	verify jwt.SigningMethod
}

func newSignerMethod(alg string) *signerMethod {
	return &signerMethod{alg: alg, verify: jwt.GetSigningMethod(alg)}
}

func (m *signerMethod) Alg() string { return m.alg }

func (m *signerMethod) Verify(signingString string, sig []byte, key any) error {
	return m.verify.Verify(signingString, sig, key)
}

func (m *signerMethod) Sign(signingString string, key any) ([]byte, error) {
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("signer: %s signs with a crypto.Signer, not %T", m.alg, key)
	}
	digest := sha256.Sum256([]byte(signingString))
	sig, err := s.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return nil, err
	}
	if m.alg != "ES256" {
		return sig, nil
	}
	return ecdsaRaw(sig, s.Public())
}

// ecdsaRaw turns an ASN.1 ECDSA-Sig-Value into r||s, each the curve's
// size, checking both against the curve order.
func ecdsaRaw(der []byte, pub crypto.PublicKey) ([]byte, error) {
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("signer: ES256 with a %T public key", pub)
	}
	var sig struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(der, &sig); err != nil || len(rest) > 0 {
		return nil, errors.New("signer: the key returned a malformed ECDSA signature")
	}
	n := ec.Curve.Params().N
	if sig.R.Sign() <= 0 || sig.S.Sign() <= 0 || sig.R.Cmp(n) >= 0 || sig.S.Cmp(n) >= 0 {
		return nil, errors.New("signer: the key returned an ECDSA signature out of range")
	}
	size := (ec.Curve.Params().BitSize + 7) / 8
	out := make([]byte, 2*size)
	sig.R.FillBytes(out[:size])
	sig.S.FillBytes(out[size:])
	return out, nil
}
