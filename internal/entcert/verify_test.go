package entcert

import (
	"crypto/elliptic"
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/protocol"
	"github.com/portvakt/portvakt/internal/testpki"
)

const (
	goodOrg = "974760673"
	badOrg  = "974760674" // fails mod-11
)

// fixture is one test PKI and a pinned clock.
type fixture struct {
	t   testing.TB
	now time.Time
	pki *testpki.PKI
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	p, err := testpki.New("Test")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	p.Now = func() time.Time { return now }
	return &fixture{t: t, now: now, pki: p}
}

// leaf issues a leaf with a fast EC key unless o.Key is set.
func (f *fixture) leaf(o testpki.LeafOptions) *testpki.Leaf {
	f.t.Helper()
	if o.Key == nil {
		k, err := testpki.ECKey(elliptic.P256())
		if err != nil {
			f.t.Fatal(err)
		}
		o.Key = k
	}
	if o.Org == "" {
		o.Org = goodOrg
	}
	l, err := f.pki.Leaf(o)
	if err != nil {
		f.t.Fatal(err)
	}
	return l
}

func ders(certs ...*x509.Certificate) [][]byte {
	out := make([][]byte, len(certs))
	for i, c := range certs {
		out[i] = c.Raw
	}
	return out
}

func (f *fixture) policy() Policy {
	return Policy{
		Roots:         []*x509.Certificate{f.pki.Root.Cert},
		Intermediates: []*x509.Certificate{f.pki.Intermediate.Cert},
		Now:           func() time.Time { return f.now },
	}
}

func (f *fixture) verifier(p Policy) *Verifier {
	f.t.Helper()
	v, err := NewVerifier(p)
	if err != nil {
		f.t.Fatal(err)
	}
	return v
}

// wantGrantError checks err is an invalid_grant protocol error whose public
// description contains want.
func wantGrantError(t *testing.T, err error, want string) {
	t.Helper()
	var pe *protocol.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *protocol.Error", err, err)
	}
	if pe.Code != protocol.CodeInvalidGrant {
		t.Fatalf("code %q, want invalid_grant", pe.Code)
	}
	if !strings.Contains(pe.Description, want) {
		t.Fatalf("description %q does not contain %q", pe.Description, want)
	}
}

func TestVerify(t *testing.T) {
	f := newFixture(t)
	other := newFixture(t) // an untrusted PKI
	oidGood := asn1.ObjectIdentifier{2, 16, 578, 1, 26, 1, 3, 2}
	oidOther := asn1.ObjectIdentifier{2, 16, 578, 1, 26, 1, 3, 9}

	expiredCA, err := f.pki.Root.SubCA("Old Issuing CA", f.now.Add(-6*365*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	leafOfExpiredCA, err := expiredCA.Leaf(testpki.LeafOptions{Org: goodOrg}, f.now)
	if err != nil {
		t.Fatal(err)
	}
	rsa1024, err := testpki.RSAKey(1024)
	if err != nil {
		t.Fatal(err)
	}
	p224, err := testpki.ECKey(elliptic.P224())
	if err != nil {
		t.Fatal(err)
	}

	type tc struct {
		name     string
		chain    [][]byte
		policy   func(*Policy)
		wantOrg  string
		wantSEID int
		wantErr  string // substring of the public description
	}
	seid1 := f.leaf(testpki.LeafOptions{Style: testpki.SEID1})
	cases := []tc{
		{name: "ok/seid1", chain: ders(seid1.Cert), wantOrg: goodOrg, wantSEID: 1},
		{name: "ok/seid2", chain: ders(f.leaf(testpki.LeafOptions{Style: testpki.SEID2}).Chain...), wantOrg: goodOrg, wantSEID: 2},
		{name: "ok/org-in-O", chain: ders(f.leaf(testpki.LeafOptions{Style: testpki.OrgInO}).Cert), wantOrg: goodOrg, wantSEID: 0},
		{name: "ok/rsa-2048", chain: ders(f.leaf(testpki.LeafOptions{Key: mustRSA(t, 2048)}).Cert), wantOrg: goodOrg, wantSEID: 2},
		{name: "ok/ec-p384", chain: ders(f.leaf(testpki.LeafOptions{Key: mustEC(t, elliptic.P384())}).Cert), wantOrg: goodOrg, wantSEID: 2},
		{name: "ok/leaf-alone-configured-intermediate", chain: ders(seid1.Cert), wantOrg: goodOrg, wantSEID: 1},
		{
			name: "ok/leaf-and-intermediate-in-x5c", chain: ders(seid1.Chain...),
			policy:  func(p *Policy) { p.Intermediates = nil },
			wantOrg: goodOrg, wantSEID: 1,
		},
		{
			name:    "ok/allowed-policy",
			chain:   ders(f.leaf(testpki.LeafOptions{Policies: []asn1.ObjectIdentifier{oidOther, oidGood}}).Cert),
			policy:  func(p *Policy) { p.AllowedPolicies = []asn1.ObjectIdentifier{oidGood} },
			wantOrg: goodOrg, wantSEID: 2,
		},
		{
			name: "fail/leaf-alone-no-configured-intermediate", chain: ders(seid1.Cert),
			policy:  func(p *Policy) { p.Intermediates = nil },
			wantErr: "does not chain to a trusted CA",
		},
		{name: "fail/untrusted-root", chain: ders(other.leaf(testpki.LeafOptions{}).Chain...), wantErr: "does not chain to a trusted CA"},
		{
			name:    "fail/expired-leaf",
			chain:   ders(f.leaf(testpki.LeafOptions{NotBefore: f.now.Add(-48 * time.Hour), NotAfter: f.now.Add(-time.Hour)}).Cert),
			wantErr: "The certificate expired",
		},
		{
			name:    "fail/not-yet-valid",
			chain:   ders(f.leaf(testpki.LeafOptions{NotBefore: f.now.Add(time.Hour), NotAfter: f.now.Add(48 * time.Hour)}).Cert),
			wantErr: "not valid yet",
		},
		{name: "fail/expired-intermediate", chain: ders(leafOfExpiredCA.Chain...), wantErr: "CA certificate in the chain has expired"},
		{name: "fail/self-signed", chain: ders(f.leaf(testpki.LeafOptions{SelfSigned: true}).Cert), wantErr: "self-signed"},
		{name: "fail/intermediate-as-leaf", chain: ders(f.pki.Intermediate.Cert), wantErr: "is a CA certificate"},
		{name: "fail/no-keyusage", chain: ders(f.leaf(testpki.LeafOptions{NoKeyUsage: true}).Cert), wantErr: "no keyUsage extension"},
		{name: "fail/non-critical-keyusage", chain: ders(f.leaf(testpki.LeafOptions{NonCriticalKeyUsage: true}).Cert), wantErr: "must be marked critical"},
		{
			name:    "fail/keyusage-without-digitalsignature",
			chain:   ders(f.leaf(testpki.LeafOptions{KeyUsage: x509.KeyUsageKeyEncipherment}).Cert),
			wantErr: "must include digitalSignature",
		},
		{name: "fail/rsa-1024", chain: ders(f.leaf(testpki.LeafOptions{Key: rsa1024}).Cert), wantErr: "at least 2048"},
		{name: "fail/ec-p224", chain: ders(f.leaf(testpki.LeafOptions{Key: p224}).Cert), wantErr: "P-256 or P-384"},
		{
			name:    "fail/policy-not-allowed",
			chain:   ders(f.leaf(testpki.LeafOptions{Policies: []asn1.ObjectIdentifier{oidOther}}).Cert),
			policy:  func(p *Policy) { p.AllowedPolicies = []asn1.ObjectIdentifier{oidGood} },
			wantErr: "none of the accepted certificate policies",
		},
		{
			name:    "fail/no-policy-when-required",
			chain:   ders(f.leaf(testpki.LeafOptions{}).Cert),
			policy:  func(p *Policy) { p.AllowedPolicies = []asn1.ObjectIdentifier{oidGood} },
			wantErr: "none of the accepted certificate policies",
		},
		{name: "fail/invalid-mod11-seid1", chain: ders(f.leaf(testpki.LeafOptions{Org: badOrg, Style: testpki.SEID1}).Cert), wantErr: "fails the mod-11 check"},
		{name: "fail/invalid-mod11-seid2", chain: ders(f.leaf(testpki.LeafOptions{Org: badOrg}).Cert), wantErr: "fails the mod-11 check"},
		{name: "fail/no-org", chain: ders(f.leaf(testpki.LeafOptions{Org: "ACME", Style: testpki.OrgInO}).Cert), wantErr: "no organisation number"},
		{name: "fail/garbage-leaf", chain: [][]byte{[]byte("not a certificate")}, wantErr: "not a valid DER X.509 certificate"},
		{name: "fail/garbage-intermediate", chain: [][]byte{seid1.Cert.Raw, {0x30, 0x03, 0x02, 0x01, 0x01}}, wantErr: "Certificate 1 of the x5c header"},
		{name: "fail/empty-chain", chain: nil, wantErr: "must be a JSON array"},
		{name: "fail/empty-certificate", chain: [][]byte{{}}, wantErr: "must be a JSON array"},
		{name: "fail/too-many", chain: make([][]byte, 11), wantErr: "at most 10"},
		{name: "fail/oversize", chain: [][]byte{make([]byte, MaxCertSize+1)}, wantErr: "larger than 16 KiB"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := f.policy()
			if c.policy != nil {
				c.policy(&p)
			}
			v := f.verifier(p)
			id, err := v.Verify(t.Context(), c.chain)
			if c.wantErr != "" {
				wantGrantError(t, err, c.wantErr)
				if v.cache.len() != 0 {
					t.Fatal("a failure was cached")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if id.Org != c.wantOrg || id.SEID != c.wantSEID {
				t.Fatalf("org %q seid %d, want %q %d", id.Org, id.SEID, c.wantOrg, c.wantSEID)
			}
			if id.Leaf == nil || id.PublicKey == nil || id.Fingerprint != sha256Sum(c.chain[0]) {
				t.Fatalf("incomplete identity %+v", id)
			}
			// The second call is a cache hit with the same answer.
			id2, err := v.Verify(t.Context(), c.chain)
			if err != nil || id2.Org != id.Org || id2.Leaf != id.Leaf {
				t.Fatalf("cached verify: %v %+v", err, id2)
			}
		})
	}
}

func TestOrgOrder(t *testing.T) {
	for _, c := range []struct {
		name, in string
		fn       func(string) string
		want     string
	}{
		{"ok/O-dash", "ACME AS - 974760673", orgFromO, goodOrg},
		{"ok/O-no-space", "ACME AS -974760673", orgFromO, goodOrg},
		{"ok/O-trailing-space", "ACME AS - 974760673 ", orgFromO, goodOrg},
		{"fail/O-no-dash", "ACME AS 974760673", orgFromO, ""},
		{"fail/O-ten-digits", "ACME AS - 1974760673", orgFromO, ""},
		{"fail/O-short", "974760673", orgFromO, ""},
		{"ok/orgid-NTRNO", "NTRNO-974760673", orgFromOrgID, goodOrg},
		{"ok/orgid-other-scheme", "VATNO-974760673", orgFromOrgID, goodOrg},
		{"fail/orgid-no-dash", "974760673", orgFromOrgID, ""},
		{"fail/orgid-letters", "NTRNO-97476067X", orgFromOrgID, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.fn(c.in); got != c.want {
				t.Fatalf("%q: got %q want %q", c.in, got, c.want)
			}
		})
	}
}

func TestDecodeX5C(t *testing.T) {
	f := newFixture(t)
	l := f.leaf(testpki.LeafOptions{})
	valid, _ := json.Marshal(l.X5C())
	big := make([]string, 11)
	for i := range big {
		big[i] = l.X5C()[0]
	}
	tooMany, _ := json.Marshal(big)
	oversize, _ := json.Marshal([]string{strings.Repeat("AAAA", MaxCertSize/3+2)})
	for _, c := range []struct {
		name    string
		raw     string
		wantN   int
		wantErr string
	}{
		{name: "ok/chain", raw: string(valid), wantN: 2},
		{name: "ok/whitespace", raw: " [ \"" + l.X5C()[0] + "\" ] ", wantN: 1},
		{name: "fail/string", raw: `"` + l.X5C()[0] + `"`, wantErr: "must be a JSON array"},
		{name: "fail/missing", raw: ``, wantErr: "must be a JSON array"},
		{name: "fail/null", raw: `null`, wantErr: "must be a JSON array"},
		{name: "fail/empty-array", raw: `[]`, wantErr: "must be a JSON array"},
		{name: "fail/object", raw: `{"a":1}`, wantErr: "must be a JSON array"},
		{name: "fail/number-member", raw: `[1]`, wantErr: "must be a JSON array"},
		{name: "fail/null-member", raw: `[null]`, wantErr: "must be a JSON array"},
		{name: "fail/nested-array", raw: `[["AAAA"]]`, wantErr: "must be a JSON array"},
		{name: "fail/empty-string", raw: `[""]`, wantErr: "must be a JSON array"},
		{name: "fail/bad-base64", raw: `["!!!!"]`, wantErr: "not valid standard base64"},
		{name: "fail/base64url", raw: `["_-__"]`, wantErr: "not valid standard base64"},
		{name: "fail/unpadded", raw: `["AAA"]`, wantErr: "not valid standard base64"},
		{name: "fail/too-many", raw: string(tooMany), wantErr: "at most 10"},
		{name: "fail/oversize-member", raw: string(oversize), wantErr: "larger than 16 KiB"},
		{name: "fail/oversize-header", raw: `[` + strings.Repeat(` `, maxRawX5C) + `]`, wantErr: "too large"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := DecodeX5C(json.RawMessage(c.raw))
			if c.wantErr != "" {
				wantGrantError(t, err, c.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != c.wantN {
				t.Fatalf("got %d certificates, want %d", len(got), c.wantN)
			}
			if _, err := x509.ParseCertificate(got[0]); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestNewVerifier(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct {
		name string
		p    Policy
		ok   bool
	}{
		{"ok/zero-values", Policy{Roots: []*x509.Certificate{f.pki.Root.Cert}}, true},
		{"fail/no-roots", Policy{}, false},
		{"fail/nil-root", Policy{Roots: []*x509.Certificate{nil}}, false},
		{"fail/leaf-as-intermediate", Policy{Roots: []*x509.Certificate{f.pki.Root.Cert}, Intermediates: []*x509.Certificate{f.leaf(testpki.LeafOptions{}).Cert}}, false},
		{"fail/negative-ttl", Policy{Roots: []*x509.Certificate{f.pki.Root.Cert}, CacheTTL: -1}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewVerifier(c.p)
			if (err == nil) != c.ok {
				t.Fatalf("err = %v, want ok=%v", err, c.ok)
			}
		})
	}
}
