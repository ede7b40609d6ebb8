package tokenendpoint_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portvakt/portvakt/internal/store"
)

const jwtBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// validPID is a synthetic national identity number valid under both checks.
const validPID = "01019010046"

type errCase struct {
	name   string
	req    func(e *env) response
	status int
	code   string
	desc   string // a substring the description must hold
}

// withClaims signs a modified claim set for the SEID 2 consumer client.
func withClaims(id string, scope string, mod func(c jwt.MapClaims)) func(e *env) response {
	return func(e *env) response {
		i := e.ids[id]
		c := e.claims(i, scope)
		if mod != nil {
			mod(c)
		}
		return e.grant(e.sign(i, c, nil))
	}
}

func withHeader(id string, hdr map[string]any) func(e *env) response {
	return func(e *env) response {
		i := e.ids[id]
		return e.grant(e.sign(i, e.claims(i, "demo:read"), hdr))
	}
}

// TestErrors covers every row of docs/protocol.md and each rule of docs/protocol.md.
func TestErrors(t *testing.T) {
	e := newEnv(t)
	cases := []errCase{
		// The form.
		{"fail/form/grant-type-missing", func(e *env) response {
			return e.postForm(url.Values{"assertion": {"x.y.z"}})
		}, 400, "invalid_request", "grant_type"},
		{"fail/form/grant-type-empty", func(e *env) response {
			return e.postForm(url.Values{"grant_type": {""}, "assertion": {"x.y.z"}})
		}, 400, "invalid_request", "grant_type"},
		{"fail/form/grant-type-repeated", func(e *env) response {
			return e.postForm(url.Values{"grant_type": {jwtBearer, jwtBearer}, "assertion": {"x.y.z"}})
		}, 400, "invalid_request", "repeated"},
		{"fail/form/assertion-missing", func(e *env) response {
			return e.postForm(url.Values{"grant_type": {jwtBearer}})
		}, 400, "invalid_request", "assertion"},
		{"fail/form/assertion-empty", func(e *env) response {
			return e.postForm(url.Values{"grant_type": {jwtBearer}, "assertion": {""}})
		}, 400, "invalid_request", "assertion"},
		{"fail/form/assertion-repeated", func(e *env) response {
			return e.postForm(url.Values{"grant_type": {jwtBearer}, "assertion": {"a.b.c", "a.b.c"}})
		}, 400, "invalid_request", "repeated"},
		{"fail/form/body-too-large", func(e *env) response {
			return e.postForm(url.Values{"grant_type": {jwtBearer}, "assertion": {strings.Repeat("a", 65<<10)}})
		}, 400, "invalid_request", "64 KiB"},
		{"fail/form/not-a-form-json", func(e *env) response {
			return e.do(http.MethodPost, "application/json", `{"grant_type":"`+jwtBearer+`"}`)
		}, 400, "invalid_request", "form"},
		{"fail/form/not-a-form-multipart", func(e *env) response {
			return e.do(http.MethodPost, "multipart/form-data; boundary=x", "--x--")
		}, 400, "invalid_request", "form"},
		{"fail/form/no-content-type", func(e *env) response {
			return e.do(http.MethodPost, "", "grant_type="+url.QueryEscape(jwtBearer)+"&assertion=a.b.c")
		}, 400, "invalid_request", "form"},
		{"fail/form/other-grant-type", func(e *env) response {
			return e.postForm(url.Values{"grant_type": {"client_credentials"}, "assertion": {"a.b.c"}})
		}, 400, "unsupported_grant_type", jwtBearer},
		{"fail/method/get", func(e *env) response { return e.do(http.MethodGet, "", "") }, 405, "invalid_request", "POST"},
		{"fail/method/put", func(e *env) response {
			return e.do(http.MethodPut, "application/x-www-form-urlencoded", "grant_type=x")
		}, 405, "invalid_request", "POST"},

		// The assertion's syntax.
		{"fail/syntax/not-a-jwt", func(e *env) response { return e.grant("not-a-jwt") }, 400, "invalid_grant", "well-formed"},
		{"fail/syntax/two-parts", func(e *env) response { return e.grant("eyJhbGciOiJSUzI1NiJ9.e30") }, 400, "invalid_grant", "well-formed"},
		{"fail/syntax/bad-base64", func(e *env) response { return e.grant("!!!.###.$$$") }, 400, "invalid_grant", ""},
		{"fail/syntax/alg-none", func(e *env) response {
			i := e.ids["consumer-seid2"]
			tok := jwt.NewWithClaims(jwt.SigningMethodNone, e.claims(i, "demo:read"))
			s, _ := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
			return e.grant(s)
		}, 400, "invalid_grant", "alg"},
		{"fail/syntax/alg-hs256", func(e *env) response {
			i := e.ids["kid-rsa"]
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, e.claims(i, "demo:read"))
			tok.Header["kid"] = i.kid
			s, _ := tok.SignedString([]byte("secret"))
			return e.grant(s)
		}, 400, "invalid_grant", "alg"},

		// The client.
		{"fail/client/iss-missing", withClaims("consumer-seid2", "demo:read", func(c jwt.MapClaims) { delete(c, "iss") }), 400, "invalid_grant", "iss"},
		{"fail/client/iss-not-string", withClaims("consumer-seid2", "demo:read", func(c jwt.MapClaims) { c["iss"] = 42 }), 400, "invalid_grant", "iss"},
		{"fail/client/unknown", withClaims("consumer-seid2", "demo:read", func(c jwt.MapClaims) { c["iss"] = "8d7d4c3e-1111-4111-8111-111111111111" }), 400, "invalid_grant", "Unknown or inactive client"},

		// The key or certificate.
		{"fail/cert/untrusted", withHeader("untrusted", nil), 400, "invalid_grant", ""},
		{"fail/cert/expired", withHeader("expired-cert", nil), 400, "invalid_grant", ""},
		{"fail/cert/no-digital-signature", withHeader("no-digsig", nil), 400, "invalid_grant", "keyUsage"},
		{"fail/cert/key-encipherment-only", withHeader("keyenc-only", nil), 400, "invalid_grant", "digitalSignature"},
		{"fail/cert/self-signed", withHeader("self-signed", nil), 400, "invalid_grant", ""},
		{"fail/cert/other-org", withHeader("other", nil), 400, "invalid_grant", "belongs to organisation " + otherOrg},
		{"fail/cert/x5c-missing", withHeader("consumer-seid2", map[string]any{"x5c": nil}), 400, "invalid_grant", "x5c"},
		{"fail/cert/x5c-is-a-string", withHeader("consumer-seid2", map[string]any{"x5c": "MIIB"}), 400, "invalid_grant", "x5c"},
		{"fail/cert/x5c-garbage", withHeader("consumer-seid2", map[string]any{"x5c": []string{"bm90IGEgY2VydA=="}}), 400, "invalid_grant", ""},
		{"fail/cert/x5c-empty", withHeader("consumer-seid2", map[string]any{"x5c": []string{}}), 400, "invalid_grant", "x5c"},
		{"fail/cert/kid-instead-of-x5c-is-ignored", withHeader("consumer-seid2", map[string]any{"x5c": nil, "kid": "kid-rsa-1"}), 400, "invalid_grant", "x5c"},
		{"fail/kid/missing", withHeader("kid-rsa", map[string]any{"kid": nil}), 400, "invalid_grant", "kid"},
		{"fail/kid/unknown", withHeader("kid-rsa", map[string]any{"kid": "nope"}), 400, "invalid_grant", "Unknown kid"},
		{"fail/kid/x5c-beside-is-ignored", func(e *env) response {
			i := e.ids["kid-rsa"]
			return e.grant(e.sign(i, e.claims(i, "demo:read"), map[string]any{"kid": nil, "x5c": e.ids["consumer-seid2"].x5c}))
		}, 400, "invalid_grant", "kid"},

		// The signature.
		{"fail/signature/other-key", func(e *env) response {
			i := e.ids["kid-rsa"]
			other := *e.ids["consumer-seid2"]
			other.kid, other.x5c = i.kid, nil
			c := e.claims(i, "demo:read")
			return e.grant(e.sign(&other, c, nil))
		}, 400, "invalid_grant", "signature"},
		{"fail/signature/tampered", func(e *env) response {
			i := e.ids["kid-rsa"]
			s := e.sign(i, e.claims(i, "demo:read"), nil)
			parts := strings.Split(s, ".")
			c := e.claims(i, "demo:read demo:write")
			other := e.sign(i, c, nil)
			return e.grant(parts[0] + "." + strings.Split(other, ".")[1] + "." + parts[2])
		}, 400, "invalid_grant", "signature"},
		{"fail/signature/alg-mismatch-es256-on-rsa-key", func(e *env) response {
			i := e.ids["kid-ec256"]
			rsa := e.ids["kid-rsa"]
			c := e.claims(rsa, "demo:read")
			return e.grant(e.sign(&identity{clientID: rsa.clientID, key: i.key, kid: rsa.kid}, c, nil))
		}, 400, "invalid_grant", "signature"},

		// The claims: aud.
		{"fail/aud/wrong", withClaims("consumer-seid2", "demo:read", func(c jwt.MapClaims) { c["aud"] = "https://other.example/" }), 400, "invalid_grant", "aud"},
		{"fail/aud/token-url", withClaims("consumer-seid2", "demo:read", func(c jwt.MapClaims) { c["aud"] = issuer + "token" }), 400, "invalid_grant", "aud"},
		{"fail/aud/no-trailing-slash", withClaims("consumer-seid2", "demo:read", func(c jwt.MapClaims) { c["aud"] = strings.TrimSuffix(issuer, "/") }), 400, "invalid_grant", "aud"},
		{"fail/aud/two-element-array", withClaims("consumer-seid2", "demo:read", func(c jwt.MapClaims) { c["aud"] = []string{issuer, "x"} }), 400, "invalid_grant", "aud"},
		{"fail/aud/missing", withClaims("consumer-seid2", "demo:read", func(c jwt.MapClaims) { delete(c, "aud") }), 400, "invalid_grant", "aud"},

		// Times (the clock is pinned: e.clock.Now()).
		{"fail/iat/missing", withClaims("consumer-seid2", "demo:read", func(c jwt.MapClaims) { delete(c, "iat") }), 400, "invalid_grant", "iat"},
		{"fail/iat/not-a-number", withClaims("consumer-seid2", "demo:read", func(c jwt.MapClaims) { c["iat"] = "now" }), 400, "invalid_grant", "iat"},
		{"fail/iat/11s-in-the-future", withClaims("consumer-seid2", "demo:read", func(c jwt.MapClaims) {
			iat := c["iat"].(int64) + 11
			c["iat"], c["exp"] = iat, iat+60
		}), 400, "invalid_grant", "future"},
		{"fail/exp/missing", withClaims("consumer-seid2", "demo:read", func(c jwt.MapClaims) { delete(c, "exp") }), 400, "invalid_grant", "exp"},
		{"fail/exp/now-is-expired", withClaims("consumer-seid2", "demo:read", func(c jwt.MapClaims) {
			c["iat"], c["exp"] = c["iat"].(int64)-60, c["iat"].(int64)
		}), 400, "invalid_grant", "expired"},
		{"fail/exp/121s-after-iat", withClaims("consumer-seid2", "demo:read", func(c jwt.MapClaims) { c["exp"] = c["iat"].(int64) + 121 }), 400, "invalid_grant", "120 seconds"},
		{"fail/exp/before-iat", withClaims("consumer-seid2", "demo:read", func(c jwt.MapClaims) {
			c["iat"], c["exp"] = c["iat"].(int64)+5, c["iat"].(int64)+1
		}), 400, "invalid_grant", "after its iat"},
		{"fail/nbf/11s-in-the-future", withClaims("consumer-seid2", "demo:read", func(c jwt.MapClaims) { c["nbf"] = c["iat"].(int64) + 11 }), 400, "invalid_grant", "nbf"},

		// jti.
		{"fail/jti/too-long", withClaims("consumer-seid2", "demo:read", func(c jwt.MapClaims) { c["jti"] = strings.Repeat("j", 256) }), 400, "invalid_grant", "jti"},
		{"fail/jti/not-a-string", withClaims("consumer-seid2", "demo:read", func(c jwt.MapClaims) { c["jti"] = 7 }), 400, "invalid_grant", "jti"},

		// Scope format and decision.
		{"fail/scope/missing", withClaims("consumer-seid2", "", func(c jwt.MapClaims) { delete(c, "scope") }), 400, "invalid_scope", "scope"},
		{"fail/scope/empty", withClaims("consumer-seid2", "", nil), 400, "invalid_scope", "empty"},
		{"fail/scope/only-spaces", withClaims("consumer-seid2", "   ", nil), 400, "invalid_scope", "empty"},
		{"fail/scope/array", withClaims("consumer-seid2", "", func(c jwt.MapClaims) { c["scope"] = []string{"demo:read"} }), 400, "invalid_scope", "string"},
		{"fail/scope/unknown", withClaims("consumer-seid2", "demo:read demo:nope", nil), 400, "invalid_scope", "demo:nope"},
		{"fail/scope/inactive", withClaims("consumer-seid2", "demo:inactive", nil), 400, "invalid_scope", "demo:inactive"},
		{"fail/scope/not-on-client", withClaims("vendor", "demo:open demo:write", func(c jwt.MapClaims) {}), 400, "invalid_scope", "demo:write"},
		{"fail/scope/denied-access", withClaims("consumer-seid2", "demo:denied", nil), 400, "invalid_scope", "demo:denied"},
		{"fail/scope/integration-type", withClaims("consumer-seid2", "demo:other-type", nil), 400, "invalid_scope", "demo:other-type"},
		{"fail/scope/vendor-without-delegation", withClaims("vendor", "demo:read", nil), 400, "invalid_scope", "demo:read"},
		{"fail/scope/delegation-not-delegable", withClaims("vendor", "demo:nodelegation", func(c jwt.MapClaims) { c["consumer_org"] = consumerOrg }), 400, "invalid_scope", "demo:nodelegation"},
		{"fail/scope/delegation-foreign-source", withClaims("vendor", "demo:foreign-delegation", func(c jwt.MapClaims) { c["consumer_org"] = consumerOrg }), 400, "invalid_scope", "demo:foreign-delegation"},
		{"fail/scope/delegation-revoked", withClaims("vendor", "demo:revoked-delegation", func(c jwt.MapClaims) { c["consumer_org"] = consumerOrg }), 400, "invalid_scope", "demo:revoked-delegation"},
		{"fail/scope/delegation-consumer-lacks-access", withClaims("vendor", "demo:read", func(c jwt.MapClaims) { c["consumer_org"] = otherOrg }), 400, "invalid_scope", "demo:read"},
		{"fail/scope/first-failing-named", withClaims("consumer-seid2", "demo:read demo:nope1 demo:nope2", nil), 400, "invalid_scope", "demo:nope1"},

		// resource.
		{"fail/resource/not-absolute", withClaims("consumer-seid2", "demo:read", func(c jwt.MapClaims) { c["resource"] = "/relative" }), 400, "invalid_target", "absolute"},
		{"fail/resource/number", withClaims("consumer-seid2", "demo:read", func(c jwt.MapClaims) { c["resource"] = 5 }), 400, "invalid_target", ""},
		{"fail/resource/empty-array", withClaims("consumer-seid2", "demo:read", func(c jwt.MapClaims) { c["resource"] = []string{} }), 400, "invalid_target", ""},
		{"fail/resource/fragment", withClaims("consumer-seid2", "demo:read", func(c jwt.MapClaims) { c["resource"] = "https://api.example/a#x" }), 400, "invalid_target", ""},
		{"fail/resource/missing-where-required", withClaims("consumer-seid2", "demo:records", nil), 400, "invalid_target", "demo:records"},
		{"fail/resource/not-in-audiences", withClaims("consumer-seid2", "demo:records", func(c jwt.MapClaims) { c["resource"] = "https://api.example/other" }), 400, "invalid_target", "https://api.example/other"},
		{"fail/resource/one-of-two-not-in-audiences", withClaims("consumer-seid2", "demo:records", func(c jwt.MapClaims) {
			c["resource"] = []string{"https://api.example/records", "https://evil.example/"}
		}), 400, "invalid_target", "https://evil.example/"},

		// consumer_org and pid.
		{"fail/consumer-org/own-org", withClaims("vendor", "demo:read", func(c jwt.MapClaims) { c["consumer_org"] = vendorOrg }), 400, "invalid_request", "own organisation"},
		{"fail/consumer-org/bad-check-digit", withClaims("vendor", "demo:read", func(c jwt.MapClaims) { c["consumer_org"] = "310000036" }), 400, "invalid_request", "consumer_org"},
		{"fail/consumer-org/number", withClaims("vendor", "demo:read", func(c jwt.MapClaims) { c["consumer_org"] = 310000035 }), 400, "invalid_request", "consumer_org"},
		{"fail/consumer-org/iso6523-prefix", withClaims("vendor", "demo:read", func(c jwt.MapClaims) { c["consumer_org"] = "0192:" + consumerOrg }), 400, "invalid_request", "consumer_org"},
		{"fail/pid/bad-check-digit", withClaims("consumer-seid2", "demo:read", func(c jwt.MapClaims) { c["pid"] = "01019010047" }), 400, "invalid_request", "pid"},
		{"fail/pid/number", withClaims("consumer-seid2", "demo:read", func(c jwt.MapClaims) { c["pid"] = 1019012356 }), 400, "invalid_request", "pid"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.t = t
			before := e.issued()
			r := c.req(e)
			checkError(t, r, c.status, c.code, c.desc)
			if got := e.issued(); got != before {
				t.Fatalf("a rejected request wrote %d issued-token rows", got-before)
			}
		})
	}
}

var traceRE = regexp.MustCompile(`\(request_id: ([0-9a-f]{32})\)$`)

func checkError(t *testing.T, r response, status int, code, desc string) {
	t.Helper()
	if r.status != status || r.code() != code {
		t.Fatalf("got %d %q (%s), want %d %q", r.status, r.code(), r.desc(), status, code)
	}
	if !strings.Contains(r.desc(), desc) {
		t.Fatalf("description %q does not mention %q", r.desc(), desc)
	}
	m := traceRE.FindStringSubmatch(r.desc())
	if m == nil {
		t.Fatalf("description %q does not end with (request_id: ...)", r.desc())
	}
	if got := r.header.Get("X-Request-Id"); got != m[1] {
		t.Fatalf("request_id %s differs from the request id %s", m[1], got)
	}
	if r.header.Get("Cache-Control") != "no-store" || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("headers %v", r.header)
	}
	if status == http.StatusMethodNotAllowed && r.header.Get("Allow") != http.MethodPost {
		t.Fatalf("Allow = %q", r.header.Get("Allow"))
	}
	for _, leak := range []string{"sql", "gorm", "x509:", "crypto/", "panic", "goroutine"} {
		if strings.Contains(strings.ToLower(r.desc()), leak) {
			t.Fatalf("description leaks internals (%q): %s", leak, r.desc())
		}
	}
}

// The timing edges that must pass (docs/protocol.md).
func TestTimingEdgesAccepted(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name string
		mod  func(c jwt.MapClaims, now int64)
	}{
		{"ok/exp-exactly-120s-after-iat", func(c jwt.MapClaims, now int64) { c["iat"], c["exp"] = now, now+120 }},
		{"ok/iat-10s-ahead-is-within-skew", func(c jwt.MapClaims, now int64) { c["iat"], c["exp"] = now+10, now+70 }},
		{"ok/iat-backdated-10s", func(c jwt.MapClaims, now int64) { c["iat"], c["exp"] = now-10, now+100 }},
		{"ok/old-iat-while-exp-holds", func(c jwt.MapClaims, now int64) { c["iat"], c["exp"] = now-119, now+1 }},
		{"ok/nbf-10s-ahead", func(c jwt.MapClaims, now int64) { c["nbf"] = now + 10 }},
		{"ok/fractional-times", func(c jwt.MapClaims, now int64) { c["iat"], c["exp"] = float64(now)+0.5, float64(now)+60.25 }},
		{"ok/aud-one-element-array", func(c jwt.MapClaims, now int64) { c["aud"] = []string{issuer} }},
		{"ok/no-jti-replay-key-is-hash", func(c jwt.MapClaims, now int64) { delete(c, "jti") }},
		{"ok/jti-255-chars", func(c jwt.MapClaims, now int64) { c["jti"] = strings.Repeat("j", 255) }},
		{"ok/unknown-claims-ignored", func(c jwt.MapClaims, now int64) { c["sub"] = "whatever"; c["foo"] = []int{1} }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.t = t
			i := e.ids["consumer-seid2"]
			cl := e.claims(i, "demo:read")
			c.mod(cl, e.clock.Now().Unix())
			if r := e.grant(e.sign(i, cl, nil)); r.status != 200 {
				t.Fatalf("got %d %s", r.status, r.raw)
			}
		})
	}
}

func TestReplayIsRejected(t *testing.T) {
	e := newEnv(t)
	i := e.ids["consumer-seid1"]
	a := e.sign(i, e.claims(i, "demo:read"), nil)
	if r := e.grant(a); r.status != 200 {
		t.Fatalf("first use: %d %s", r.status, r.raw)
	}
	checkError(t, e.grant(a), 400, "invalid_grant", "already been used")

	// The same jti in a new assertion is a replay too.
	c := e.claims(i, "demo:read")
	c["jti"] = "fixed-jti"
	if r := e.grant(e.sign(i, c, nil)); r.status != 200 {
		t.Fatalf("first jti: %d %s", r.status, r.raw)
	}
	c["exp"] = c["exp"].(int64) + 1
	checkError(t, e.grant(e.sign(i, c, nil)), 400, "invalid_grant", "already been used")

	// Without jti the assertion itself is single-use.
	c = e.claims(i, "demo:read")
	delete(c, "jti")
	a = e.sign(i, c, nil)
	if r := e.grant(a); r.status != 200 {
		t.Fatalf("no jti: %d %s", r.status, r.raw)
	}
	checkError(t, e.grant(a), 400, "invalid_grant", "already been used")

	// A jti is per client: another client may use the same value.
	k := e.ids["kid-rsa"]
	c = e.claims(k, "demo:read")
	c["jti"] = "fixed-jti"
	if r := e.grant(e.sign(k, c, nil)); r.status != 200 {
		t.Fatalf("other client, same jti: %d %s", r.status, r.raw)
	}
}

func TestRejectedRequestDoesNotUseUpJTI(t *testing.T) {
	e := newEnv(t)
	i := e.ids["consumer-seid2"]
	c := e.claims(i, "demo:nope")
	c["jti"] = "retry-me"
	checkError(t, e.grant(e.sign(i, c, nil)), 400, "invalid_scope", "demo:nope")
	c["scope"] = "demo:read"
	if r := e.grant(e.sign(i, c, nil)); r.status != 200 {
		t.Fatalf("jti was used up by a rejected request: %d %s", r.status, r.raw)
	}
}

func TestConcurrentReplayIssuesOneToken(t *testing.T) {
	e := newEnv(t)
	i := e.ids["consumer-seid1"]
	a := e.sign(i, e.claims(i, "demo:read"), nil)
	const n = 20
	statuses := make(chan response, n)
	start := make(chan struct{})
	for range n {
		go func() {
			<-start
			statuses <- e.grant(a)
		}()
	}
	close(start)
	ok, replay := 0, 0
	for range n {
		r := <-statuses
		switch {
		case r.status == 200:
			ok++
		case r.status == 400 && r.code() == "invalid_grant":
			replay++
		default:
			t.Errorf("unexpected answer %d %s", r.status, r.raw)
		}
	}
	if ok != 1 || replay != n-1 {
		t.Fatalf("%d tokens and %d replays, want 1 and %d", ok, replay, n-1)
	}
	if got := e.issued(); got != 1 {
		t.Fatalf("%d issued-token rows, want 1", got)
	}
}

func TestStoreUnreachableIs503(t *testing.T) {
	e := newEnv(t)
	i := e.ids["consumer-seid2"]
	// Warm the rules cache, then lose the database.
	if r := e.grant(e.sign(i, e.claims(i, "demo:read"), nil)); r.status != 200 {
		t.Fatalf("warm-up: %d %s", r.status, r.raw)
	}
	e.db.Close()
	r := e.grant(e.sign(i, e.claims(i, "demo:read"), nil))
	checkError(t, r, 503, "temporarily_unavailable", "try again")
}

func TestUnexpectedErrorIs500WithGenericText(t *testing.T) {
	broken := func(r *store.StaticRecords) {
		for n, c := range r.Clients {
			if c.ClientName == "kid-rsa" {
				r.Clients[n].Keys[0].JWK = []byte(`{"kty":"RSA","kid":"kid-rsa-1","n":"!!","e":"AQAB"}`)
			}
		}
	}
	e := newEnv(t, broken)
	i := e.ids["kid-rsa"]
	r := e.grant(e.sign(i, e.claims(i, "demo:read"), nil))
	checkError(t, r, 500, "server_error", "An unexpected error occurred")
}

func TestExpiredRegisteredKey(t *testing.T) {
	e := newEnv(t)
	i := e.ids["kid-rsa"]
	e.clock.Set(e.clock.Now().AddDate(1, 0, 1))
	checkError(t, e.grant(e.sign(i, e.claims(i, "demo:read"), nil)), 400, "invalid_grant", "expired")
}

func TestInactiveClient(t *testing.T) {
	e := newEnv(t, func(r *store.StaticRecords) {
		for n := range r.Clients {
			if r.Clients[n].ClientName == "consumer-seid1" {
				r.Clients[n].Active = false
			}
		}
	})
	i := e.ids["consumer-seid1"]
	checkError(t, e.grant(e.sign(i, e.claims(i, "demo:read"), nil)), 400, "invalid_grant", "inactive client")
}

func TestCertificateExpiresUnderPinnedClock(t *testing.T) {
	e := newEnv(t)
	i := e.ids["consumer-seid2"]
	if r := e.grant(e.sign(i, e.claims(i, "demo:read"), nil)); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	// A verified chain is cached, but never past the leaf's NotAfter.
	e.clock.Set(e.clock.Now().Add(366 * 24 * time.Hour))
	checkError(t, e.grant(e.sign(i, e.claims(i, "demo:read"), nil)), 400, "invalid_grant", "")
}

// The grant authenticates the client by the assertion alone (docs/protocol.md): the
// client authentication of other grants, in the form or in a Basic
// Authorization header, is ignored, whoever it names.
func TestOtherClientAuthenticationIsIgnored(t *testing.T) {
	e := newEnv(t)
	i, other := e.ids["consumer-seid1"], e.ids["kid-rsa"]
	form := url.Values{
		"grant_type":            {jwtBearer},
		"assertion":             {e.sign(i, e.claims(i, "demo:read"), nil)},
		"client_id":             {other.clientID},
		"client_secret":         {"secret"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {e.sign(other, e.claims(other, "demo:read"), nil)},
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.srv.URL+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(other.clientID, "secret")
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %d, body error %v", resp.StatusCode, err)
	}
	if _, claims := e.verify(t, body.AccessToken); claims["client_id"] != i.clientID {
		t.Fatalf("client_id = %v, want the assertion's %s", claims["client_id"], i.clientID)
	}
	if n := e.issued(); n != 1 {
		t.Fatalf("%d issued-token rows, want 1: the client assertion must not be used", n)
	}
}
