package signer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/portvakt/portvakt/pkg/resource"
)

// algorithms are what the server signs with: RS256 and ES256, the two every
// verifier of RFC 9068 access tokens knows. The list of what portvakt
// accepts from others (package jwa) is longer.
var algorithms = []string{"RS256", "ES256"}

// Algorithms returns the algorithms the server can sign with, a fresh copy.
func Algorithms() []string { return slices.Clone(algorithms) }

// TokenType is the JOSE typ of the access tokens Sign makes (RFC 9068).
const TokenType = "at+jwt"

// Key is one signing key.
type Key struct {
	ID      string // RFC 7638 thumbprint, base64url
	Alg     string // RS256 or ES256
	Private crypto.Signer
	method  jwt.SigningMethod
}

// NewKey wraps a private key for alg, deriving its kid from the RFC 7638
// thumbprint of its public key.
func NewKey(priv crypto.Signer, alg string) (*Key, error) {
	if !slices.Contains(algorithms, alg) {
		return nil, fmt.Errorf("signer: the server signs with %s, not %q", strings.Join(algorithms, " or "), alg)
	}
	switch k := priv.(type) {
	case *rsa.PrivateKey:
		if alg != "RS256" {
			return nil, fmt.Errorf("signer: an RSA key signs RS256, not %s", alg)
		}
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("signer: RSA key of %d bits; at least 2048 required", k.N.BitLen())
		}
	case *ecdsa.PrivateKey:
		if alg != "ES256" || k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("signer: an EC key must be P-256 for ES256")
		}
	default:
		return nil, fmt.Errorf("signer: unsupported key type %T", priv)
	}
	jwk := jose.JSONWebKey{Key: priv.Public()}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("signer: thumbprint: %w", err)
	}
	return &Key{ID: base64.RawURLEncoding.EncodeToString(tp), Alg: alg, Private: priv, method: jwt.GetSigningMethod(alg)}, nil
}

// Generate makes a fresh key for alg (RSA-2048 for RS256, P-256 for ES256).
func Generate(alg string) (*Key, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case "RS256":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return nil, fmt.Errorf("signer: unsupported algorithm %q", alg)
	}
	if err != nil {
		return nil, err
	}
	return NewKey(priv, alg)
}

// LoadOrGenerate reads a PEM private key from path, or, when the file does
// not exist, generates one for alg and writes it there (mode 0600).
func LoadOrGenerate(path, alg string) (*Key, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		k, err := Generate(alg)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(k.Private)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return nil, err
		}
		return k, nil
	}
	if err != nil {
		return nil, fmt.Errorf("signer: %w", err)
	}
	priv, err := ParsePrivateKeyPEM(b)
	if err != nil {
		return nil, fmt.Errorf("signer: %s: %w", path, err)
	}
	return NewKey(priv, alg)
}

// ParsePrivateKeyPEM reads a PKCS#8, PKCS#1 or SEC 1 private key.
func ParsePrivateKeyPEM(b []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		if s, ok := k.(crypto.Signer); ok {
			return s, nil
		}
		return nil, fmt.Errorf("unsupported key type %T", k)
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	return nil, errors.New("not a PKCS#8, PKCS#1 or SEC 1 private key")
}

// Set is the server's signing keys: one active, the rest only published.
type Set struct {
	active    *Key
	published []*Key
	jwks      []byte
	keySet    *resource.StaticKeySet
}

// NewSet makes a set signing with active and publishing it and others. A
// key given twice is published once.
func NewSet(active *Key, others ...*Key) (*Set, error) {
	s := &Set{active: active}
	var set jose.JSONWebKeySet
	var pub []resource.PublicKey
	for _, k := range append([]*Key{active}, others...) {
		if slices.ContainsFunc(s.published, func(p *Key) bool { return p.ID == k.ID }) {
			continue
		}
		s.published = append(s.published, k)
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Private.Public(), KeyID: k.ID, Algorithm: k.Alg, Use: "sig"})
		pub = append(pub, resource.PublicKey{KID: k.ID, Alg: k.Alg, Key: k.Private.Public()})
	}
	b, err := json.Marshal(set)
	if err != nil {
		return nil, err
	}
	s.jwks = b
	if s.keySet, err = resource.NewStaticKeySet(pub...); err != nil {
		return nil, fmt.Errorf("signer: %w", err)
	}
	return s, nil
}

// Active is the key new tokens are signed with.
func (s *Set) Active() *Key { return s.active }

// JWKS is the published key set as JSON.
func (s *Set) JWKS() []byte { return s.jwks }

// KeySet is the published keys as a key set for a resource.Verifier: the
// server verifies its own tokens in process, against exactly what it
// publishes, each key pinned to its algorithm.
func (s *Set) KeySet() *resource.StaticKeySet { return s.keySet }

// Sign makes an access token: a compact JWS of claims, signed with the
// active key, with header typ at+jwt.
func (s *Set) Sign(claims any) (string, error) { return s.SignType(TokenType, claims) }

// SignType makes a compact JWS of claims signed with the active key, with
// header typ as given (secevent+jwt for a Security Event Token, say) and the
// key's kid and alg.
func (s *Set) SignType(typ string, claims any) (string, error) {
	if typ == "" {
		return "", errors.New("signer: a JWS needs a typ")
	}
	k := s.active
	t := &jwt.Token{
		Method: k.method,
		Header: map[string]any{"alg": k.Alg, "kid": k.ID, "typ": typ},
		Claims: jsonClaims{v: claims},
	}
	signed, err := t.SignedString(k.Private)
	if err != nil {
		return "", fmt.Errorf("signer: sign: %w", err)
	}
	return signed, nil
}

// jsonClaims lets any JSON-encodable value be a token's claims. golang-jwt
// wants a jwt.Claims only to validate the tokens it parses; signing just
// encodes the claims, so the zero RegisteredClaims fills the interface and
// MarshalJSON encodes v.
type jsonClaims struct {
	jwt.RegisteredClaims
	v any
}

func (c jsonClaims) MarshalJSON() ([]byte, error) { return json.Marshal(c.v) }
