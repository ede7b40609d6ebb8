package signer

import (
	"context"
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
	"sync/atomic"
	"time"

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

// JWKSMaxAge is how long verifiers may cache the JWKS (its Cache-Control
// max-age). A NEXT key is published for longer than this before it signs
// (the rotation's pre_publish), so no verifier meets an unknown kid.
const JWKSMaxAge = 5 * time.Minute

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
	// The checks look at the public half, so that any crypto.Signer (an
	// HSM's, say) can hold the private one.
	switch k := priv.Public().(type) {
	case *rsa.PublicKey:
		if alg != "RS256" {
			return nil, fmt.Errorf("signer: an RSA key signs RS256, not %s", alg)
		}
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("signer: RSA key of %d bits; at least 2048 required", k.N.BitLen())
		}
	case *ecdsa.PublicKey:
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
	return &Key{ID: base64.RawURLEncoding.EncodeToString(tp), Alg: alg, Private: priv, method: signingMethod(priv, alg)}, nil
}

// signingMethod is golang-jwt's own method for the in-memory keys it knows,
// and signerMethod for any other crypto.Signer (an HSM's).
func signingMethod(priv crypto.Signer, alg string) jwt.SigningMethod {
	switch priv.(type) {
	case *rsa.PrivateKey, *ecdsa.PrivateKey:
		return jwt.GetSigningMethod(alg)
	}
	return newSignerMethod(alg)
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
// Its keys can be replaced while it is in use (Replace), so that every part
// of the server holding the Set signs and verifies with the keys of the
// moment: a rotation reaches them all at once.
type Set struct {
	cur atomic.Pointer[keyState]
}

// keyState is one generation of a Set's keys.
type keyState struct {
	active *Key
	jwks   []byte
	keySet *resource.StaticKeySet
}

// PublicKey is a key only published: its tokens verify, it signs nothing.
type PublicKey struct {
	ID  string
	Alg string
	Key crypto.PublicKey
}

// NewSet makes a set signing with active and publishing it and others. A
// key given twice is published once.
func NewSet(active *Key, others ...*Key) (*Set, error) {
	pubs := make([]PublicKey, len(others))
	for i, k := range others {
		pubs[i] = PublicKey{ID: k.ID, Alg: k.Alg, Key: k.Private.Public()}
	}
	return NewPublishedSet(active, pubs...)
}

// NewPublishedSet makes a set signing with active and publishing it and
// published, which need no private part. A kid given twice is published
// once.
func NewPublishedSet(active *Key, published ...PublicKey) (*Set, error) {
	st, err := newKeyState(active, published)
	if err != nil {
		return nil, err
	}
	s := &Set{}
	s.cur.Store(st)
	return s, nil
}

func newKeyState(active *Key, published []PublicKey) (*keyState, error) {
	if active == nil {
		return nil, errors.New("signer: a key set needs an active key")
	}
	st := &keyState{active: active}
	var set jose.JSONWebKeySet
	var pub []resource.PublicKey
	all := append([]PublicKey{{ID: active.ID, Alg: active.Alg, Key: active.Private.Public()}}, published...)
	for _, k := range all {
		if slices.ContainsFunc(pub, func(p resource.PublicKey) bool { return p.KID == k.ID }) {
			continue
		}
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Key, KeyID: k.ID, Algorithm: k.Alg, Use: "sig"})
		pub = append(pub, resource.PublicKey{KID: k.ID, Alg: k.Alg, Key: k.Key})
	}
	b, err := json.Marshal(set)
	if err != nil {
		return nil, err
	}
	st.jwks = b
	if st.keySet, err = resource.NewStaticKeySet(pub...); err != nil {
		return nil, fmt.Errorf("signer: %w", err)
	}
	return st, nil
}

// Replace makes s sign and publish what next does from now on.
func (s *Set) Replace(next *Set) { s.cur.Store(next.cur.Load()) }

// Active is the key new tokens are signed with.
func (s *Set) Active() *Key { return s.cur.Load().active }

// JWKS is the published key set as JSON.
func (s *Set) JWKS() []byte { return s.cur.Load().jwks }

// KeySet is the published keys as a key set for a resource.Verifier: the
// server verifies its own tokens in process, against exactly what it
// publishes at the time of each lookup, each key pinned to its algorithm.
func (s *Set) KeySet() resource.KeySet { return s }

// LookupKey implements resource.KeySet over the keys published now.
func (s *Set) LookupKey(ctx context.Context, kid string) (resource.PublicKey, error) {
	return s.cur.Load().keySet.LookupKey(ctx, kid)
}

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
	k := s.cur.Load().active
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
