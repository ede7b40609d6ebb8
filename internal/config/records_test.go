package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// declared is a valid config declaring one client; the cases break one
// field of it at a time.
const declared = `
issuer: https://auth.example.no/
platform: {org: "310000019"}
trust: {roots: [root.pem]}
records:
  prefixes: [{prefix: demo, owner_org: "310000027"}]
  scopes:
    - {prefix: demo, subscope: read, description: "Read the demo API", long_description: "First paragraph.\n\nSecond paragraph."}
  clients:
    - client_id: 6f1c2a4e-0000-4000-8000-000000000001
      client_orgno: "310000035"
      client_name: NAME
      description: DESCRIPTION
      scopes: SCOPES
      jwks: JWKS
`

func privateECJWK(t *testing.T) (public, private string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := json.Marshal(jose.JSONWebKey{Key: k.Public(), KeyID: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	priv, err := json.Marshal(jose.JSONWebKey{Key: k, KeyID: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	return string(pub), string(priv)
}

// TestDeclaredRecordsBounds: the declared records follow the same content
// rules as the API's, and a config breaking them is refused at start-up
// with every problem named by its key.
func TestDeclaredRecordsBounds(t *testing.T) {
	withKEK(t)
	pub, priv := privateECJWK(t)
	var many []string
	for i := range 101 {
		many = append(many, `"demo:s`+strconv.Itoa(i)+`"`)
	}
	cases := []struct {
		name, field, value string
		want               []string // "" = valid
	}{
		{"ok/declared", "", "", nil},
		{"ok/name-255", "NAME", strings.Repeat("n", 255), nil},
		{"fail/client-name-bidi-override", "NAME", `"demo \u202Eevil"`, []string{"records.clients[0].client_name:"}},
		{"fail/client-name-too-long", "NAME", strings.Repeat("n", 256), []string{"records.clients[0].client_name:"}},
		{"fail/client-description-control-char", "DESCRIPTION", `"a\u001bb"`, []string{"records.clients[0].description:"}},
		{"fail/client-too-many-scopes", "SCOPES", "[" + strings.Join(many, ",") + "]", []string{"records.clients[0].scopes:"}},
		{"fail/client-scope-name", "SCOPES", `["demo:read", "not a scope"]`, []string{"records.clients[0].scopes[1]:"}},
		{"fail/client-jwks-private", "JWKS", "[" + priv + "]", []string{"records.clients[0].jwks[0].d:"}},
		{"fail/client-jwks-kid", "JWKS", "[" + strings.Replace(pub, `"k1"`, `"k 1"`, 1) + "]", []string{"records.clients[0].jwks[0].kid:"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			y := strings.NewReplacer("NAME", "demo client", "DESCRIPTION", "a demo client", "SCOPES", `["demo:read"]`, "JWKS", "["+pub+"]")
			if c.field != "" {
				y = strings.NewReplacer(c.field, c.value, "NAME", "demo client", "DESCRIPTION", "a demo client", "SCOPES", `["demo:read"]`, "JWKS", "["+pub+"]")
			}
			cfg, err := Parse([]byte(y.Replace(declared)), t.TempDir(), false)
			if err != nil {
				t.Fatal(err)
			}
			err = cfg.Validate()
			if c.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("no problem for %s in:\n%v", w, err)
				}
			}
			if strings.ContainsAny(err.Error(), "\u202e\x1b") || strings.Contains(err.Error(), `"d":`) {
				t.Errorf("the problem echoes the bad value: %v", err)
			}
		})
	}
}

func TestDeclaredScopeBounds(t *testing.T) {
	withKEK(t)
	for _, c := range []struct{ name, scope, want string }{
		{"fail/description-control-char", `{prefix: demo, subscope: x, description: "a\u0007b"}`, "records.scopes[0].description:"},
		{"fail/description-bidi", `{prefix: demo, subscope: x, description: "a\u2066b"}`, "records.scopes[0].description:"},
		{"fail/long-description-too-long", `{prefix: demo, subscope: x, description: d, long_description: "` + strings.Repeat("l", 4001) + `"}`, "records.scopes[0].long_description:"},
		{"fail/subscope-too-long", `{prefix: demo, subscope: ` + strings.Repeat("s", 251) + `, description: d}`, "records.scopes[0].subscope:"},
		{"fail/integration-type", `{prefix: demo, subscope: x, description: d, allowed_integration_types: [krr]}`, "records.scopes[0].allowed_integration_types[0]:"},
		{"fail/audiences", `{prefix: demo, subscope: x, description: d, audiences: [` + strings.Repeat(`"https://a.example/",`, 21) + `]}`, "records.scopes[0].audiences:"},
		{"fail/prefix-too-long", `{prefix: demo, subscope: x, description: d}`, "records.prefixes[1].prefix:"},
		{"fail/binding/token-binding-unknown", `{prefix: demo, subscope: x, description: d, token_binding: bearer}`, "records.scopes[0].token_binding:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			y := "issuer: https://auth.example.no/\nplatform: {org: \"310000019\"}\ntrust: {roots: [root.pem]}\nrecords:\n" +
				"  prefixes: [{prefix: demo, owner_org: \"310000027\"}, {prefix: " + strings.Repeat("p", 64) + ", owner_org: \"310000027\"}]\n" +
				"  scopes: [" + c.scope + "]\n"
			if c.name != "fail/prefix-too-long" {
				y = strings.Replace(y, ", {prefix: "+strings.Repeat("p", 64)+", owner_org: \"310000027\"}", "", 1)
			}
			cfg, err := Parse([]byte(y), t.TempDir(), false)
			if err != nil {
				t.Fatal(err)
			}
			err = cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want a problem for %s, got:\n%v", c.want, err)
			}
		})
	}
}

// TestDeclaredJWKSFileBounds: keys from a jwks_file follow the upload
// rules too; a private member stops the start.
func TestDeclaredJWKSFileBounds(t *testing.T) {
	withKEK(t)
	pub, priv := privateECJWK(t)
	for _, c := range []struct {
		name, keys string
		fail       bool
	}{
		{"ok/public", pub, false},
		{"fail/private-member-d", priv, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "c.jwks"), []byte(`{"keys":[`+c.keys+`]}`), 0o600); err != nil {
				t.Fatal(err)
			}
			y := strings.NewReplacer("NAME", "demo", "DESCRIPTION", "d", "SCOPES", `["demo:read"]`, "jwks: JWKS", "jwks_file: c.jwks").Replace(declared)
			cfg, err := Parse([]byte(y), dir, false)
			if err != nil {
				t.Fatal(err)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			st, err := cfg.Static(time.Now())
			if !c.fail {
				if err != nil || len(st.Clients) != 1 || len(st.Clients[0].Keys) != 1 || st.Clients[0].Keys[0].KID != "k1" {
					t.Fatalf("static %+v: %v", st.Clients, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "records.clients[0]: jwks[0].d:") {
				t.Fatalf("want a problem for records.clients[0]: jwks[0].d, got %v", err)
			}
		})
	}
}

// TestDeclaredBinding: a declared scope takes its token_binding (none when
// left out) and a declared client its require_dpop, into the records the
// store overlays.
func TestDeclaredBinding(t *testing.T) {
	withKEK(t)
	y := `
issuer: https://auth.example.no/
platform: {org: "310000019"}
trust: {roots: [root.pem]}
records:
  prefixes: [{prefix: demo, owner_org: "310000027"}]
  scopes:
    - {prefix: demo, subscope: plain, description: d, accessible_for_all: true}
    - {prefix: demo, subscope: dpop, description: d, accessible_for_all: true, token_binding: dpop}
    - {prefix: demo, subscope: mtls, description: d, accessible_for_all: true, token_binding: mtls}
    - {prefix: demo, subscope: any, description: d, accessible_for_all: true, token_binding: any}
  clients:
    - {client_id: 6f1c2a4e-0000-4000-8000-000000000001, client_orgno: "310000035", description: bound, scopes: ["demo:dpop"], require_dpop: true}
    - {client_id: 6f1c2a4e-0000-4000-8000-000000000002, client_orgno: "310000035", description: plain, scopes: ["demo:plain"]}
`
	cfg, err := Parse([]byte(y), t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	recs, err := cfg.Static(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"demo:plain": "none", "demo:dpop": "dpop", "demo:mtls": "mtls", "demo:any": "any", "portvakt:admin": "none"}
	seen := 0
	for _, s := range recs.Scopes {
		if w, ok := want[s.Name]; ok {
			seen++
			if s.TokenBinding != w {
				t.Errorf("%s: token_binding %q, want %q", s.Name, s.TokenBinding, w)
			}
		}
	}
	if seen != len(want) {
		t.Fatalf("found %d of the %d scopes", seen, len(want))
	}
	if len(recs.Clients) != 2 || !recs.Clients[0].RequireDPoP || recs.Clients[1].RequireDPoP {
		t.Fatalf("clients' require_dpop: %+v", recs.Clients)
	}
}
