package signer

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
)

// KEKSize is the length of a key-encryption key: AES-256.
const KEKSize = 32

// KEKEnv is the environment variable that holds the key-encryption key
// (base64), preferred to signing.kek_file.
const KEKEnv = "PORTVAKT_SIGNING_KEK"

// ErrWrongKEK: a stored signing key does not open under the configured
// key-encryption key (another KEK sealed it, or the record was altered).
var ErrWrongKEK = errors.New("signer: a stored signing key does not open with this key-encryption key (wrong PORTVAKT_SIGNING_KEK or signing.kek_file?)")

// KEK seals and opens the private parts of stored signing keys with
// AES-256-GCM. The kid is the additional data, so a sealed key moved to
// another record does not open.
type KEK struct {
	aead cipher.AEAD
}

// NewKEK makes a KEK of exactly KEKSize bytes.
func NewKEK(key []byte) (*KEK, error) {
	if len(key) != KEKSize {
		return nil, fmt.Errorf("signer: a key-encryption key is %d bytes, got %d", KEKSize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("signer: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("signer: %w", err)
	}
	return &KEK{aead: aead}, nil
}

// ParseKEK reads a base64 (standard or URL, padded or not) KEK.
func ParseKEK(s string) (*KEK, error) {
	s = strings.TrimSpace(s)
	if len(s) > 4*KEKSize {
		return nil, fmt.Errorf("signer: a key-encryption key is %d bytes in base64", KEKSize)
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return NewKEK(b)
		}
	}
	return nil, errors.New("signer: the key-encryption key is not base64")
}

// LoadKEK finds the configured KEK: the environment value env (from
// KEKEnv) when set, else the file (its content base64). Neither: nil, nil.
func LoadKEK(env, file string) (*KEK, error) {
	if env != "" {
		k, err := ParseKEK(env)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", KEKEnv, err)
		}
		return k, nil
	}
	if file == "" {
		return nil, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("signing.kek_file: %w", err)
	}
	k, err := ParseKEK(string(b))
	if err != nil {
		return nil, fmt.Errorf("signing.kek_file: %s: %w", file, err)
	}
	return k, nil
}

// Seal encrypts priv (PKCS#8) for the record kid: nonce || ciphertext.
func (k *KEK) Seal(kid string, priv crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("signer: seal %s: %w", kid, err)
	}
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(der)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return k.aead.Seal(nonce, nonce, der, []byte(kid)), nil
}

// maxSealed bounds what Open decrypts: an RSA-4096 PKCS#8 key is under 2.5 KiB.
const maxSealed = 8 << 10

// Open decrypts what Seal made for kid; ErrWrongKEK when it does not open,
// ErrKeyInHSM when sealed is a reference to a key in an HSM.
func (k *KEK) Open(kid string, sealed []byte) (crypto.Signer, error) {
	if IsReference(sealed) {
		return nil, fmt.Errorf("signing key %s: %w", kid, ErrKeyInHSM)
	}
	if len(sealed) < k.aead.NonceSize()+k.aead.Overhead() || len(sealed) > maxSealed {
		return nil, fmt.Errorf("signer: signing key %s: sealed private key of %d bytes: %w", kid, len(sealed), ErrWrongKEK)
	}
	n := k.aead.NonceSize()
	der, err := k.aead.Open(nil, sealed[:n], sealed[n:], []byte(kid))
	if err != nil {
		return nil, fmt.Errorf("signer: signing key %s: %w", kid, ErrWrongKEK)
	}
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("signer: signing key %s: %w", kid, err)
	}
	s, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("signer: signing key %s: unsupported key type %T", kid, priv)
	}
	return s, nil
}
