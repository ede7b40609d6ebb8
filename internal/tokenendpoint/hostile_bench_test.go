package tokenendpoint_test

import (
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/testpki"
)

// bodyLimit is the token endpoint's body limit (docs/protocol.md).
const bodyLimit = 64 << 10

// BenchmarkHostileX5C measures the server's CPU per request for hostile
// x5c chains next to a valid certificate client's request, in the same run
// and interleaved: rounds of valid requests, first sights of the hostile
// chain (each request a chain never seen before, so the negative cache
// misses) and repeats of one hostile chain (answered from the negative
// cache) take turns, so that a machine whose speed drifts affects all three
// alike. CPU is the process's user+system time over each round.
//
// The valid request is the cheapest one a certificate client makes: its
// leaf is already in the verified-chain cache, so it costs the assertion's
// signature, the token's signature and the replay insert. docs/protocol.md asks
// that a failing chain cost no more than that: the ratios cold/valid and
// repeat/valid must stay at or below 1.
//
// The hostile chains:
//   - oversized-key: the attack of issue 14, a CA whose RSA key has 100000
//     bits and a leaf that names it as its issuer with a signature of that
//     length (before the bounds: hundreds of milliseconds per request).
//   - forged-max: the worst within the 64 KiB body that we could build: ten
//     certificates with as many ASN.1 elements as the element bound lets
//     through (name attributes, the costliest to parse), padded to the body
//     limit, nine CA certificates with 8192-bit keys of exponent 2^31-1, and
//     a leaf that names the trusted intermediate as its issuer, so that one
//     signature is verified with a trusted key (none with the client's).
func BenchmarkHostileX5C(b *testing.B) {
	for _, kind := range []string{"oversized-key", "forged-max"} {
		b.Run(kind, func(b *testing.B) { benchHostile(b, kind) })
	}
}

func benchHostile(b *testing.B, kind string) {
	e := newEnv(b)
	e.clock.Set(time.Now())
	valid := e.ids["consumer-seid2"]
	signKey, err := testpki.ECKey(elliptic.P256())
	if err != nil {
		b.Fatal(err)
	}
	chain, sigLen, want := hostileChain(b, e, kind, signKey)

	body := func(id *identity) string {
		a := e.sign(id, e.claims(id, "demo:read"), nil)
		return url.Values{"grant_type": {jwtBearer}, "assertion": {a}}.Encode()
	}
	hostile := func(leafSig bool) string {
		c := chain
		if leafSig {
			// A chain never seen before: the same certificates with another
			// (equally wrong) leaf signature.
			c = append([][]byte{resign(b, chain[0], sigLen)}, chain[1:]...)
		}
		return body(certIdentity(e, signKey, c...))
	}
	n := b.N
	validBodies, coldBodies, repeatBodies := make([]string, n), make([]string, n), make([]string, n)
	for i := range n {
		validBodies[i], coldBodies[i], repeatBodies[i] = body(valid), hostile(true), hostile(false)
	}
	if l := len(coldBodies[0]); l > bodyLimit {
		b.Fatalf("hostile body of %d bytes is over the limit", l)
	}

	// Warm up: the valid leaf is cached, the repeated chain is in the
	// negative cache, and each answer is the one measured.
	check := func(r response, wantStatus int, wantDesc string) {
		b.Helper()
		if r.status != wantStatus || !strings.Contains(r.desc(), wantDesc) {
			b.Fatalf("got %d %s, want %d %q", r.status, r.raw, wantStatus, wantDesc)
		}
	}
	check(e.postBody(body(valid)), 200, "")
	check(e.postBody(hostile(false)), 400, want)
	check(e.postBody(hostile(true)), 400, want)

	type variant struct {
		name   string
		bodies []string
		status int
		cpu    time.Duration
	}
	variants := []*variant{
		{name: "valid", bodies: validBodies, status: 200},
		{name: "hostile-cold", bodies: coldBodies, status: 400},
		{name: "hostile-repeat", bodies: repeatBodies, status: 400},
	}
	rounds := min(max(n/100, 1), 8)
	b.ResetTimer()
	b.StopTimer()
	for r := range rounds {
		lo, hi := r*n/rounds, (r+1)*n/rounds
		for k := range variants {
			v := variants[(r+k)%len(variants)] // a different order each round
			reqs := make([]*http.Request, 0, hi-lo)
			for _, s := range v.bodies[lo:hi] {
				req := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(s))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				reqs = append(reqs, req)
			}
			var failed atomic.Int64
			b.StartTimer()
			cpu0 := processCPU(b)
			serveAll(reqs, 2, func(req *http.Request) {
				rec := httptest.NewRecorder()
				e.handler.ServeHTTP(rec, req)
				if rec.Code != v.status {
					failed.Add(1)
				}
			})
			v.cpu += processCPU(b) - cpu0
			b.StopTimer()
			if f := failed.Load(); f > 0 {
				b.Fatalf("%s: %d of %d requests got another status than %d", v.name, f, len(reqs), v.status)
			}
		}
	}
	per := func(v *variant) float64 { return float64(v.cpu.Microseconds()) / float64(n) }
	for _, v := range variants {
		b.ReportMetric(per(v), v.name+"-cpu-us/req")
	}
	b.ReportMetric(float64(len(coldBodies[0])), "hostile-body-bytes")
	b.ReportMetric(per(variants[1])/per(variants[0]), "cold/valid")
	b.ReportMetric(per(variants[2])/per(variants[0]), "repeat/valid")
}

// postBody posts an encoded form.
func (e *env) postBody(body string) response {
	e.t.Helper()
	return e.do(http.MethodPost, "application/x-www-form-urlencoded", body)
}

// resign replaces the signature of der with n random bytes that stay below
// any modulus of n bytes, so that verifying it with such a key costs a full
// RSA operation.
func resign(b *testing.B, der []byte, n int) []byte {
	b.Helper()
	sig := make([]byte, n)
	_, _ = rand.Read(sig)
	sig[0] = 0x01
	out, err := testpki.WithSignature(der, sig)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// hostileChain builds the named hostile chain, the length of its leaf's
// signature and the description its refusal carries.
func hostileChain(b *testing.B, e *env, kind string, leafKey crypto.Signer) ([][]byte, int, string) {
	b.Helper()
	now := e.clock.Now()
	junkSigner, err := testpki.ECKey(elliptic.P256())
	if err != nil {
		b.Fatal(err)
	}
	rsaSigner, err := testpki.RSAKey(2048)
	if err != nil {
		b.Fatal(err)
	}
	create := func(tmpl *x509.Certificate, issuer []byte, pub crypto.PublicKey, signer crypto.Signer) []byte {
		b.Helper()
		tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
		tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(24*time.Hour)
		der, err := x509.CreateCertificate(rand.Reader, tmpl, &x509.Certificate{RawSubject: issuer}, pub, signer)
		if err != nil {
			b.Fatal(err)
		}
		return der
	}
	name := func(cn string) []byte {
		raw, err := asn1.Marshal(pkix.Name{CommonName: cn}.ToRDNSequence())
		if err != nil {
			b.Fatal(err)
		}
		return raw
	}
	attrs := func(n int) []pkix.AttributeTypeAndValue {
		out := make([]pkix.AttributeTypeAndValue, n)
		for i := range out {
			out[i] = pkix.AttributeTypeAndValue{Type: asn1.ObjectIdentifier{2, 5, 4, 11}, Value: "x"}
		}
		return out
	}
	// The leaf looks right in every way the server checks before the
	// chain, and names issuer as its issuer; it is signed by a key of the
	// client's, not the issuer's.
	leaf := func(issuer []byte, extra int, pad int) []byte {
		tmpl := &x509.Certificate{
			Subject: pkix.Name{
				CommonName: "Hostile AS", Organization: []string{"Hostile AS"}, Country: []string{"NO"},
				ExtraNames: append([]pkix.AttributeTypeAndValue{{Type: testpki.OIDOrganizationIdentifier, Value: "NTRNO-" + consumerOrg}}, attrs(extra)...),
			},
			KeyUsage: x509.KeyUsageDigitalSignature, BasicConstraintsValid: true,
		}
		if pad > 0 {
			tmpl.ExtraExtensions = []pkix.Extension{opaque(pad)}
		}
		return create(tmpl, issuer, leafKey.Public(), rsaSigner)
	}

	switch kind {
	case "oversized-key":
		big, err := testpki.FakeRSAKey(100000, 65537, false)
		if err != nil {
			b.Fatal(err)
		}
		// The attack of issue 14: the leaf names the CA as its issuer and
		// carries a signature as long as the CA's modulus, so that checking
		// it is one 100000-bit RSA operation.
		ca := create(&x509.Certificate{Subject: pkix.Name{CommonName: "Hostile CA"}, IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign},
			e.pki.Root.Cert.RawSubject, big, junkSigner)
		const sigLen = 100000 / 8
		return [][]byte{resign(b, leaf(name("Hostile CA"), 0, 0), sigLen), ca}, sigLen, "has an RSA key of 100000 bits"
	case "forged-max":
		build := func(extra, pad int) [][]byte {
			chain := [][]byte{leaf(e.pki.Intermediate.Cert.RawSubject, extra, pad)}
			for i := 1; i < 10; i++ {
				k, err := testpki.FakeRSAKey(8192, 1<<31-1, false)
				if err != nil {
					b.Fatal(err)
				}
				tmpl := &x509.Certificate{
					Subject: pkix.Name{CommonName: fmt.Sprintf("Hostile CA %d", i), ExtraNames: attrs(extra)},
					IsCA:    true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
					ExtraExtensions: []pkix.Extension{opaque(pad)},
				}
				chain = append(chain, create(tmpl, name(fmt.Sprintf("Hostile CA %d", i+1)), k, junkSigner))
			}
			return chain
		}
		const want = "does not chain to a trusted CA"
		// As many name attributes as the element bound lets through: the
		// most that the server answers with the chain's verdict rather
		// than the bound's.
		extra := 64
		for ; extra > 0; extra-- {
			c := build(extra, 1)
			if r := e.postBody(postable(e, c, leafKey)); strings.Contains(r.desc(), want) {
				break
			}
		}
		// Then pad every certificate to reach the body limit.
		size := func(pad int) int { return len(postable(e, build(extra, pad), leafKey)) }
		pad := max(1, (bodyLimit-size(1))*9/16/10)
		for pad > 1 && size(pad) > bodyLimit-64 {
			pad -= 64
		}
		return build(extra, pad), 256, want
	}
	b.Fatalf("unknown kind %q", kind)
	return nil, 0, ""
}

// postable is the form body of an assertion carrying chain.
func postable(e *env, chain [][]byte, key crypto.Signer) string {
	id := certIdentity(e, key, chain...)
	a := e.sign(id, e.claims(id, "demo:read"), nil)
	return url.Values{"grant_type": {jwtBearer}, "assertion": {a}}.Encode()
}

// opaque is a non-critical private extension of n bytes that hold no DER
// (0xff is no valid tag), which the element bound counts as one.
func opaque(n int) pkix.Extension {
	v := make([]byte, n)
	for i := range v {
		v[i] = 0xff
	}
	return pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, Value: v}
}
