package dpop

import (
	"testing"
	"time"
)

// FuzzVerify: whatever the header holds, Verify answers with a proof or an
// error, never a panic, and a proof it accepts names a key.
func FuzzVerify(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	k, err := GenerateKey()
	if err != nil {
		f.Fatal(err)
	}
	good, err := k.Proof("POST", "https://a.example/token", "", "", now)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{good, "", "a.b.c", "..", good + "x", good[:len(good)/2], "eyJhbGciOiJub25lIn0.e30."} {
		f.Add(s)
	}
	v, err := NewVerifier(VerifierConfig{Now: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, proof string) {
		p, err := v.Verify(proof, Request{Method: "POST", URL: "https://a.example/token"})
		if err == nil && (p == nil || p.JKT == "" || p.Key == nil) {
			t.Fatalf("accepted without a key: %+v", p)
		}
	})
}
