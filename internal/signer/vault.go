package signer

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
)

// Vault keeps the private parts of the signing keys kept in the store. A
// KEK seals each into the store; an HSM (package hsm) keeps each in its
// token, and the store keeps a reference to it (see IsReference).
type Vault interface {
	// Generate makes a key for alg whose private part the vault keeps, and
	// returns it with what the store keeps of that private part.
	Generate(alg string) (*Key, []byte, error)
	// Open is the private part of the stored key kid, from what the store
	// kept of it.
	Open(kid string, kept []byte) (crypto.Signer, error)
}

// ReferencePrefix starts what the store keeps of a key held in an HSM: an
// RFC 7512 PKCS#11 URI naming the key in the token, never key material.
// What a KEK seals starts with a random nonce instead.
const ReferencePrefix = "pkcs11:"

// IsReference reports whether kept names a key held in an HSM rather than
// holding a sealed one.
func IsReference(kept []byte) bool { return bytes.HasPrefix(kept, []byte(ReferencePrefix)) }

// ErrKeyInHSM: a stored signing key lives in a PKCS#11 token, and this
// process has no PKCS#11 configured to reach it.
var ErrKeyInHSM = errors.New("signer: a stored signing key lives in a PKCS#11 token; configure signing.pkcs11 (in a build with -tags pkcs11)")

// ErrSealedKey: a stored signing key is sealed under a key-encryption key,
// and this process has none, only an HSM.
var ErrSealedKey = errors.New("signer: a stored signing key is sealed under a key-encryption key; set PORTVAKT_SIGNING_KEK or signing.kek_file next to signing.pkcs11 until it has left the store")

// Generate makes a fresh key for alg and seals it (a Vault).
func (k *KEK) Generate(alg string) (*Key, []byte, error) {
	key, err := Generate(alg)
	if err != nil {
		return nil, nil, err
	}
	sealed, err := k.Seal(key.ID, key.Private)
	if err != nil {
		return nil, nil, err
	}
	return key, sealed, nil
}

// Vaults makes new keys in primary (an HSM) and opens each stored key where
// it lives: a reference in primary, a sealed key with sealed (nil when there
// is no KEK). This is how a deployment moves from a KEK to an HSM: the
// sealed keys keep working until rotation has replaced them.
func Vaults(primary Vault, sealed *KEK) Vault {
	return vaults{primary: primary, sealed: sealed}
}

type vaults struct {
	primary Vault
	sealed  *KEK
}

func (v vaults) Generate(alg string) (*Key, []byte, error) { return v.primary.Generate(alg) }

func (v vaults) Open(kid string, kept []byte) (crypto.Signer, error) {
	if IsReference(kept) {
		return v.primary.Open(kid, kept)
	}
	if v.sealed == nil {
		return nil, fmt.Errorf("signing key %s: %w", kid, ErrSealedKey)
	}
	return v.sealed.Open(kid, kept)
}
