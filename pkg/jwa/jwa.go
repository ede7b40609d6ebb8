package jwa

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"slices"
)

// MinRSABits is the shortest RSA modulus an algorithm on the list fits.
const MinRSABits = 2048

var (
	rsaAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	ecAlgorithms  = []string{"ES256", "ES384"}
)

// Algorithms returns the allow-list: every RSA algorithm, then every ECDSA
// one. The slice is the caller's own.
func Algorithms() []string {
	return slices.Concat(rsaAlgorithms, ecAlgorithms)
}

// Allowed reports whether alg is on the list (case matters, as in JOSE).
func Allowed(alg string) bool {
	return slices.Contains(rsaAlgorithms, alg) || slices.Contains(ecAlgorithms, alg)
}

// ForKey returns the algorithms on the list that key verifies: every RSA
// one for an RSA key of at least MinRSABits, ES256 for a P-256 key, ES384
// for a P-384 key, and none for any other key (private keys included). The
// slice is the caller's own.
func ForKey(key crypto.PublicKey) []string {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N != nil && k.N.BitLen() >= MinRSABits {
			return slices.Clone(rsaAlgorithms)
		}
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return []string{"ES256"}
		case elliptic.P384():
			return []string{"ES384"}
		}
	}
	return nil
}

// Fits reports whether alg is on the list and key verifies it.
func Fits(alg string, key crypto.PublicKey) bool {
	return slices.Contains(ForKey(key), alg)
}
