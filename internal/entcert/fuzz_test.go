package entcert

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/portvakt/portvakt/internal/protocol"
	"github.com/portvakt/portvakt/internal/testpki"
)

// FuzzDecodeAndVerify feeds arbitrary x5c header values through DecodeX5C and
// Verify: neither may panic, and every failure must be invalid_grant. The
// committed corpus (testdata/fuzz) holds certificates of a throwaway PKI; the
// seeds added here chain to this run's PKI, so the success path is fuzzed too.
func FuzzDecodeAndVerify(f *testing.F) {
	fx := newFixture(f)
	v := fx.verifier(fx.policy())
	for _, o := range []testpki.LeafOptions{
		{Style: testpki.SEID1}, {Style: testpki.SEID2}, {Style: testpki.OrgInO},
		{NonCriticalKeyUsage: true}, {SelfSigned: true},
	} {
		raw, _ := json.Marshal(fx.leaf(o).X5C())
		f.Add(raw)
	}
	for _, s := range []string{`[]`, `null`, `"MIIB"`, `[1]`, `["AAAA"]`, `["MA=="]`, `[""]`, `[["a"]]`, `{"x5c":[]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		chain, err := DecodeX5C(raw)
		if err != nil {
			mustBeInvalidGrant(t, err)
			return
		}
		if len(chain) == 0 || len(chain) > MaxChainLen {
			t.Fatalf("DecodeX5C accepted %d certificates", len(chain))
		}
		id, err := v.Verify(t.Context(), chain)
		if err != nil {
			mustBeInvalidGrant(t, err)
			return
		}
		if len(id.Org) != 9 || id.Leaf == nil || id.PublicKey == nil {
			t.Fatalf("incomplete identity %+v", id)
		}
	})
}

func mustBeInvalidGrant(t *testing.T, err error) {
	t.Helper()
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Code != protocol.CodeInvalidGrant {
		t.Fatalf("error %v is not invalid_grant", err)
	}
}
