package signer

import (
	"crypto"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/portvakt/portvakt/pkg/resource"
)

// opaqueSigner hides the key behind crypto.Signer, as an HSM does: golang-jwt
// cannot see an *rsa.PrivateKey or *ecdsa.PrivateKey in it.
type opaqueSigner struct {
	s     crypto.Signer
	calls int
	fail  bool
}

func (o *opaqueSigner) Public() crypto.PublicKey { return o.s.Public() }

func (o *opaqueSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	o.calls++
	if o.fail {
		return nil, errors.New("token removed")
	}
	return o.s.Sign(r, digest, opts)
}

// TestSignWithAnySigner: a key that is only a crypto.Signer signs tokens
// that the set's own verifier accepts, for both algorithms (ES256 turned
// from ASN.1 into r||s), and a failing signer is an error, not a token.
func TestSignWithAnySigner(t *testing.T) {
	const issuer = "https://auth.example.no/"
	now := time.Unix(1_700_000_000, 0)
	for _, alg := range Algorithms() {
		t.Run("ok/"+alg, func(t *testing.T) {
			inner, err := Generate(alg)
			if err != nil {
				t.Fatal(err)
			}
			o := &opaqueSigner{s: inner.Private}
			k, err := NewKey(o, alg)
			if err != nil {
				t.Fatal(err)
			}
			if k.ID != inner.ID {
				t.Fatalf("kid %s, want the thumbprint %s", k.ID, inner.ID)
			}
			s, err := NewSet(k)
			if err != nil {
				t.Fatal(err)
			}
			v, err := resource.NewVerifier(t.Context(), resource.VerifierConfig{
				Issuer: issuer, KeySet: s.KeySet(), NoLeeway: true, Now: func() time.Time { return now },
			})
			if err != nil {
				t.Fatal(err)
			}
			// Several rounds: an ES256 r or s with leading zero bytes
			// must still come out at full size.
			for range 20 {
				tok, err := s.Sign(map[string]any{"iss": issuer, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "client_id": "c1",
					"consumer": map[string]string{"authority": "iso6523-actorid-upis", "ID": "0192:910000001"}})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := v.Verify(t.Context(), tok); err != nil {
					t.Fatalf("Verify: %v", err)
				}
			}
			if o.calls != 20 {
				t.Fatalf("the signer was asked %d times, want 20", o.calls)
			}
		})
	}
	t.Run("fail/signer-error", func(t *testing.T) {
		inner, err := Generate("ES256")
		if err != nil {
			t.Fatal(err)
		}
		k, err := NewKey(&opaqueSigner{s: inner.Private, fail: true}, "ES256")
		if err != nil {
			t.Fatal(err)
		}
		s, err := NewSet(k)
		if err != nil {
			t.Fatal(err)
		}
		if tok, err := s.Sign(map[string]any{"iss": issuer}); err == nil || tok != "" {
			t.Fatalf("a failing signer made %q, %v", tok, err)
		}
	})
}

// TestECDSARaw: the ASN.1 to r||s conversion refuses what is not one
// signature in range.
func TestECDSARaw(t *testing.T) {
	k, err := Generate("ES256")
	if err != nil {
		t.Fatal(err)
	}
	for name, der := range map[string][]byte{
		"fail/empty":    nil,
		"fail/garbage":  []byte("not asn.1"),
		"fail/zero-r":   {0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01},
		"fail/trailing": {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ecdsaRaw(der, k.Private.Public()); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	t.Run("ok/small", func(t *testing.T) {
		out, err := ecdsaRaw([]byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02}, k.Private.Public())
		if err != nil || len(out) != 64 || out[31] != 1 || out[63] != 2 {
			t.Fatalf("%x, %v", out, err)
		}
	})
}
