package records_test

import (
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"slices"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/store"
	"github.com/portvakt/portvakt/internal/testpki"
)

func fields(errs []records.FieldError) []string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Field)
	}
	return out
}

func TestCheckText(t *testing.T) {
	type check func(field, s string) []records.FieldError
	cases := []struct {
		name  string
		check check
		in    string
		fail  bool
	}{
		{"ok/name-empty", records.CheckName, "", false},
		{"ok/name-255", records.CheckName, strings.Repeat("a", 255), false},
		{"ok/name-255-multibyte", records.CheckName, strings.Repeat("ø", 255), false},
		{"ok/name-norwegian-sami", records.CheckName, "Skatteetaten – Sámediggi ÆØÅ", false},
		{"ok/description-4000", records.CheckDescription, strings.Repeat("å", 4000), false},
		{"ok/long-description-newlines", records.CheckLongDescription, "first paragraph\n\nsecond", false},
		{"ok/long-description-4000", records.CheckLongDescription, strings.Repeat("a\n", 2000), false},
		{"fail/name-256", records.CheckName, strings.Repeat("a", 256), true},
		{"fail/name-256-multibyte", records.CheckName, strings.Repeat("ø", 256), true},
		{"fail/name-huge", records.CheckName, strings.Repeat("a", 100000), true},
		{"fail/name-newline", records.CheckName, "a\nb", true},
		{"fail/name-tab", records.CheckName, "a\tb", true},
		{"fail/name-nul", records.CheckName, "a\x00b", true},
		{"fail/name-esc", records.CheckName, "a\x1b[31mb", true},
		{"fail/name-del", records.CheckName, "a\x7fb", true},
		{"fail/name-c1", records.CheckName, "a\u0085b", true},
		{"fail/name-c1-csi", records.CheckName, "a\u009bb", true},
		{"fail/name-bidi-rlo", records.CheckName, "abc\u202Edcb", true},
		{"fail/name-bidi-lre", records.CheckName, "\u202Aabc", true},
		{"fail/name-bidi-pdf", records.CheckName, "abc\u202C", true},
		{"fail/name-bidi-lri", records.CheckName, "\u2066abc", true},
		{"fail/name-bidi-pdi", records.CheckName, "abc\u2069", true},
		{"fail/name-lrm", records.CheckName, "abc\u200E", true},
		{"fail/name-rlm", records.CheckName, "abc\u200F", true},
		{"fail/name-alm", records.CheckName, "abc\u061C", true},
		{"fail/name-line-separator", records.CheckName, "abc\u2028def", true},
		{"fail/name-invalid-utf8", records.CheckName, "abc\xffdef", true},
		{"fail/description-4001", records.CheckDescription, strings.Repeat("a", 4001), true},
		{"fail/description-newline", records.CheckDescription, "a\nb", true},
		{"fail/description-bidi", records.CheckDescription, "a\u202Eb", true},
		{"fail/long-description-4001", records.CheckLongDescription, strings.Repeat("a", 4001), true},
		{"fail/long-description-cr", records.CheckLongDescription, "a\r\nb", true},
		{"fail/long-description-control", records.CheckLongDescription, "a\x07b", true},
		{"fail/long-description-bidi", records.CheckLongDescription, "a\n\u2067b", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			errs := c.check("f", c.in)
			if c.fail != (len(errs) > 0) {
				t.Fatalf("got %v, want failure %v", errs, c.fail)
			}
			for _, e := range errs {
				if e.Field != "f" || e.Detail == "" {
					t.Errorf("problem %+v", e)
				}
				if strings.ContainsAny(e.Detail, "\x00\x1b\u202e\n") {
					t.Errorf("the message echoes the bad input: %q", e.Detail)
				}
			}
		})
	}
}

func TestValidateClient(t *testing.T) {
	many := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = "acme:s" + strings.Repeat("x", i%7) + string(rune('a'+i%26))
		}
		return out
	}
	cases := []struct {
		name string
		c    store.Client
		want []string
	}{
		{"ok/minimal", store.Client{Description: "d"}, nil},
		{"ok/limits", store.Client{ClientName: strings.Repeat("n", 255), Description: strings.Repeat("d", 4000), Scopes: many(100), AccessTokenLifetime: 7200}, nil},
		{"fail/no-description", store.Client{}, []string{"description"}},
		{"fail/name-too-long", store.Client{ClientName: strings.Repeat("n", 256), Description: "d"}, []string{"client_name"}},
		{"fail/name-bidi-override", store.Client{ClientName: "evil\u202Egnp.exe", Description: "d"}, []string{"client_name"}},
		{"fail/description-control", store.Client{Description: "d\x1b"}, []string{"description"}},
		{"fail/lifetime", store.Client{Description: "d", AccessTokenLifetime: 7201}, []string{"access_token_lifetime"}},
		{"fail/too-many-scopes", store.Client{Description: "d", Scopes: many(101)}, []string{"scopes"}},
		{"fail/six-thousand-scopes", store.Client{Description: "d", Scopes: append(many(5999), "bad scope")}, []string{"scopes"}},
		{"fail/scope-names", store.Client{Description: "d", Scopes: []string{"acme:ok", "nocolon", "acme:bad scope", "Acme:x", ":x", "acme:", strings.Repeat("a", 200) + ":" + strings.Repeat("b", 60), "acme:\u202E"}},
			[]string{"scopes[1]", "scopes[2]", "scopes[3]", "scopes[4]", "scopes[5]", "scopes[6]", "scopes[7]"}},
		{"fail/everything", store.Client{ClientName: "\x00", AccessTokenLifetime: -1, Scopes: []string{"x"}}, []string{"description", "client_name", "access_token_lifetime", "scopes[0]"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := fields(records.ValidateClient(c.c)); !slices.Equal(got, c.want) {
				t.Fatalf("fields %q, want %q", got, c.want)
			}
		})
	}
}

func TestValidateScope(t *testing.T) {
	const issuer = "https://auth.example.no/"
	auds := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = "https://api.example.no/" + strings.Repeat("x", i)
		}
		return out
	}
	names := []struct {
		name, prefix, subscope string
		want                   []string
	}{
		{"ok/name", "acme", "v1/orders.read", nil},
		{"ok/name-255", "acme", strings.Repeat("s", 250), nil},
		{"ok/prefix-63", strings.Repeat("p", 63), "s", nil},
		{"fail/name-256", "acme", strings.Repeat("s", 251), []string{"subscope"}},
		{"fail/prefix-64", strings.Repeat("p", 64), "s", []string{"prefix"}},
		{"fail/prefix-upper", "Acme", "s", []string{"prefix"}},
		{"fail/subscope-space", "acme", "a b", []string{"subscope"}},
		{"fail/subscope-bidi", "acme", "a\u202Eb", []string{"subscope"}},
		{"fail/both-empty", "", "", []string{"prefix", "subscope"}},
	}
	for _, c := range names {
		t.Run(c.name, func(t *testing.T) {
			if got := fields(records.ValidateScopeName(c.prefix, c.subscope)); !slices.Equal(got, c.want) {
				t.Fatalf("fields %q, want %q", got, c.want)
			}
		})
	}
	content := []struct {
		name string
		s    store.Scope
		want []string
	}{
		{"ok/minimal", store.Scope{Description: "d"}, nil},
		{"ok/limits", store.Scope{Description: strings.Repeat("d", 4000), LongDescription: strings.Repeat("l\n", 2000), DelegationSource: issuer,
			AllowedIntegrationTypes: []string{"maskinporten"}, ATMaxAge: 7200, Visibility: "PRIVATE", Audiences: auds(20)}, nil},
		{"fail/description-control-char", store.Scope{Description: "d\x07"}, []string{"description"}},
		{"fail/description-too-long", store.Scope{Description: strings.Repeat("d", 4001)}, []string{"description"}},
		{"fail/long-description-too-long", store.Scope{Description: "d", LongDescription: strings.Repeat("d", 4001)}, []string{"long_description"}},
		{"fail/long-description-bidi", store.Scope{Description: "d", LongDescription: "a\u2066b"}, []string{"long_description"}},
		{"fail/integration-types-many", store.Scope{Description: "d", AllowedIntegrationTypes: slices.Repeat([]string{"maskinporten"}, 6000)}, []string{"allowed_integration_types"}},
		{"fail/integration-type-unknown", store.Scope{Description: "d", AllowedIntegrationTypes: []string{"krr"}}, []string{"allowed_integration_types[0]"}},
		{"fail/audiences-many", store.Scope{Description: "d", Audiences: auds(21)}, []string{"audiences"}},
		{"fail/audience-too-long", store.Scope{Description: "d", Audiences: []string{"https://a.example/" + strings.Repeat("x", 2048)}}, []string{"audiences[0]"}},
		{"fail/audience-twice", store.Scope{Description: "d", Audiences: []string{"https://a.example/", "https://a.example/"}}, []string{"audiences[1]"}},
		{"ok/binding/empty-is-none", store.Scope{Description: "d", TokenBinding: ""}, nil},
		{"ok/binding/none", store.Scope{Description: "d", TokenBinding: "none"}, nil},
		{"ok/binding/dpop", store.Scope{Description: "d", TokenBinding: "dpop"}, nil},
		{"ok/binding/mtls", store.Scope{Description: "d", TokenBinding: "mtls"}, nil},
		{"ok/binding/any", store.Scope{Description: "d", TokenBinding: "any"}, nil},
		{"fail/binding/unknown", store.Scope{Description: "d", TokenBinding: "bearer"}, []string{"token_binding"}},
		{"fail/binding/upper-case", store.Scope{Description: "d", TokenBinding: "DPoP"}, []string{"token_binding"}},
		{"fail/everything", store.Scope{DelegationSource: "https://other.example/", ATMaxAge: -1, Visibility: "SECRET", Audiences: []string{"x"}, TokenBinding: "x"},
			[]string{"description", "delegation_source", "at_max_age", "visibility", "audiences[0]", "token_binding"}},
	}
	for _, c := range content {
		t.Run(c.name, func(t *testing.T) {
			if got := fields(records.ValidateScopeContent(c.s, issuer)); !slices.Equal(got, c.want) {
				t.Fatalf("fields %q, want %q", got, c.want)
			}
		})
	}
}

func TestWithin(t *testing.T) {
	got := records.Within("records.clients[2]", []records.FieldError{{Field: "client_name", Detail: "x"}, {Field: "", Detail: "y"}})
	if got[0].Field != "records.clients[2].client_name" || got[1].Field != "records.clients[2]" {
		t.Fatalf("%+v", got)
	}
}

// b64 is base64url without padding, as JWK members are.
func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// oddModulus is a random odd number of exactly bits bits: the shape of an
// RSA modulus, without the cost of generating a key that large.
func oddModulus(t *testing.T, bits int) string {
	t.Helper()
	b := make([]byte, (bits+7)/8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	n := new(big.Int).SetBytes(b)
	n.SetBit(n, bits-1, 1)
	for i := bits; i < len(b)*8; i++ {
		n.SetBit(n, i, 0)
	}
	n.SetBit(n, 0, 1)
	return b64(n.Bytes())
}

func jwkMap(t *testing.T, key any, kid string) map[string]any {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKey{Key: key, KeyID: kid})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestValidateClientKeys(t *testing.T) {
	rsaKey, err := testpki.RSAKey(2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := testpki.ECKey(elliptic.P256())
	if err != nil {
		t.Fatal(err)
	}
	p224, err := testpki.ECKey(elliptic.P224())
	if err != nil {
		t.Fatal(err)
	}
	p521, err := testpki.ECKey(elliptic.P521())
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// with returns a copy of m with the members set (nil deletes).
	with := func(m map[string]any, kv ...any) map[string]any {
		out := map[string]any{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(out, kv[i].(string))
			} else {
				out[kv[i].(string)] = kv[i+1]
			}
		}
		return out
	}
	rsaPub := jwkMap(t, rsaKey.Public(), "rsa")
	rsaPriv := jwkMap(t, rsaKey, "rsa")
	ecPub := jwkMap(t, ecKey.Public(), "ec")
	ecPriv := jwkMap(t, ecKey, "ec")
	// onlyPrivate is the public RSA key plus one private member of the
	// full private key.
	onlyPrivate := func(member string) map[string]any { return with(rsaPub, member, rsaPriv[member]) }
	evenN := func() string {
		n := new(big.Int).Set(rsaKey.N)
		n.SetBit(n, 0, 0)
		return b64(n.Bytes())
	}()
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	n := b64(rsaKey.N.Bytes())

	cases := []struct {
		name string
		keys []any
		want []string
	}{
		{"ok/rsa-ec", []any{rsaPub, ecPub}, nil},
		{"ok/empty", []any{}, nil},
		{"ok/five", []any{with(ecPub, "kid", "1"), with(ecPub, "kid", "2"), with(ecPub, "kid", "3"), with(ecPub, "kid", "4"), with(ecPub, "kid", "5")}, nil},
		{"ok/kid-128", []any{with(ecPub, "kid", strings.Repeat("k", 128))}, nil},
		{"ok/kid-printable", []any{with(ecPub, "kid", "!~{}\"\\")}, nil},
		{"ok/rsa-8192", []any{with(rsaPub, "n", oddModulus(t, 8192))}, nil},
		{"ok/rsa-e-3", []any{with(rsaPub, "e", "Aw")}, nil},
		{"ok/use-alg", []any{with(rsaPub, "use", "sig", "alg", "PS256"), with(ecPub, "use", "sig", "alg", "ES256")}, nil},
		{"ok/unknown-members", []any{with(ecPub, "exp", 1234, "note", "from GET")}, nil},
		{"fail/six", []any{ecPub, ecPub, ecPub, ecPub, ecPub, ecPub}, []string{"keys"}},
		{"fail/six-thousand", slices.Repeat([]any{"x"}, 6000), []string{"keys"}},
		{"fail/private-member-d", []any{ecPriv}, []string{"keys[0].d"}},
		{"fail/private-member-rsa-all", []any{rsaPriv}, []string{"keys[0].d", "keys[0].p", "keys[0].q", "keys[0].dp", "keys[0].dq", "keys[0].qi"}},
		{"fail/private-member-p", []any{onlyPrivate("p")}, []string{"keys[0].p"}},
		{"fail/private-member-q", []any{onlyPrivate("q")}, []string{"keys[0].q"}},
		{"fail/private-member-dp", []any{onlyPrivate("dp")}, []string{"keys[0].dp"}},
		{"fail/private-member-dq", []any{onlyPrivate("dq")}, []string{"keys[0].dq"}},
		{"fail/private-member-qi", []any{onlyPrivate("qi")}, []string{"keys[0].qi"}},
		{"fail/private-member-oth", []any{with(rsaPub, "oth", []any{map[string]any{"r": "AQ", "d": "AQ", "t": "AQ"}})}, []string{"keys[0].oth"}},
		{"fail/private-member-null", []any{with(rsaPub, "d", json.RawMessage("null"))}, []string{"keys[0].d"}},
		{"fail/symmetric-k", []any{map[string]any{"kty": "oct", "k": "c2VjcmV0", "kid": "h"}}, []string{"keys[0].k"}},
		{"fail/symmetric-k-on-rsa", []any{with(rsaPub, "k", "c2VjcmV0")}, []string{"keys[0].k"}},
		{"fail/private-member-upper-case", []any{with(rsaPub, "D", rsaPriv["d"])}, []string{"keys[0].d"}},
		{"fail/private-member-mixed-case", []any{with(rsaPub, "dP", rsaPriv["dp"])}, []string{"keys[0].dp"}},
		{"fail/private-member-kelvin-sign", []any{with(rsaPub, "\u212a", "c2VjcmV0")}, []string{"keys[0].k"}},
		{"fail/member-twice", []any{raw(`{"kty":"EC","crv":"P-256","kid":"a","kid":"b","x":"` + ecPub["x"].(string) + `","y":"` + ecPub["y"].(string) + `"}`)}, []string{"keys[0]"}},
		{"fail/member-twice-other-case", []any{raw(`{"kty":"RSA","kid":"a","n":"` + n + `","N":"` + n + `","e":"AQAB"}`)}, []string{"keys[0]"}},
		{"fail/member-name-case", []any{with(ecPub, "kid", nil, "KID", "x")}, []string{"keys[0].KID"}},
		{"fail/even-modulus", []any{with(rsaPub, "n", evenN)}, []string{"keys[0].n"}},
		{"fail/even-exponent", []any{with(rsaPub, "e", b64(big.NewInt(65536).Bytes()))}, []string{"keys[0].e"}},
		{"fail/exponent-one", []any{with(rsaPub, "e", "AQ")}, []string{"keys[0].e"}},
		{"fail/exponent-zero", []any{with(rsaPub, "e", "AA")}, []string{"keys[0].e"}},
		{"fail/exponent-32-bits", []any{with(rsaPub, "e", b64(big.NewInt(1<<32+1).Bytes()))}, []string{"keys[0].e"}},
		{"fail/exponent-huge", []any{with(rsaPub, "e", oddModulus(t, 4096))}, []string{"keys[0].e"}},
		{"fail/rsa-too-small", []any{with(rsaPub, "n", oddModulus(t, 2047))}, []string{"keys[0].n"}},
		{"fail/rsa-too-large", []any{with(rsaPub, "n", oddModulus(t, 8193))}, []string{"keys[0].n"}},
		{"fail/rsa-huge", []any{with(rsaPub, "n", oddModulus(t, 100000))}, []string{"keys[0].n"}},
		{"fail/rsa-padded-base64", []any{with(rsaPub, "e", "AQAB==")}, []string{"keys[0].e"}},
		{"fail/rsa-no-n", []any{with(rsaPub, "n", nil)}, []string{"keys[0]"}},
		{"fail/kid-missing", []any{with(ecPub, "kid", nil)}, []string{"keys[0].kid"}},
		{"fail/kid-empty", []any{with(ecPub, "kid", "")}, []string{"keys[0].kid"}},
		{"fail/kid-too-long", []any{with(ecPub, "kid", strings.Repeat("k", 129))}, []string{"keys[0].kid"}},
		{"fail/kid-10k", []any{with(ecPub, "kid", strings.Repeat("k", 10240))}, []string{"keys[0].kid"}},
		{"fail/kid-control-char", []any{with(ecPub, "kid", "a\x1bb")}, []string{"keys[0].kid"}},
		{"fail/kid-space", []any{with(ecPub, "kid", "a b")}, []string{"keys[0].kid"}},
		{"fail/kid-non-ascii", []any{with(ecPub, "kid", "nøkkel")}, []string{"keys[0].kid"}},
		{"fail/kid-not-string", []any{with(ecPub, "kid", 7)}, []string{"keys[0].kid"}},
		{"fail/kid-duplicate", []any{ecPub, with(rsaPub, "kid", "ec")}, []string{"keys[1].kid"}},
		{"fail/curve-p224", []any{map[string]any{"kty": "EC", "crv": "P-224", "kid": "p224", "x": b64(p224.X.Bytes()), "y": b64(p224.Y.Bytes())}}, []string{"keys[0]"}},
		{"fail/curve-p521", []any{jwkMap(t, p521.Public(), "p521")}, []string{"keys[0].crv"}},
		{"fail/ec-off-curve", []any{with(ecPub, "x", ecPub["y"])}, []string{"keys[0]"}},
		{"fail/use-enc", []any{with(ecPub, "use", "enc")}, []string{"keys[0].use"}},
		{"fail/alg-mismatch", []any{with(ecPub, "alg", "RS256"), with(rsaPub, "kid", "r", "alg", "ES256")}, []string{"keys[0].alg", "keys[1].alg"}},
		{"fail/okp", []any{jwkMap(t, edPub, "ed")}, []string{"keys[0].kty"}},
		{"fail/not-object", []any{"str", 5, []any{}}, []string{"keys[0]", "keys[1]", "keys[2]"}},
		{"fail/every-key-named", []any{ecPriv, with(ecPub, "kid", "x\x00"), with(rsaPub, "e", "AQ"), ecPub, with(ecPub, "use", "enc")}, []string{"keys[0].d", "keys[1].kid", "keys[2].e", "keys[4].use", "keys[4].kid"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var in []json.RawMessage
			for _, k := range c.keys {
				b, err := json.Marshal(k)
				if err != nil {
					t.Fatal(err)
				}
				in = append(in, b)
			}
			keys, errs := records.ValidateClientKeys("keys", in)
			if got := fields(errs); !slices.Equal(got, c.want) {
				t.Fatalf("fields %q, want %q: %v", got, c.want, errs)
			}
			if len(errs) > 0 {
				if keys != nil {
					t.Errorf("refused set returned keys %v", keys)
				}
				for _, e := range errs {
					if len(e.Detail) > 300 {
						t.Errorf("%s: message of %d bytes", e.Field, len(e.Detail))
					}
				}
				return
			}
			if len(keys) != len(c.keys) {
				t.Fatalf("%d keys, want %d", len(keys), len(c.keys))
			}
			for i, k := range keys {
				var m map[string]any
				if err := json.Unmarshal(k.JWK, &m); err != nil {
					t.Fatal(err)
				}
				if k.KID == "" || k.KID != m["kid"] {
					t.Errorf("key %d: kid %q, JWK %s", i, k.KID, k.JWK)
				}
				var jk jose.JSONWebKey
				if err := jk.UnmarshalJSON(k.JWK); err != nil || !jk.IsPublic() {
					t.Errorf("key %d: stored JWK does not parse as a public key: %v", i, err)
				}
			}
		})
	}
}

func TestPrivateMember(t *testing.T) {
	for _, c := range []struct {
		name string
		want bool
	}{
		{"d", true}, {"p", true}, {"q", true}, {"dp", true}, {"dq", true}, {"qi", true}, {"oth", true}, {"k", true},
		{"D", true}, {"Qi", true}, {"OTH", true}, {"\u212a", true},
		{"kid", false}, {"kty", false}, {"n", false}, {"e", false}, {"x", false}, {"y", false}, {"crv", false}, {"exp", false}, {"", false},
	} {
		if got := records.PrivateMember(c.name); got != c.want {
			t.Errorf("PrivateMember(%q) = %v, want %v", c.name, got, c.want)
		}
	}
}
