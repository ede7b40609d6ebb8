package records

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"

	"github.com/portvakt/portvakt/internal/store"
	"github.com/portvakt/portvakt/pkg/jwa"
)

// Key bounds (docs/selfservice.md).
const (
	// MaxKeys is the most keys a client may register.
	MaxKeys = 5
	// MinRSABits and MaxRSABits bound an RSA client key's modulus.
	MinRSABits, MaxRSABits = 2048, 8192
	// MaxKID is the longest kid.
	MaxKID = 128
)

func init() {
	// go-jose refuses to parse RSA JWKs of more than 4096 bits by default.
	// Client keys of up to MaxRSABits are allowed, so every parse of a
	// stored key (here and at the token endpoint) must accept them; the
	// bound itself is checked here, before go-jose sees the key. Set at
	// init, before any parsing, as go-jose asks.
	jose.MaxRSAModulusBits = max(jose.MaxRSAModulusBits, MaxRSABits)
}

// privateMembers are the JWK members that carry private or symmetric key
// material (RFC 7518 6.2.2 and 6.3.2, and k of 6.4).
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// PrivateMember reports whether a JWK member of that name carries private
// or symmetric key material, matched as a case-insensitive decoder would.
// Answers drop such members even from keys stored before they were refused.
func PrivateMember(name string) bool {
	f := foldName(name)
	for _, m := range privateMembers {
		if f == foldName(m) {
			return true
		}
	}
	return false
}

// ValidateClientKeys checks an uploaded key set and returns the keys to
// store (kid and the compact JWK as sent), every problem at once: at most
// MaxKeys keys (more is refused by count before any key is read); in each
// key, public members only (the raw JSON members, compared the way a
// case-insensitive JSON decoder would match them, so "D" or "Dp" count as
// private too, and a member given twice is refused), a kid of 1-MaxKID
// printable ASCII characters unique in the set, RSA with an odd modulus of
// MinRSABits-MaxRSABits bits and an odd public exponent of at least 3, or EC
// on P-256 or P-384; use sig when given, alg fitting the key when given.
// field names the list ("keys" in the API, "jwks" in the config file).
//
// A key with a private member is refused by its member names alone, before
// it is parsed as a key, so nothing private is ever stored, answered or
// written to the audit log.
func ValidateClientKeys(field string, raw []json.RawMessage) ([]store.ClientKey, []FieldError) {
	if len(raw) > MaxKeys {
		return nil, fieldError(field, "%d keys; a client may have at most %d", len(raw), MaxKeys)
	}
	var errs []FieldError
	var keys []store.ClientKey
	var kids []string
	for i, r := range raw {
		path := fmt.Sprintf("%s[%d]", field, i)
		k, kid, kerrs := validateKey(path, r)
		errs = append(errs, kerrs...)
		if kid != "" {
			if slices.Contains(kids, kid) {
				errs = append(errs, fieldError(path+".kid", "%q is used by another key in the set", kid)...)
			}
			kids = append(kids, kid)
		}
		if len(kerrs) == 0 && k != nil {
			keys = append(keys, *k)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return keys, nil
}

// validateKey checks one key. kid is its valid kid ("" when it has none),
// for the caller's check that kids are unique.
func validateKey(path string, raw json.RawMessage) (_ *store.ClientKey, kid string, errs []FieldError) {
	bad := func(member, format string, args ...any) {
		f := path
		if member != "" {
			f += "." + member
		}
		errs = append(errs, fieldError(f, format, args...)...)
	}
	members, merr := objectMembers(raw)
	if merr != nil {
		bad("", "%s", merr.msg)
		return nil, "", errs
	}
	for _, m := range privateMembers {
		if _, ok := members[foldName(m)]; ok {
			bad(m, "is private key material; upload only the public key (kty, kid, n and e, or crv, x and y)")
		}
	}
	if len(errs) > 0 {
		return nil, "", errs
	}
	str := func(name string) (string, bool) {
		v, ok := members[foldName(name)]
		if !ok {
			return "", false
		}
		var s string
		if json.Unmarshal(v.value, &s) != nil {
			bad(name, "must be a JSON string")
			return "", false
		}
		if v.name != name {
			bad(v.name, "write the member name as %s", name)
			return "", false
		}
		return s, true
	}

	kid, ok := str("kid")
	switch {
	case !ok && len(errs) == 0:
		bad("kid", "is required: a client key is found by its kid")
	case !ok:
	case kid == "" || len(kid) > MaxKID:
		bad("kid", "must be 1 to %d characters long, not %d", MaxKID, len(kid))
		kid = ""
	case strings.IndexFunc(kid, func(r rune) bool { return r < 0x21 || r > 0x7e }) >= 0:
		bad("kid", "must be printable ASCII without spaces (0x21-0x7E)")
		kid = ""
	}
	kty, _ := str("kty")
	use, hasUse := str("use")
	alg, hasAlg := str("alg")
	if hasUse && use != "sig" {
		bad("use", "is %q; a client key signs grants, so use must be sig", use)
	}
	if kty == "RSA" {
		// Bound the raw modulus and exponent before go-jose parses them.
		n, nok := str("n")
		e, eok := str("e")
		if !nok || !eok {
			bad("", "an RSA key needs n and e")
		} else {
			checkRSA(n, e, bad)
		}
	}
	if len(errs) > 0 {
		return nil, kid, errs
	}

	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(raw); err != nil {
		bad("", "is not a valid JWK: %s", strings.TrimPrefix(err.Error(), "go-jose/go-jose: "))
		return nil, kid, errs
	}
	if !k.IsPublic() {
		// Unreachable after the member check; kept so that a private key
		// can never be stored whatever go-jose learns to read.
		bad("", "holds a private key; upload only the public key")
		return nil, kid, errs
	}
	switch pub := k.Key.(type) {
	case *rsa.PublicKey:
		if hasAlg && !jwa.Fits(alg, pub) {
			bad("alg", "%q does not fit an RSA key", alg)
		}
	case *ecdsa.PublicKey:
		want := jwa.ForKey(pub) // one algorithm for an allowed curve, none for the rest
		if len(want) == 0 {
			bad("crv", "%s is not allowed; use P-256 or P-384", pub.Curve.Params().Name)
		} else if hasAlg && alg != want[0] {
			bad("alg", "%q does not fit an EC %s key; use %s", alg, pub.Curve.Params().Name, want[0])
		}
	default:
		bad("kty", "%q is not allowed; use RSA (%d to %d bits) or EC P-256/P-384", kty, MinRSABits, MaxRSABits)
	}
	if len(errs) > 0 {
		return nil, kid, errs
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		bad("", "is not valid JSON")
		return nil, kid, errs
	}
	return &store.ClientKey{KID: kid, JWK: compact.Bytes()}, kid, nil
}

// checkRSA bounds an RSA key's raw n and e: by their encoded length first,
// then by value.
func checkRSA(n, e string, bad func(member, format string, args ...any)) {
	// base64url of MaxRSABits/8 bytes, plus one leading zero byte.
	if len(n) > base64.RawURLEncoding.EncodedLen(MaxRSABits/8+1) {
		bad("n", "the modulus is larger than %d bits", MaxRSABits)
	} else if nb, err := base64.RawURLEncoding.Strict().DecodeString(n); err != nil {
		bad("n", "is not base64url without padding")
	} else {
		m := new(big.Int).SetBytes(nb)
		switch {
		case m.BitLen() < MinRSABits:
			bad("n", "the modulus has %d bits; at least %d are required", m.BitLen(), MinRSABits)
		case m.BitLen() > MaxRSABits:
			bad("n", "the modulus has %d bits; at most %d are allowed", m.BitLen(), MaxRSABits)
		case m.Bit(0) == 0:
			bad("n", "the modulus is even, so it is not an RSA modulus")
		}
	}
	// An exponent of more than 31 bits is refused by Go's RSA verifier.
	if len(e) > 8 {
		bad("e", "the public exponent is larger than 31 bits (65537 is usual)")
	} else if eb, err := base64.RawURLEncoding.Strict().DecodeString(e); err != nil {
		bad("e", "is not base64url without padding")
	} else {
		x := new(big.Int).SetBytes(eb)
		if x.BitLen() > 31 || x.Bit(0) == 0 || x.Cmp(big.NewInt(3)) < 0 {
			bad("e", "the public exponent must be odd, at least 3 and at most 2^31-1 (65537 is usual)")
		}
	}
}

// member is one raw member of a JSON object: its name as sent and value.
type member struct {
	name  string
	value json.RawMessage
}

type memberError struct{ msg string }

// objectMembers reads the top-level members of a JSON object, keyed by
// their folded names (foldName). A name given twice, even in another case,
// is refused: decoders disagree on which one wins.
func objectMembers(raw json.RawMessage) (map[string]member, *memberError) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, &memberError{"is not a JSON object"}
	}
	out := map[string]member{}
	for dec.More() {
		t, err := dec.Token()
		name, ok := t.(string)
		if err != nil || !ok {
			return nil, &memberError{"is not a JSON object"}
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, &memberError{"is not a JSON object"}
		}
		f := foldName(name)
		if prev, dup := out[f]; dup {
			return nil, &memberError{fmt.Sprintf("member %q is given twice (also as %q); give each member once", name, prev.name)}
		}
		out[f] = member{name: name, value: v}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, &memberError{"is not a JSON object"}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &memberError{"is not a single JSON object"}
	}
	return out, nil
}

// foldName folds a member name as encoding/json does when it matches names
// case-insensitively (ASCII upper case; other runes upper of lower, which
// maps the Kelvin sign to K), so that no decoder, strict or not, can read a
// member that this check missed.
func foldName(name string) string {
	var b strings.Builder
	for _, r := range name {
		if r < utf8.RuneSelf {
			b.WriteRune(unicode.ToUpper(r))
		} else {
			b.WriteRune(unicode.ToUpper(unicode.ToLower(r)))
		}
	}
	return b.String()
}

// DaysLeft is how many days a client key that expires at expires has left
// at now, a part of a day counting as one; 0 or less once it has expired.
func DaysLeft(expires, now time.Time) int {
	left := expires.Sub(now)
	if left <= 0 {
		return 0
	}
	return int((left + 24*time.Hour - 1) / (24 * time.Hour))
}
