package signer

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portvakt/portvakt/internal/protocol"
)

// handBuilt is how the signer made tokens before it signed with golang-jwt:
// the encoded header precomputed per key, the compact JWS assembled by hand.
// It stays here as the baseline BenchmarkSign measures Set.Sign against.
type handBuilt struct {
	k      *Key
	header string
}

func newHandBuilt(k *Key) handBuilt {
	h, _ := json.Marshal(map[string]string{"alg": k.Alg, "kid": k.ID, "typ": TokenType})
	return handBuilt{k: k, header: base64.RawURLEncoding.EncodeToString(h)}
}

func (hb handBuilt) sign(claims any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.Grow(len(hb.header) + 1 + base64.RawURLEncoding.EncodedLen(len(payload)) + 1 + 512)
	b.WriteString(hb.header)
	b.WriteByte('.')
	enc := make([]byte, base64.RawURLEncoding.EncodedLen(len(payload)))
	base64.RawURLEncoding.Encode(enc, payload)
	b.Write(enc)
	sig, err := hb.k.method.Sign(b.String(), hb.k.Private)
	if err != nil {
		return "", err
	}
	b.WriteByte('.')
	b.WriteString(base64.RawURLEncoding.EncodeToString(sig))
	return b.String(), nil
}

// benchClaims are an access token's claims as the exchange makes them.
func benchClaims() protocol.AccessTokenClaims {
	sup := protocol.NewOrg("910000002")
	return protocol.AccessTokenClaims{
		Issuer: "https://auth.example.no/", ClientID: "0b0b0b0b-0000-4000-8000-000000000001",
		ClientAMR: "virksomhetssertifikat", TokenType: "Bearer", Scope: "acme:invoices.read acme:invoices.write",
		Consumer: protocol.NewOrg("910000001"), Supplier: &sup, DelegationSource: "https://auth.example.no/",
		Aud: "https://api.example.no/", IssuedAt: 1_700_000_000, ExpiresAt: 1_700_000_120,
		JTI: "Zm9vYmFyYmF6cXV4cXV1eHF1dXg",
	}
}

// BenchmarkSign measures the cost of one access token signed with
// golang-jwt (Set.Sign) against the hand-built JWS with a precomputed header
// it replaced, in the same run and interleaved: the two alternate token by
// token, so drift on a shared machine hits both alike. It reports each one's
// ns per token, their ratio (jwt/hand) and difference (jwt-hand); run it
// with -count 5 or more and compare the spread with the distance from 1.
//
// "encoding" replaces the signature with a fixed one, so what is left is
// what the two ways differ in (header, claims, base64, assembly); RS256 and
// ES256 show that against the signature's own cost.
func BenchmarkSign(b *testing.B) {
	for _, name := range []string{"encoding", "RS256", "ES256"} {
		b.Run(name, func(b *testing.B) {
			alg := name
			if name == "encoding" {
				alg = "ES256"
			}
			k, err := Generate(alg)
			if err != nil {
				b.Fatal(err)
			}
			if name == "encoding" {
				k.method = fixedSignature{k.method}
			}
			s, err := NewSet(k)
			if err != nil {
				b.Fatal(err)
			}
			hb := newHandBuilt(k)
			claims := benchClaims()
			variants := [2]func(any) (string, error){hb.sign, s.Sign}
			var spent [2]time.Duration
			var count [2]int
			i := 0
			for b.Loop() {
				v := i % 2
				start := time.Now()
				if _, err := variants[v](claims); err != nil {
					b.Fatal(err)
				}
				spent[v] += time.Since(start)
				count[v]++
				i++
			}
			if count[0] == 0 || count[1] == 0 {
				return
			}
			hand := float64(spent[0].Nanoseconds()) / float64(count[0])
			jwt := float64(spent[1].Nanoseconds()) / float64(count[1])
			b.ReportMetric(hand, "hand-ns/token")
			b.ReportMetric(jwt, "jwt-ns/token")
			b.ReportMetric(jwt/hand, "jwt/hand")
			b.ReportMetric(jwt-hand, "jwt-hand-ns")
		})
	}
}

// fixedSignature is a signing method that returns a fixed 64-byte signature
// at no cost, to measure everything but the signature.
type fixedSignature struct{ jwt.SigningMethod }

func (fixedSignature) Sign(string, any) ([]byte, error) { return make([]byte, 64), nil }
