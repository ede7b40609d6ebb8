package tokenendpoint_test

import (
	"crypto/ecdsa"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"
)

const b64url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// nonCanonical returns seg spelled differently with the same decoded bytes:
// its last character with unused trailing bits set. ok is false when seg's
// length leaves no unused bits.
func nonCanonical(seg string) (string, bool) {
	var unused uint
	switch len(seg) % 4 {
	case 2:
		unused = 4
	case 3:
		unused = 2
	default:
		return "", false
	}
	last := strings.IndexByte(b64url, seg[len(seg)-1])
	return seg[:len(seg)-1] + string(b64url[last|(1<<unused-1)]), true
}

// withNonCanonicalPart signs jti-less claims, growing a filler claim until
// the payload segment has unused trailing bits, and returns the assertion
// and its re-spelled twin.
func withNonCanonicalPart(t *testing.T, e *env, name string) (string, string) {
	t.Helper()
	i := e.ids[name]
	for pad := ""; len(pad) < 8; pad += "x" {
		c := e.claims(i, "demo:read")
		delete(c, "jti")
		c["x"] = pad
		a := e.sign(i, c, nil)
		parts := strings.Split(a, ".")
		if p, ok := nonCanonical(parts[1]); ok {
			return a, parts[0] + "." + p + "." + parts[2]
		}
	}
	t.Fatal("no payload length with unused bits")
	return "", ""
}

// docs/protocol.md: every part is decoded strictly, and a jti-less assertion's
// replay key is the hash of its signing input, so no second spelling of an
// assertion gets a second token.
func TestJTILessAssertionIsSingleUseWhateverItsSpelling(t *testing.T) {
	e := newEnv(t)

	t.Run("fail/replay/jti-less-reencoded", func(t *testing.T) {
		a, twin := withNonCanonicalPart(t, e, "consumer-seid1")
		if r := e.grant(a); r.status != 200 {
			t.Fatalf("first use: %d %s", r.status, r.raw)
		}
		n := e.issued()
		checkError(t, e.grant(twin), 400, "invalid_grant", "not a well-formed")
		parts := strings.Split(a, ".")
		if sig, ok := nonCanonical(parts[2]); ok {
			checkError(t, e.grant(parts[0]+"."+parts[1]+"."+sig), 400, "invalid_grant", "not a well-formed")
		}
		if got := e.issued(); got != n {
			t.Fatalf("issued rows %d -> %d: a re-encoded assertion got a token", n, got)
		}
	})

	t.Run("fail/replay/jti-less-line-breaks", func(t *testing.T) {
		a, _ := withNonCanonicalPart(t, e, "consumer-seid2")
		if r := e.grant(a); r.status != 200 {
			t.Fatalf("first use: %d %s", r.status, r.raw)
		}
		parts := strings.Split(a, ".")
		half := len(parts[1]) / 2
		for _, brk := range []string{"\n", "\r\n", "\r"} {
			twin := parts[0] + "." + parts[1][:half] + brk + parts[1][half:] + "." + parts[2]
			checkError(t, e.grant(twin), 400, "invalid_grant", "compact serialization")
		}
	})

	t.Run("fail/replay/jti-less-ecdsa-malleated-signature", func(t *testing.T) {
		i := e.ids["kid-ec256"]
		c := e.claims(i, "demo:read")
		delete(c, "jti")
		a := e.sign(i, c, nil)
		if r := e.grant(a); r.status != 200 {
			t.Fatalf("first use: %d %s", r.status, r.raw)
		}
		// (r, n-s) is the other valid signature of the same input.
		parts := strings.Split(a, ".")
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil || len(sig) != 64 {
			t.Fatalf("signature %d bytes: %v", len(sig), err)
		}
		n := i.key.(*ecdsa.PrivateKey).Curve.Params().N
		s := new(big.Int).Sub(n, new(big.Int).SetBytes(sig[32:]))
		twin := append(append([]byte{}, sig[:32]...), s.FillBytes(make([]byte, 32))...)
		checkError(t, e.grant(parts[0]+"."+parts[1]+"."+base64.RawURLEncoding.EncodeToString(twin)), 400, "invalid_grant", "already been used")
	})

	t.Run("fail/jws/padding", func(t *testing.T) {
		a, _ := withNonCanonicalPart(t, e, "consumer-seid1")
		parts := strings.Split(a, ".")
		checkError(t, e.grant(parts[0]+"."+parts[1]+"=="+"."+parts[2]), 400, "invalid_grant", "compact serialization")
	})

	t.Run("fail/jws/empty-signature", func(t *testing.T) {
		a, _ := withNonCanonicalPart(t, e, "consumer-seid1")
		checkError(t, e.grant(a[:strings.LastIndexByte(a, '.')+1]), 400, "invalid_grant", "signature")
	})
}

// docs/protocol.md: a crit header is refused, since no extension is understood.
func TestCritHeaderIsRefused(t *testing.T) {
	e := newEnv(t)
	for _, name := range []string{"consumer-seid1", "kid-rsa"} {
		t.Run("fail/jws/crit/"+name, func(t *testing.T) {
			i := e.ids[name]
			a := e.sign(i, e.claims(i, "demo:read"), map[string]any{"crit": []string{"b64"}, "b64": false})
			checkError(t, e.grant(a), 400, "invalid_grant", "crit")
			if e.issued() != 0 {
				t.Fatal("a token was issued")
			}
		})
	}
}

// An unknown iss is unverified input: the access line and the description
// carry a clipped copy, never the whole value.
func TestUnknownIssIsClippedInTheLog(t *testing.T) {
	e := newEnv(t)
	i := e.ids["kid-rsa"]
	c := e.claims(i, "demo:read")
	long := strings.Repeat("é", 5000)
	c["iss"] = long
	r := e.grant(e.sign(i, c, nil))
	checkError(t, r, 400, "invalid_grant", "Unknown or inactive client")
	if len(r.desc()) > 300 {
		t.Errorf("description is %d bytes", len(r.desc()))
	}
	logs := e.logs.String()
	if !strings.Contains(logs, `"client_id":"éé`) {
		t.Fatalf("the access line does not name the (clipped) iss:\n%s", logs)
	}
	if strings.Contains(logs, strings.Repeat("é", 40)) || strings.Contains(logs, `\ufffd`) {
		t.Fatalf("the access line holds %d bytes of the unverified iss, or a broken rune:\n%.400s", strings.Count(logs, "é")*2, logs)
	}
}
