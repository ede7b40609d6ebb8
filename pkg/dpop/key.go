package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/portvakt/portvakt/pkg/jwa"
)

// Key is a client's DPoP key: it makes proofs. It is safe for concurrent
// use.
type Key struct {
	priv   crypto.PrivateKey
	method jwt.SigningMethod
	jwk    map[string]any
	jkt    string
}

// GenerateKey makes a fresh P-256 key (ES256), the usual DPoP key.
func GenerateKey() (*Key, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("dpop: generate key: %w", err)
	}
	return NewKey(priv)
}

// NewKey wraps an *ecdsa.PrivateKey (P-256: ES256, P-384: ES384) or an
// *rsa.PrivateKey of at least 2048 bits (RS256).
func NewKey(priv crypto.PrivateKey) (*Key, error) {
	var alg string
	var pub crypto.PublicKey
	switch k := priv.(type) {
	case *ecdsa.PrivateKey:
		pub = &k.PublicKey
		switch k.Curve {
		case elliptic.P256():
			alg = "ES256"
		case elliptic.P384():
			alg = "ES384"
		}
	case *rsa.PrivateKey:
		pub, alg = &k.PublicKey, "RS256"
	}
	if alg == "" || !jwa.Fits(alg, pub) {
		return nil, errors.New("dpop: the key must be an ECDSA P-256 or P-384 key or an RSA key of at least 2048 bits")
	}
	b, err := json.Marshal(jose.JSONWebKey{Key: pub})
	if err != nil {
		return nil, fmt.Errorf("dpop: key: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("dpop: key: %w", err)
	}
	jkt, err := Thumbprint(pub)
	if err != nil {
		return nil, fmt.Errorf("dpop: key: %w", err)
	}
	return &Key{priv: priv, method: jwt.GetSigningMethod(alg), jwk: m, jkt: jkt}, nil
}

// Thumbprint is the key's RFC 7638 thumbprint: the cnf.jkt of the tokens
// bound to it.
func (k *Key) Thumbprint() string { return k.jkt }

// Algorithm is the alg of the key's proofs.
func (k *Key) Algorithm() string { return k.method.Alg() }

// Public is the key's public half.
func (k *Key) Public() crypto.PublicKey { return k.priv.(crypto.Signer).Public() }

// Proof makes a proof for one request: method and url (its query and
// fragment are left out of htu), the access token it goes with (ath; empty
// at the token endpoint) and the server's nonce (empty when none), issued
// at now with a fresh jti.
func (k *Key) Proof(method, url, accessToken, nonce string, now time.Time) (string, error) {
	u, err := htu(url)
	if err != nil {
		return "", fmt.Errorf("dpop: proof for %q: %w", url, err)
	}
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", fmt.Errorf("dpop: proof: %w", err)
	}
	c := jwt.MapClaims{
		"jti": base64.RawURLEncoding.EncodeToString(jti[:]),
		"htm": method,
		"htu": u,
		"iat": now.Unix(),
	}
	if accessToken != "" {
		c["ath"] = AccessTokenHash(accessToken)
	}
	if nonce != "" {
		c["nonce"] = nonce
	}
	t := jwt.NewWithClaims(k.method, c)
	t.Header["typ"] = ProofType
	t.Header["jwk"] = k.jwk
	s, err := t.SignedString(k.priv)
	if err != nil {
		return "", fmt.Errorf("dpop: sign proof: %w", err)
	}
	return s, nil
}
