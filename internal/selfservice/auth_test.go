package selfservice_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portvakt/portvakt/internal/protocol"
	"github.com/portvakt/portvakt/internal/signer"
)

// sign makes an access token like the server's, with header and claims
// adjusted by the case.
func sign(t *testing.T, k *signer.Key, typ string, claims protocol.AccessTokenClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(k.Alg), jwtClaims(claims))
	tok.Header["kid"] = k.ID
	if typ != "" {
		tok.Header["typ"] = typ
	} else {
		delete(tok.Header, "typ")
	}
	s, err := tok.SignedString(k.Private)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func jwtClaims(c protocol.AccessTokenClaims) jwt.MapClaims {
	m := jwt.MapClaims{
		"iss": c.Issuer, "client_id": c.ClientID, "scope": c.Scope, "consumer": c.Consumer,
		"iat": c.IssuedAt, "jti": c.JTI, "token_type": "Bearer", "aud": "unspecified",
	}
	if c.ExpiresAt != 0 {
		m["exp"] = c.ExpiresAt
	}
	return m
}

func TestAuthentication(t *testing.T) { eachEngine(t, testAuthentication) }

func testAuthentication(t *testing.T, eng engine) {
	e := newEnv(t, eng)
	now := time.Now()
	good := protocol.AccessTokenClaims{
		Issuer: e.issuer, ClientID: platformClient, Scope: "portvakt:admin portvakt:scopes.read",
		Consumer: protocol.NewOrg(platformOrg), IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Minute).Unix(), JTI: "j1",
	}
	with := func(f func(*protocol.AccessTokenClaims)) protocol.AccessTokenClaims {
		c := good
		f(&c)
		return c
	}
	active := e.keys.Active()
	stranger, err := signer.Generate("RS256")
	if err != nil {
		t.Fatal(err)
	}
	const invalidToken = `Bearer error="invalid_token"`
	cases := []struct {
		name       string
		header     string // the Authorization header; "-" = none
		path       string
		wantStatus int
		wantAuth   string
	}{
		{"ok/minted", "Bearer " + sign(t, active, "at+jwt", good), "/prefixes", 200, ""},
		{"ok/real-token", "Bearer " + e.adminToken(), "/prefixes", 200, ""},
		{"ok/scheme-case", "bearer " + sign(t, active, "at+jwt", good), "/prefixes", 200, ""},
		{"fail/no-header", "-", "/prefixes", 401, "Bearer"},
		{"fail/basic", "Basic dXNlcjpwYXNz", "/prefixes", 401, invalidToken},
		{"fail/empty-bearer", "Bearer ", "/prefixes", 401, invalidToken},
		{"fail/garbage", "Bearer not.a.jwt", "/prefixes", 401, invalidToken},
		{"fail/expired", "Bearer " + sign(t, active, "at+jwt", with(func(c *protocol.AccessTokenClaims) { c.ExpiresAt = now.Add(-time.Second).Unix() })), "/prefixes", 401, invalidToken},
		{"fail/no-exp", "Bearer " + sign(t, active, "at+jwt", with(func(c *protocol.AccessTokenClaims) { c.ExpiresAt = 0 })), "/prefixes", 401, invalidToken},
		{"fail/other-issuer", "Bearer " + sign(t, active, "at+jwt", with(func(c *protocol.AccessTokenClaims) { c.Issuer = "https://evil.example/" })), "/prefixes", 401, invalidToken},
		{"fail/issuer-without-slash", "Bearer " + sign(t, active, "at+jwt", with(func(c *protocol.AccessTokenClaims) { c.Issuer = strings.TrimSuffix(e.issuer, "/") })), "/prefixes", 401, invalidToken},
		{"fail/typ-jwt", "Bearer " + sign(t, active, "JWT", good), "/prefixes", 401, invalidToken},
		{"fail/no-typ", "Bearer " + sign(t, active, "", good), "/prefixes", 401, invalidToken},
		{"fail/unknown-key", "Bearer " + sign(t, stranger, "at+jwt", good), "/prefixes", 401, invalidToken},
		{"fail/no-consumer", "Bearer " + sign(t, active, "at+jwt", with(func(c *protocol.AccessTokenClaims) { c.Consumer = protocol.Org{} })), "/prefixes", 401, invalidToken},
		{"fail/no-admin-scope", "Bearer " + sign(t, active, "at+jwt", with(func(c *protocol.AccessTokenClaims) { c.Scope = "portvakt:scopes.write" })), "/prefixes", 403,
			`Bearer error="insufficient_scope", scope="portvakt:admin"`},
		{"fail/read-scope-cannot-write", "Bearer " + sign(t, active, "at+jwt", with(func(c *protocol.AccessTokenClaims) { c.Scope = "portvakt:clients.read" })), "/clients", 403,
			`Bearer error="insufficient_scope", scope="portvakt:clients.write"`},
		{"ok/open-endpoint-no-token", "-", "/scopes/all", 200, ""},
		{"fail/open-endpoint-bad-token", "Bearer nope", "/scopes/all", 401, invalidToken},
		{"ok/delegationsources", "Bearer nope", "/delegationsources", 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method := "GET"
			var body any
			if tc.path == "/clients" {
				method, body = "POST", map[string]any{"description": "x"}
			}
			req, err := http.NewRequestWithContext(t.Context(), method, strings.TrimSuffix(e.issuer, "/")+"/api/v1"+tc.path, bodyReader(t, body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.header != "-" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != tc.wantAuth {
				t.Errorf("WWW-Authenticate %q, want %q", got, tc.wantAuth)
			}
			if tc.wantStatus >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
			}
		})
	}
}

// TestAdminScopeOnlyForPlatform: portvakt:admin never reaches another org,
// neither on a client's list nor in a token.
func TestAdminScopeOnlyForPlatform(t *testing.T) { eachEngine(t, testAdminScopeOnlyForPlatform) }

func testAdminScopeOnlyForPlatform(t *testing.T, eng engine) {
	e := newEnv(t, eng)
	admin := e.adminToken()
	_, provider := e.onboard(admin, providerOrg)
	rep := e.do(provider, "POST", "/clients", map[string]any{"description": "x", "scopes": []string{"portvakt:admin"}})
	p := problemOf(t, rep)
	if rep.status != 400 || len(p.Errors) != 1 || p.Errors[0].Field != "scopes[0]" || !strings.Contains(p.Errors[0].Detail, "portvakt:admin") {
		t.Fatalf("client with portvakt:admin: %d %s", rep.status, rep.body)
	}
	rep = e.do(admin, "POST", "/clients", map[string]any{"client_orgno": providerOrg, "description": "x", "scopes": []string{"portvakt:admin"}})
	if rep.status != 400 {
		t.Fatalf("admin-made client with portvakt:admin for another org: %d %s", rep.status, rep.body)
	}
	// Delegating portvakt:admin is refused: it is not delegable.
	rep = e.do(admin, "PUT", "/delegations/"+providerOrg+"?scope=portvakt:admin", nil)
	if rep.status != 403 {
		// the admin token has no delegations.write
		t.Fatalf("delegation by a token without delegations.write: %d", rep.status)
	}
	full := e.certToken(platformClient, platformOrg, "", "portvakt:delegations.write")
	rep = e.do(full, "PUT", "/delegations/"+providerOrg+"?scope=portvakt:admin", nil)
	if p := problemOf(t, rep); rep.status != 400 || p.Errors[0].Field != "scope" || !strings.Contains(p.Errors[0].Detail, "does not allow delegation") {
		t.Fatalf("delegating portvakt:admin: %d %s", rep.status, rep.body)
	}
}
