package tokenendpoint_test

import (
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// verify checks the token against the published JWKS and returns header and claims.
func (e *env) verify(t *testing.T, token string) (map[string]any, map[string]any) {
	t.Helper()
	resp, err := e.srv.Client().Get(e.srv.URL + "/jwk")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	var claims jwt.MapClaims
	tok, err := jwt.ParseWithClaims(token, &claims, func(tk *jwt.Token) (any, error) {
		keys := set.Key(tk.Header["kid"].(string))
		if len(keys) != 1 {
			t.Fatalf("kid %v not in the JWKS", tk.Header["kid"])
		}
		return keys[0].Key, nil
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithTimeFunc(e.clock.Now))
	if err != nil || !tok.Valid {
		t.Fatalf("token does not verify against /jwk: %v", err)
	}
	return tok.Header, claims
}

func orgClaim(org string) map[string]any {
	return map[string]any{"authority": "iso6523-actorid-upis", "ID": "0192:" + org}
}

func TestDirectTokenClaims(t *testing.T) {
	e := newEnv(t)
	i := e.ids["consumer-seid1"]
	c := e.claims(i, "demo:read  demo:write demo:read demo:open")
	c["pid"] = validPID
	c["client_id"] = "ignored"
	r := e.grant(e.sign(i, c, nil))
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	if r.header.Get("Cache-Control") != "no-store" || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("headers: %v", r.header)
	}
	keys := make([]string, 0, len(r.body))
	for k := range r.body {
		keys = append(keys, k)
	}
	if len(r.body) != 4 || r.body["token_type"] != "Bearer" || r.body["expires_in"] != float64(60) || r.body["scope"] != "demo:read demo:write demo:open" {
		t.Fatalf("response body %s", r.raw)
	}
	hdr, cl := e.verify(t, r.body["access_token"].(string))
	if hdr["typ"] != "at+jwt" || hdr["alg"] != "RS256" || hdr["kid"] != e.keys.Active().ID {
		t.Fatalf("header %v", hdr)
	}
	now := e.clock.Now().Unix()
	want := map[string]any{
		"iss": issuer, "client_id": i.clientID, "client_amr": "virksomhetssertifikat", "token_type": "Bearer",
		"scope": "demo:read demo:write demo:open", "consumer": orgClaim(consumerOrg), "aud": "unspecified",
		"pid": validPID, "iat": float64(now), "exp": float64(now + 60),
	}
	jti, _ := cl["jti"].(string)
	if len(jti) < 16 {
		t.Fatalf("jti %q", jti)
	}
	delete(cl, "jti")
	if !reflect.DeepEqual(map[string]any(cl), want) {
		t.Fatalf("claims\n got %v\nwant %v", cl, want)
	}
	if e.issued() != 1 {
		t.Fatalf("%d issued rows", e.issued())
	}
}

func TestDelegatedTokenClaims(t *testing.T) {
	e := newEnv(t)
	i := e.ids["vendor"]
	c := e.claims(i, "demo:read")
	c["consumer_org"] = consumerOrg
	c["resource"] = []string{"https://api.example/b", "https://api.example/a", "https://api.example/b"}
	r := e.grant(e.sign(i, c, nil))
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	_, cl := e.verify(t, r.body["access_token"].(string))
	now := e.clock.Now().Unix()
	delete(cl, "jti")
	want := map[string]any{
		"iss": issuer, "client_id": i.clientID, "client_amr": "virksomhetssertifikat", "token_type": "Bearer",
		"scope": "demo:read", "consumer": orgClaim(consumerOrg), "supplier": orgClaim(vendorOrg),
		"delegation_source": issuer, "aud": []any{"https://api.example/b", "https://api.example/a"},
		"iat": float64(now), "exp": float64(now + 120),
	}
	if !reflect.DeepEqual(map[string]any(cl), want) {
		t.Fatalf("claims\n got %v\nwant %v", cl, want)
	}
}

func TestGrants(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name, id, scope string
		mod             func(c jwt.MapClaims)
		hdr             map[string]any
		amr             string
		aud             any
		expiresIn       float64
	}{
		{name: "ok/seid1-certificate", id: "consumer-seid1", scope: "demo:read", amr: "virksomhetssertifikat", aud: "unspecified", expiresIn: 120},
		{name: "ok/seid2-certificate", id: "consumer-seid2", scope: "demo:read", amr: "virksomhetssertifikat", aud: "unspecified", expiresIn: 120},
		{name: "ok/leaf-alone-configured-intermediate", id: "consumer-seid2", scope: "demo:read", amr: "virksomhetssertifikat", aud: "unspecified", expiresIn: 120,
			hdr: map[string]any{"x5c": "LEAF"}},
		{name: "ok/certificate-ps256", id: "consumer-seid2", scope: "demo:read", hdr: map[string]any{"alg": "PS256"}, amr: "virksomhetssertifikat", aud: "unspecified", expiresIn: 120},
		{name: "ok/certificate-rs512", id: "consumer-seid2", scope: "demo:read", hdr: map[string]any{"alg": "RS512"}, amr: "virksomhetssertifikat", aud: "unspecified", expiresIn: 120},
		{name: "ok/kid-rsa", id: "kid-rsa", scope: "demo:read", amr: "private_key_jwt", aud: "unspecified", expiresIn: 120},
		{name: "ok/kid-rsa-ps384", id: "kid-rsa", scope: "demo:read", hdr: map[string]any{"alg": "PS384"}, amr: "private_key_jwt", aud: "unspecified", expiresIn: 120},
		{name: "ok/kid-ec-p256", id: "kid-ec256", scope: "demo:read", amr: "private_key_jwt", aud: "unspecified", expiresIn: 120},
		{name: "ok/kid-ec-p384", id: "kid-ec384", scope: "demo:read", amr: "private_key_jwt", aud: "unspecified", expiresIn: 120},
		{name: "ok/kid-with-x5c-beside-ignored", id: "kid-rsa", scope: "demo:read", hdr: map[string]any{"x5c": []string{"garbage"}}, amr: "private_key_jwt", aud: "unspecified", expiresIn: 120},
		{name: "ok/accessible-for-all", id: "vendor", scope: "demo:open", amr: "virksomhetssertifikat", aud: "unspecified", expiresIn: 120},
		{name: "ok/integration-type-listed", id: "consumer-seid1", scope: "demo:any-type", amr: "virksomhetssertifikat", aud: "unspecified", expiresIn: 120},
		{name: "ok/lifetime-smallest-at-max-age", id: "consumer-seid1", scope: "demo:write demo:short demo:read", amr: "virksomhetssertifikat", aud: "unspecified", expiresIn: 30},
		{name: "ok/one-resource-is-a-string", id: "consumer-seid1", scope: "demo:records", amr: "virksomhetssertifikat", expiresIn: 120,
			mod: func(c jwt.MapClaims) { c["resource"] = "https://api.example/records" }, aud: "https://api.example/records"},
		{name: "ok/one-element-resource-array-is-a-string", id: "consumer-seid1", scope: "demo:records", amr: "virksomhetssertifikat", expiresIn: 120,
			mod: func(c jwt.MapClaims) { c["resource"] = []string{"https://api.example/records"} }, aud: "https://api.example/records"},
		{name: "ok/two-allowed-resources", id: "consumer-seid1", scope: "demo:records", amr: "virksomhetssertifikat", expiresIn: 120,
			mod: func(c jwt.MapClaims) {
				c["resource"] = []string{"https://api.example/archive", "https://api.example/records"}
			}, aud: []any{"https://api.example/archive", "https://api.example/records"}},
		{name: "ok/resource-free-scope-any-resource", id: "consumer-seid1", scope: "demo:read", amr: "virksomhetssertifikat", expiresIn: 120,
			mod: func(c jwt.MapClaims) { c["resource"] = "urn:example:api" }, aud: "urn:example:api"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.t = t
			i := e.ids[c.id]
			cl := e.claims(i, c.scope)
			if c.mod != nil {
				c.mod(cl)
			}
			hdr := c.hdr
			if hdr["x5c"] == "LEAF" {
				hdr = map[string]any{"x5c": i.x5c[:1]}
			}
			r := e.grant(e.sign(i, cl, hdr))
			if r.status != 200 {
				t.Fatalf("%d %s", r.status, r.raw)
			}
			if r.body["expires_in"] != c.expiresIn {
				t.Fatalf("expires_in %v, want %v", r.body["expires_in"], c.expiresIn)
			}
			_, tc := e.verify(t, r.body["access_token"].(string))
			if tc["client_amr"] != c.amr || !reflect.DeepEqual(tc["aud"], c.aud) {
				t.Fatalf("client_amr %v aud %v", tc["client_amr"], tc["aud"])
			}
			if got := tc["exp"].(float64) - tc["iat"].(float64); got != c.expiresIn {
				t.Fatalf("exp - iat = %v", got)
			}
		})
	}
}

func TestDiscoveryAndJWKS(t *testing.T) {
	e := newEnv(t)
	get := func(path string) (*http.Response, map[string]any) {
		resp, err := e.srv.Client().Get(e.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %s", path, b)
		}
		return resp, m
	}
	for _, p := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		resp, m := get(p)
		if resp.StatusCode != 200 || m["issuer"] != issuer || m["token_endpoint"] != issuer+"token" || m["jwks_uri"] != issuer+"jwk" {
			t.Fatalf("%s: %v", p, m)
		}
		if !reflect.DeepEqual(m["grant_types_supported"], []any{jwtBearer}) ||
			!reflect.DeepEqual(m["token_endpoint_auth_methods_supported"], []any{"private_key_jwt"}) {
			t.Fatalf("%s: %v", p, m)
		}
		algs, _ := m["token_endpoint_auth_signing_alg_values_supported"].([]any)
		if len(algs) != 8 {
			t.Fatalf("algs %v", algs)
		}
	}
	resp, m := get("/jwk")
	if !strings.Contains(resp.Header.Get("Cache-Control"), "max-age") {
		t.Fatalf("JWKS Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
	keys := m["keys"].([]any)
	k := keys[0].(map[string]any)
	for _, f := range []string{"kid", "kty", "alg", "use"} {
		if k[f] == nil || k[f] == "" {
			t.Fatalf("key lacks %s: %v", f, k)
		}
	}
	if k["use"] != "sig" || k["d"] != nil {
		t.Fatalf("key %v", k)
	}
}
