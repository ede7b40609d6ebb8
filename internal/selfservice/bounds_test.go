package selfservice_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/selfservice"
	"github.com/portvakt/portvakt/internal/store"
	"github.com/portvakt/portvakt/internal/testpki"
	"github.com/portvakt/portvakt/pkg/client"
)

// TestInputBounds: the bounds of docs/selfservice.md on names, descriptions and lists,
// through real HTTP. A refused body is refused whole, writes nothing, gets
// a small answer of at most 20 problems, and is not echoed back.
func TestInputBounds(t *testing.T) { eachEngine(t, testInputBounds) }

func testInputBounds(t *testing.T, eng engine) {
	w := newWorld(t, eng)
	P, C, A := w.provider, w.consumer, w.admin
	cl := "/clients/" + w.clientID

	// 99 more scopes the consumer can get: with acme:api, 100.
	hundred := []string{"acme:api"}
	for i := range 99 {
		sub := fmt.Sprintf("bulk.%02d", i)
		w.must(P, "POST", "/scopes", map[string]any{"prefix": "acme", "subscope": sub, "description": "d", "accessible_for_all": true}, http.StatusCreated, nil)
		hundred = append(hundred, "acme:"+sub)
	}
	// Six thousand short scope names fit in the 64 KiB body limit.
	sixThousand := make([]string, 6000)
	for i := range sixThousand {
		sixThousand[i] = "a:" + strconv.FormatInt(int64(i), 36)
	}
	badScopes := make([]string, 100)
	badFields := make([]string, 20)
	for i := range badScopes {
		badScopes[i] = "bad scope " + strconv.Itoa(i)
		if i < 20 {
			badFields[i] = "scopes[" + strconv.Itoa(i) + "]"
		}
	}
	audiences := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = "https://api.acme.example/v" + strconv.Itoa(i)
		}
		return out
	}
	scope := func(kv ...any) map[string]any {
		m := map[string]any{"prefix": "acme", "subscope": "x", "description": "d"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	long := func(n int) string { return strings.Repeat("ø", n) }

	cases := []struct {
		name         string
		tok          string
		method, path string
		body         any
		status       int
		fields       []string
		omitted      int // fail: errors_omitted
	}{
		// clients
		{"ok/clients/name-255", C, "POST", "/clients", map[string]any{"client_name": long(255), "description": long(4000)}, 201, nil, 0},
		{"ok/clients/100-scopes", C, "POST", "/clients", map[string]any{"description": "d", "scopes": hundred}, 201, nil, 0},
		{"ok/clients/update-100-scopes", C, "PUT", cl, map[string]any{"description": "d", "scopes": hundred}, 200, nil, 0},
		{"fail/clients/too-many-scopes", C, "POST", "/clients", map[string]any{"description": "d", "scopes": sixThousand}, 400, []string{"scopes"}, 0},
		{"fail/clients/too-many-scopes-update", C, "PUT", cl, map[string]any{"description": "d", "scopes": sixThousand}, 400, []string{"scopes"}, 0},
		{"fail/clients/101-scopes", C, "POST", "/clients", map[string]any{"description": "d", "scopes": append(slices.Clone(hundred), "acme:more")}, 400, []string{"scopes"}, 0},
		{"fail/clients/too-many-problems", C, "POST", "/clients", map[string]any{"description": "d", "scopes": badScopes}, 400, badFields, 80},
		{"fail/clients/name-bidi-override", C, "POST", "/clients", map[string]any{"client_name": "acme\u202Etxt.exe", "description": "d"}, 400, []string{"client_name"}, 0},
		{"fail/clients/name-bidi-isolate", C, "POST", "/clients", map[string]any{"client_name": "acme\u2067x\u2069", "description": "d"}, 400, []string{"client_name"}, 0},
		{"fail/clients/name-rlm", C, "POST", "/clients", map[string]any{"client_name": "acme\u200F", "description": "d"}, 400, []string{"client_name"}, 0},
		{"fail/clients/name-too-long", C, "POST", "/clients", map[string]any{"client_name": long(256), "description": "d"}, 400, []string{"client_name"}, 0},
		{"fail/clients/name-control-char", C, "PUT", cl, map[string]any{"client_name": "a\x1b[2Jb", "description": "d"}, 400, []string{"client_name"}, 0},
		{"fail/clients/description-control-char", C, "POST", "/clients", map[string]any{"description": "line\nbreak"}, 400, []string{"description"}, 0},
		{"fail/clients/description-too-long", C, "POST", "/clients", map[string]any{"description": long(4001)}, 400, []string{"description"}, 0},

		// scopes
		{"ok/scopes/limits", P, "POST", "/scopes", scope("subscope", "limits", "description", long(4000), "long_description", strings.Repeat("ø\n", 2000),
			"audiences", audiences(20), "allowed_integration_types", []string{"maskinporten"}), 201, nil, 0},
		{"fail/scopes/description-control-char", P, "POST", "/scopes", scope("description", "bell\x07"), 400, []string{"description"}, 0},
		{"fail/scopes/description-c1-char", P, "POST", "/scopes", scope("description", "csi\u009b2J"), 400, []string{"description"}, 0},
		{"fail/scopes/description-too-long", P, "POST", "/scopes", scope("description", long(4001)), 400, []string{"description"}, 0},
		{"fail/scopes/description-bidi-override", P, "PUT", "/scopes?scope=acme:api", map[string]any{"description": "\u202Dx"}, 400, []string{"description"}, 0},
		{"fail/scopes/long-description-too-long", P, "POST", "/scopes", scope("long_description", long(4001)), 400, []string{"long_description"}, 0},
		{"fail/scopes/long-description-control-char", P, "PUT", "/scopes?scope=acme:api", map[string]any{"description": "d", "long_description": "a\r\nb"}, 400, []string{"long_description"}, 0},
		{"fail/scopes/too-many-audiences", P, "POST", "/scopes", scope("audiences", audiences(21)), 400, []string{"audiences"}, 0},
		{"fail/scopes/audience-too-long", P, "POST", "/scopes", scope("audiences", []string{"https://api.acme.example/" + strings.Repeat("x", 2048)}), 400, []string{"audiences[0]"}, 0},
		{"fail/scopes/audience-twice", P, "POST", "/scopes", scope("audiences", []string{"https://a.example/", "https://a.example/"}), 400, []string{"audiences[1]"}, 0},
		{"fail/scopes/integration-types-many", P, "POST", "/scopes", scope("allowed_integration_types", slices.Repeat([]string{"maskinporten"}, 4000)), 400, []string{"allowed_integration_types"}, 0},
		{"fail/scopes/integration-type-twice", P, "PUT", "/scopes?scope=acme:api", map[string]any{"description": "d", "allowed_integration_types": []string{"maskinporten", "maskinporten"}}, 400, []string{"allowed_integration_types"}, 0},
		{"fail/scopes/subscope-too-long", P, "POST", "/scopes", scope("subscope", strings.Repeat("s", 251)), 400, []string{"subscope"}, 0},
		{"fail/scopes/param-too-long", P, "GET", "/scopes?scope=acme:" + strings.Repeat("s", 300), nil, 400, []string{"scope"}, 0},

		// any body
		{"fail/body/unknown-field-long", C, "POST", "/clients", map[string]any{"description": "d", strings.Repeat("f", 1000): 1}, 400, []string{"body"}, 0},
		{"fail/body/unknown-field-bidi", C, "POST", "/clients", map[string]any{"description": "d", "x‮y": 1}, 400, []string{"body"}, 0},

		// audit
		{"fail/audit/target-too-long", C, "GET", "/audit?target=" + strings.Repeat("t", 256), nil, 400, []string{"target"}, 0},

		// prefixes
		{"ok/prefixes/63", A, "PUT", "/prefixes/" + strings.Repeat("p", 63), map[string]any{"owner_org": providerOrg}, 200, nil, 0},
		{"fail/prefixes/too-long", A, "PUT", "/prefixes/" + strings.Repeat("p", 64), map[string]any{"owner_org": providerOrg}, 400, []string{"prefix"}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rep, refused := w.inputCase(t, c.name, c.tok, c.method, c.path, c.body, c.status)
			if !refused {
				return
			}
			if len(rep.body) > 4096 {
				t.Errorf("problem document of %d bytes", len(rep.body))
			}
			var p struct {
				selfservice.Problem
				ErrorsOmitted int `json:"errors_omitted"`
			}
			p.Problem = problemOf(t, rep)
			if err := json.Unmarshal(rep.body, &p); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, fe := range p.Errors {
				got = append(got, fe.Field)
			}
			if !slices.Equal(got, c.fields) || len(p.Errors) > 20 {
				t.Errorf("fields %q, want %q (%s)", got, c.fields, rep.body)
			}
			if p.ErrorsOmitted != c.omitted || p.Problem.ErrorsOmitted != c.omitted {
				t.Errorf("errors_omitted %d, want %d", p.ErrorsOmitted, c.omitted)
			}
			if c.omitted > 0 && !strings.Contains(p.Detail, fmt.Sprintf("and %d more problems", c.omitted)) {
				t.Errorf("detail does not say problems were left out: %s", p.Detail)
			}
			// The bad input is not echoed back.
			for _, s := range []string{"\u202e", "\u2067", "\u200f", "\u202d", "\u009b", `\u001b`, `\u0007`, `\r`, "øøøøøøøø"} {
				if bytes.Contains(rep.body, []byte(s)) {
					t.Errorf("the problem echoes %q: %.300s", s, rep.body)
				}
			}
		})
	}
}

// b64url is base64url without padding, as JWK members are.
func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// oddModulus is a random odd number of exactly bits bits: an RSA modulus's
// shape, without the cost of generating a key that large.
func oddModulus(t *testing.T, bits int) string {
	t.Helper()
	b := make([]byte, (bits+7)/8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	n := new(big.Int).SetBytes(b)
	for i := bits; i < len(b)*8; i++ {
		n.SetBit(n, i, 0)
	}
	n.SetBit(n, bits-1, 1)
	n.SetBit(n, 0, 1)
	return b64url(n.Bytes())
}

// TestJWKSBounds: a key set with private key material, a bad RSA key or a
// bad kid is refused whole, naming the member; nothing is stored (GET
// /jwks unchanged), nothing is audited, and the private material appears
// neither in the answer nor in the audit log. Keys at the limits work.
func TestJWKSBounds(t *testing.T) { eachEngine(t, testJWKSBounds) }

func testJWKSBounds(t *testing.T, eng engine) {
	w := newWorld(t, eng)
	C := w.consumer
	path := "/clients/" + w.clientID + "/jwks"
	rsaKey, err := testpki.RSAKey(2048)
	if err != nil {
		t.Fatal(err)
	}
	priv := jwkOf(t, rsaKey, "rsa")
	pub := jwkOf(t, rsaKey.Public(), "rsa")
	with := func(m map[string]any, kv ...any) map[string]any {
		out := map[string]any{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i].(string)] = kv[i+1]
		}
		return out
	}
	// secrets are the private values the refused sets carry: none may be
	// answered, stored or audited.
	secrets := []string{}
	for _, m := range []string{"d", "p", "q", "dp", "dq", "qi"} {
		secrets = append(secrets, priv[m].(string))
	}
	oth := []any{map[string]any{"r": b64url([]byte("other-prime-r-secret")), "d": b64url([]byte("other-prime-d-secret")), "t": b64url([]byte("other-prime-t-secret"))}}
	hmac := b64url([]byte("a symmetric HMAC key, never to be stored"))
	secrets = append(secrets, hmac, oth[0].(map[string]any)["r"].(string))
	_, ecGood := ecJWK(t, "good")
	evenN := new(big.Int).Set(rsaKey.N)
	evenN.SetBit(evenN, 0, 0)

	cases := []struct {
		name   string
		keys   []any
		fields []string
	}{
		{"fail/jwks/private-member-d", []any{with(pub, "d", priv["d"])}, []string{"keys[0].d"}},
		{"fail/jwks/private-member-p", []any{with(pub, "p", priv["p"])}, []string{"keys[0].p"}},
		{"fail/jwks/private-member-q", []any{with(pub, "q", priv["q"])}, []string{"keys[0].q"}},
		{"fail/jwks/private-member-dp", []any{with(pub, "dp", priv["dp"])}, []string{"keys[0].dp"}},
		{"fail/jwks/private-member-dq", []any{with(pub, "dq", priv["dq"])}, []string{"keys[0].dq"}},
		{"fail/jwks/private-member-qi", []any{with(pub, "qi", priv["qi"])}, []string{"keys[0].qi"}},
		{"fail/jwks/private-member-oth", []any{with(pub, "oth", oth)}, []string{"keys[0].oth"}},
		{"fail/jwks/private-key-whole", []any{priv}, []string{"keys[0].d", "keys[0].p", "keys[0].q", "keys[0].dp", "keys[0].dq", "keys[0].qi"}},
		{"fail/jwks/private-member-upper-case", []any{with(pub, "P", priv["p"])}, []string{"keys[0].p"}},
		{"fail/jwks/private-member-beside-good-key", []any{ecGood, with(pub, "qi", priv["qi"])}, []string{"keys[1].qi"}},
		{"fail/jwks/symmetric-k", []any{map[string]any{"kty": "oct", "k": hmac, "kid": "hmac"}}, []string{"keys[0].k"}},
		{"fail/jwks/even-modulus", []any{with(pub, "n", b64url(evenN.Bytes()))}, []string{"keys[0].n"}},
		{"fail/jwks/even-exponent", []any{with(pub, "e", b64url(big.NewInt(65536).Bytes()))}, []string{"keys[0].e"}},
		{"fail/jwks/exponent-one", []any{with(pub, "e", "AQ")}, []string{"keys[0].e"}},
		{"fail/jwks/rsa-too-small", []any{with(pub, "n", oddModulus(t, 2047))}, []string{"keys[0].n"}},
		{"fail/jwks/rsa-too-large", []any{with(pub, "n", oddModulus(t, 8193))}, []string{"keys[0].n"}},
		{"fail/jwks/kid-too-long", []any{with(ecGood, "kid", strings.Repeat("k", 129))}, []string{"keys[0].kid"}},
		{"fail/jwks/kid-10k", []any{with(ecGood, "kid", strings.Repeat("k", 10240))}, []string{"keys[0].kid"}},
		{"fail/jwks/kid-control-char", []any{with(ecGood, "kid", "k\x1b[0m")}, []string{"keys[0].kid"}},
		{"fail/jwks/kid-duplicate", []any{ecGood, with(pub, "kid", "good")}, []string{"keys[1].kid"}},
		{"fail/jwks/too-many", slices.Repeat([]any{ecGood}, 6), []string{"keys"}},
	}
	stored := w.must(C, "GET", path, nil, http.StatusOK, nil).body
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(w.auditAll(t.Context()))
			rep := w.do(C, "POST", path, map[string]any{"keys": c.keys})
			if rep.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %.500s", rep.status, rep.body)
			}
			var got []string
			for _, fe := range problemOf(t, rep).Errors {
				got = append(got, fe.Field)
			}
			if !slices.Equal(got, c.fields) {
				t.Errorf("fields %q, want %q (%s)", got, c.fields, rep.body)
			}
			if now := w.must(C, "GET", path, nil, http.StatusOK, nil).body; !bytes.Equal(now, stored) {
				t.Errorf("the key set changed:\n%s\nwas\n%s", now, stored)
			}
			evs := w.auditAll(t.Context())
			if len(evs) != before {
				t.Errorf("a refused upload wrote %d audit events", len(evs)-before)
			}
			audit, err := json.Marshal(evs)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range secrets {
				if bytes.Contains(rep.body, []byte(s)) {
					t.Errorf("the answer holds private key material: %.300s", rep.body)
				}
				if bytes.Contains(audit, []byte(s)) {
					t.Errorf("the audit log holds private key material")
				}
			}
			if bytes.Contains(rep.body, []byte("kkkkkkkkkk")) || bytes.Contains(rep.body, []byte(`\u001b`)) {
				t.Errorf("the answer echoes the bad kid: %.300s", rep.body)
			}
		})
	}

	t.Run("ok/jwks/kid-128", func(t *testing.T) {
		kid := strings.Repeat("k", 100) + "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
		kid = kid[:128]
		key, jwk := ecJWK(t, kid)
		var set struct{ Keys []map[string]any }
		w.must(C, "POST", path, map[string]any{"keys": []any{jwk}}, http.StatusOK, &set)
		if len(set.Keys) != 1 || set.Keys[0]["kid"] != kid {
			t.Fatalf("jwks %+v", set)
		}
		s, err := client.KeySigner(key, kid)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.fetch(w.clientID, s, "", "acme:api"); err != nil {
			t.Fatalf("token with a 128-character kid: %v", err)
		}
	})
	t.Run("ok/jwks/stored-private-member-not-answered", func(t *testing.T) {
		// A key stored before uploads were checked: answers leave out its
		// private members.
		legacy, err := json.Marshal(with(pub, "kid", "legacy", "p", priv["p"], "D", priv["d"]))
		if err != nil {
			t.Fatal(err)
		}
		err = w.db.Update(t.Context(), func(tx store.Tx) error {
			cl, err := tx.GetClient(t.Context(), w.clientID)
			if err != nil {
				return err
			}
			cl.Keys = append(cl.Keys, store.ClientKey{KID: "legacy", JWK: legacy, Created: time.Now(), Expires: time.Now().AddDate(1, 0, 0)})
			return tx.UpdateClient(t.Context(), cl)
		})
		if err != nil {
			t.Fatal(err)
		}
		got := w.must(C, "GET", path, nil, http.StatusOK, nil).body
		if !bytes.Contains(got, []byte(`"legacy"`)) || bytes.Contains(got, []byte(priv["p"].(string))) || bytes.Contains(got, []byte(priv["d"].(string))) {
			t.Fatalf("GET /jwks: %.600s", got)
		}
	})
	t.Run("ok/jwks/rsa-8192", func(t *testing.T) {
		n := oddModulus(t, 8192)
		big8192 := with(pub, "n", n, "kid", "rsa-8192")
		var set struct{ Keys []map[string]any }
		w.must(C, "POST", path, map[string]any{"keys": []any{big8192, ecGood}}, http.StatusOK, &set)
		if len(set.Keys) != 2 || set.Keys[0]["n"] != n || set.Keys[0]["kid"] != "rsa-8192" {
			t.Fatalf("jwks %.300v", set)
		}
		got := w.must(C, "GET", path, nil, http.StatusOK, nil).body
		if !bytes.Contains(got, []byte(n)) {
			t.Fatal("GET /jwks does not hold the 8192-bit key")
		}
	})
}
