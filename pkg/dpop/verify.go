package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/portvakt/portvakt/pkg/jwa"
)

// Header names (RFC 9449 sections 4.1 and 8).
const (
	HeaderName  = "DPoP"
	NonceHeader = "DPoP-Nonce"
)

// Error codes (RFC 9449 sections 5, 7.1 and 8).
const (
	CodeInvalidProof = "invalid_dpop_proof"
	CodeUseNonce     = "use_dpop_nonce"
)

// ProofType is the typ header of a proof.
const ProofType = "dpop+jwt"

const (
	// MaxProofBytes bounds a proof before anything is decoded: a proof with
	// an 8192-bit RSA key and a long htu fits in a quarter of it.
	MaxProofBytes = 8 << 10
	// MaxJTIBytes bounds the jti claim.
	MaxJTIBytes = 255
	// MaxRSABits bounds the modulus of a proof's RSA key.
	MaxRSABits = 8192

	defaultMaxAge = 60 * time.Second
	defaultLeeway = 10 * time.Second
)

// VerifierConfig configures a Verifier. Every field works at its zero value.
type VerifierConfig struct {
	// Algorithms narrows the allow-list of package jwa; empty means all of
	// it. An algorithm off that list is refused here.
	Algorithms []string
	// MaxAge is how old a proof's iat may be (on top of Leeway); default 60 s.
	MaxAge time.Duration
	// Leeway is how far ahead of the clock iat may be, and what is added to
	// MaxAge for clocks behind; default 10 s.
	Leeway time.Duration
	// Nonces, when set, makes a nonce claim required, one Nonces.Valid
	// accepts (otherwise ErrUseNonce).
	Nonces *Nonces
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Verifier checks DPoP proofs. It is safe for concurrent use.
type Verifier struct {
	cfg    VerifierConfig
	parser *jwt.Parser
}

// NewVerifier checks cfg and returns a Verifier.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = jwa.Algorithms()
	}
	for _, a := range cfg.Algorithms {
		if !jwa.Allowed(a) {
			return nil, fmt.Errorf("dpop: algorithm %q is not allowed", a)
		}
	}
	cfg.Algorithms = append([]string(nil), cfg.Algorithms...)
	if cfg.MaxAge < 0 || cfg.Leeway < 0 {
		return nil, errors.New("dpop: MaxAge and Leeway must not be negative")
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = defaultMaxAge
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = defaultLeeway
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Verifier{cfg: cfg, parser: jwt.NewParser(jwt.WithValidMethods(cfg.Algorithms), jwt.WithJSONNumber(),
		jwt.WithoutClaimsValidation(), jwt.WithStrictDecoding())}, nil
}

// Algorithms are the proof algorithms the Verifier accepts (the
// dpop_signing_alg_values_supported of metadata, the algs of a challenge).
// The slice is the caller's own.
func (v *Verifier) Algorithms() []string { return append([]string(nil), v.cfg.Algorithms...) }

// Window is how long after its arrival a proof's jti must be remembered:
// until its iat falls out of the accepted window.
func (v *Verifier) Window() time.Duration { return v.cfg.MaxAge + 2*v.cfg.Leeway }

// Request is what a proof is checked against.
type Request struct {
	// Method is the HTTP method (htm).
	Method string
	// URL is the request's absolute URL as the server is known to its
	// clients (htu); its query and fragment are ignored.
	URL string
	// AccessToken, when set, is the token the request presents: the proof
	// must carry its hash in ath.
	AccessToken string
}

// Proof is a verified proof.
type Proof struct {
	// JKT is the RFC 7638 SHA-256 thumbprint of the proof's key, base64url:
	// the jkt of a bound token's cnf.
	JKT string
	// JTI is the proof's jti.
	JTI string
	// IssuedAt is the proof's iat.
	IssuedAt time.Time
	// Until is when the jti may be forgotten: after it, the iat is too old.
	Until time.Time
	// Key is the proof's public key.
	Key crypto.PublicKey
}

// Verify checks proof (the one DPoP header of the request) against r.
func (v *Verifier) Verify(proof string, r Request) (*Proof, error) {
	if proof == "" {
		return nil, invalid("The DPoP header is empty: send one proof JWT", nil)
	}
	if len(proof) > MaxProofBytes {
		return nil, invalid(fmt.Sprintf("The DPoP proof is larger than %d bytes", MaxProofBytes), nil)
	}
	if !compact(proof) {
		return nil, invalid("The DPoP proof is not a JWS in compact serialization: three parts of base64url without padding, separated by dots", nil)
	}
	want, err := htu(r.URL)
	if err != nil {
		return nil, fmt.Errorf("dpop: request URL: %w", err)
	}
	now := v.cfg.Now()
	p := &Proof{}
	var checkErr error
	_, err = v.parser.Parse(proof, func(t *jwt.Token) (any, error) {
		checkErr = v.check(t, r, want, now, p)
		if checkErr != nil {
			return nil, checkErr
		}
		return p.Key, nil
	})
	if checkErr != nil {
		return nil, checkErr
	}
	if err != nil {
		switch {
		case errors.Is(err, jwt.ErrTokenMalformed):
			return nil, invalid("The DPoP proof is not a well-formed JWT", err)
		case errors.Is(err, jwt.ErrTokenUnverifiable),
			errors.Is(err, jwt.ErrTokenSignatureInvalid) && strings.Contains(err.Error(), "signing method"):
			return nil, invalid("The DPoP proof's alg is not allowed: use one of "+strings.Join(v.cfg.Algorithms, ", "), err)
		}
		return nil, invalid("The DPoP proof's signature does not verify with the key in its jwk header", err)
	}
	return p, nil
}

// check runs every rule but the signature, in order, filling p.
func (v *Verifier) check(t *jwt.Token, r Request, want string, now time.Time, p *Proof) error {
	if typ, _ := t.Header["typ"].(string); !strings.EqualFold(typ, ProofType) {
		return invalid(`The DPoP proof's typ header must be "dpop+jwt"`, nil)
	}
	alg := t.Method.Alg()
	if _, ok := t.Header["crit"]; ok {
		return invalid("The DPoP proof has a crit header: no JWS extension is understood", nil)
	}
	key, err := publicJWK(t.Header["jwk"])
	if err != nil {
		return err
	}
	if !jwa.Fits(alg, key) {
		return invalid("The DPoP proof's alg "+alg+" does not fit the key in its jwk header", nil)
	}
	c := t.Claims.(jwt.MapClaims)
	jti, _ := c["jti"].(string)
	if jti == "" || len(jti) > MaxJTIBytes {
		return invalid(fmt.Sprintf("The DPoP proof's jti must be a non-empty string of at most %d characters", MaxJTIBytes), nil)
	}
	if htm, _ := c["htm"].(string); htm != r.Method {
		return invalid("The DPoP proof's htm must be the request's method "+r.Method, nil)
	}
	got, _ := c["htu"].(string)
	if gotU, err := htu(got); err != nil || gotU != want {
		return invalid("The DPoP proof's htu must be the request's URL "+want+" (without query or fragment)", err)
	}
	iat, ok := numericDate(c["iat"])
	if !ok {
		return invalid("The DPoP proof's iat must be a number of seconds since the epoch", nil)
	}
	if iat.After(now.Add(v.cfg.Leeway)) {
		return invalid(fmt.Sprintf("The DPoP proof's iat is %s in the future: check the client's clock", iat.Sub(now).Round(time.Second)), nil)
	}
	if iat.Before(now.Add(-v.cfg.MaxAge - v.cfg.Leeway)) {
		return invalid(fmt.Sprintf("The DPoP proof is too old (iat %s ago, at most %s): make a new proof for every request", now.Sub(iat).Round(time.Second), v.cfg.MaxAge), nil)
	}
	if v.cfg.Nonces != nil {
		n, present := c["nonce"]
		s, _ := n.(string)
		switch {
		case !present:
			return useNonce("This server requires a nonce in DPoP proofs: use the one in the DPoP-Nonce response header")
		case !v.cfg.Nonces.Valid(s):
			return useNonce("The DPoP proof's nonce is stale or not this server's: use the one in the DPoP-Nonce response header")
		}
	}
	if r.AccessToken != "" {
		ath, _ := c["ath"].(string)
		sum := sha256.Sum256([]byte(r.AccessToken))
		if subtle.ConstantTimeCompare([]byte(ath), []byte(base64.RawURLEncoding.EncodeToString(sum[:]))) != 1 {
			return invalid("The DPoP proof's ath must be the base64url SHA-256 of the access token it is sent with", nil)
		}
	}
	jkt, err := Thumbprint(key)
	if err != nil {
		return invalid("The key in the DPoP proof's jwk header has no thumbprint", err)
	}
	*p = Proof{JKT: jkt, JTI: jti, IssuedAt: iat, Until: iat.Add(v.cfg.MaxAge + v.cfg.Leeway), Key: key}
	return nil
}

// privateMembers are the JWK members of private and symmetric keys (RFC 7518
// section 6).
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// publicJWK reads the jwk header: a JSON object holding an RSA or EC public
// key of an accepted size, and nothing private.
func publicJWK(v any) (crypto.PublicKey, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, invalid("The DPoP proof needs a jwk header: the public key, as a JSON object", nil)
	}
	for _, k := range privateMembers {
		if _, ok := m[k]; ok {
			return nil, invalid("The DPoP proof's jwk header holds a private key part ("+k+"): send only the public key", nil)
		}
	}
	switch m["kty"] {
	case "RSA", "EC":
	default:
		return nil, invalid("The DPoP proof's jwk must be an RSA or EC key", nil)
	}
	// The modulus is bounded before anything decodes it.
	if n, _ := m["n"].(string); len(n) > base64.RawURLEncoding.EncodedLen(MaxRSABits/8) {
		return nil, invalid("The DPoP proof's RSA key must have at most 8192 bits and an odd exponent of at least 3", nil)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, invalid("The DPoP proof's jwk header is not a valid key", err)
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(b); err != nil {
		return nil, invalid("The DPoP proof's jwk header is not a valid key", err)
	}
	switch k := jwk.Key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() > MaxRSABits || k.E < 3 || k.E%2 == 0 {
			return nil, invalid("The DPoP proof's RSA key must have at most 8192 bits and an odd exponent of at least 3", nil)
		}
		if k.N.BitLen() < jwa.MinRSABits {
			return nil, invalid("The DPoP proof's RSA key is shorter than 2048 bits", nil)
		}
		return k, nil
	case *ecdsa.PublicKey:
		if len(jwa.ForKey(k)) == 0 {
			return nil, invalid("The DPoP proof's EC key must be on P-256 or P-384", nil)
		}
		return k, nil
	}
	return nil, invalid("The DPoP proof's jwk must be an RSA or EC public key", nil)
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint of key, base64url without
// padding.
func Thumbprint(key crypto.PublicKey) (string, error) {
	tp, err := (&jose.JSONWebKey{Key: key}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// AccessTokenHash is the ath of a proof sent with token: its SHA-256,
// base64url without padding.
func AccessTokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// htu normalises a URL for comparison (RFC 9449 section 4.3, RFC 3986
// section 6.2.2 and 6.2.3): absolute, scheme and host in lower case, the
// default port dropped, an empty path as "/", query and fragment dropped.
func htu(s string) (string, error) {
	if s == "" || len(s) > 2048 {
		return "", errors.New("not an absolute URL")
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", err
	}
	if !u.IsAbs() || u.Host == "" || u.User != nil {
		return "", errors.New("not an absolute URL")
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port := u.Port(); port != "" && !(scheme == "https" && port == "443" || scheme == "http" && port == "80") {
		host += ":" + port
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path, nil
}

// HTU is the htu a proof for the request URL u carries: u without query and
// fragment.
func HTU(u string) (string, error) { return htu(u) }

func numericDate(v any) (time.Time, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, false
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || f < 0 || f > 1e11 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

// compact reports whether s is three parts of base64url characters
// separated by dots, the first two non-empty (the base64 decoder would skip
// CR and LF). An empty signature is left to the parser, whose answer names
// the alg.
func compact(s string) bool {
	dots, start := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if i == start {
				return false
			}
			dots++
			start = i + 1
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return dots == 2
}
