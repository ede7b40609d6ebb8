package resource

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestMiddleware(t *testing.T) {
	k := newRSAKey(t, "k1")
	srv := newAuthServer(t, k)
	clk := newClock()
	v := newVerifier(t, srv, clk, nil)
	good := mint(t, k, baseClaims(srv.issuer, clk.Now()), nil)
	expired := func() string {
		c := baseClaims(srv.issuer, clk.Now())
		c["exp"] = clk.Now().Add(-time.Minute).Unix()
		return mint(t, k, c, nil)
	}()

	// The handler echoes what it got from the context.
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := FromContext(r.Context())
		if !ok {
			t.Error("no claims in context")
			return
		}
		fmt.Fprintf(w, "%s %s", c.ConsumerOrg, c.Scope)
	})

	tests := []struct {
		name       string
		mw         func(http.Handler) http.Handler
		auth       []string
		wantStatus int
		wantWWW    string
		wantBody   string
	}{
		{"ok/all-scopes", RequireScope(v, "acme:read", "acme:write"), []string{"Bearer " + good}, 200, "", "910000000 acme:read acme:write"},
		{"ok/scheme-case-insensitive", RequireScope(v, "acme:read"), []string{"bEaReR " + good}, 200, "", "910000000 acme:read acme:write"},
		{"ok/no-scope-required", RequireScope(v), []string{"Bearer " + good}, 200, "", "910000000 acme:read acme:write"},
		{"ok/any-scope", RequireAnyScope(v, "acme:admin", "acme:write"), []string{"Bearer " + good}, 200, "", "910000000 acme:read acme:write"},
		{"fail/no-header", RequireScope(v, "acme:read"), nil, 401, `Bearer`, ""},
		{"fail/basic-scheme", RequireScope(v, "acme:read"), []string{"Basic dXNlcjpwYXNz"}, 401, `Bearer`, ""},
		{"fail/bearer-empty", RequireScope(v, "acme:read"), []string{"Bearer "}, 400,
			`Bearer error="invalid_request", error_description="malformed Authorization header"`, ""},
		{"fail/two-headers", RequireScope(v, "acme:read"), []string{"Bearer " + good, "Bearer " + good}, 400,
			`Bearer error="invalid_request", error_description="malformed Authorization header"`, ""},
		{"fail/garbage-token", RequireScope(v, "acme:read"), []string{"Bearer abc"}, 401,
			`Bearer error="invalid_token", error_description="malformed token"`, ""},
		{"fail/expired", RequireScope(v, "acme:read"), []string{"Bearer " + expired}, 401,
			`Bearer error="invalid_token", error_description="token expired"`, ""},
		{"fail/missing-one-scope", RequireScope(v, "acme:read", "acme:admin"), []string{"Bearer " + good}, 403,
			`Bearer error="insufficient_scope", error_description="the token lacks a required scope", scope="acme:read acme:admin"`, ""},
		{"fail/none-of-any", RequireAnyScope(v, "acme:admin", "acme:root"), []string{"Bearer " + good}, 403,
			`Bearer error="insufficient_scope", error_description="the token has none of the accepted scopes", scope="acme:admin acme:root"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/data", nil)
			for _, a := range tt.auth {
				req.Header.Add("Authorization", a)
			}
			rec := httptest.NewRecorder()
			tt.mw(echo).ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d (body %q)", rec.Code, tt.wantStatus, rec.Body)
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != tt.wantWWW {
				t.Fatalf("WWW-Authenticate\n got %s\nwant %s", got, tt.wantWWW)
			}
			if tt.wantBody != "" && rec.Body.String() != tt.wantBody {
				t.Fatalf("body %q, want %q", rec.Body, tt.wantBody)
			}
			if rec.Code != 200 {
				// Every refusal has the same shape, the bare 401 too.
				var e map[string]string
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e["error"] == "" {
					t.Fatalf("body %q is not an OAuth error", rec.Body)
				}
			}
		})
	}

	t.Run("ok/stacked-verifies-once", func(t *testing.T) {
		calls := 0
		counting := func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if _, ok := FromContext(r.Context()); !ok {
					calls++
				}
				next.ServeHTTP(w, r)
			})
		}
		h := counting(RequireScope(v)(counting(RequireScope(v, "acme:write")(echo))))
		req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/", nil)
		req.Header.Set("Authorization", "Bearer "+good)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 || calls != 1 {
			t.Fatalf("status %d, %d unverified entries", rec.Code, calls)
		}
	})
}

func TestQuotable(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"ok/plain", "token expired", "token expired"},
		{"ok/quote-and-backslash", `a"b\c`, "a'b'c"},
		{"ok/non-ascii", "blåbær\n", "bl'b'r'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := quotable(tt.in); got != tt.want {
				t.Fatalf("quotable(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// The provider's log gets the cause of a refusal, which the client never
// sees; without a Log nothing is written.
func TestMiddlewareLogsTheCause(t *testing.T) {
	k := newRSAKey(t, "k1")
	srv := newAuthServer(t, k)
	clk := newClock()
	var buf bytes.Buffer
	v := newVerifier(t, srv, clk, func(c *VerifierConfig) { c.Log = slog.New(slog.NewJSONHandler(&buf, nil)) })
	req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/data", nil)
	req.Header.Set("Authorization", "Bearer abc")
	rec := httptest.NewRecorder()
	RequireScope(v, "acme:read")(http.NotFoundHandler()).ServeHTTP(rec, req)
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log %q: %v", buf.String(), err)
	}
	if line["msg"] != "token refused" || line["status"] != float64(401) || line["error"] != "invalid_token" ||
		!strings.Contains(fmt.Sprint(line["cause"]), "malformed token") || line["path"] != "/data" {
		t.Fatalf("log line %v", line)
	}
	if strings.Contains(rec.Body.String(), fmt.Sprint(line["cause"])) && fmt.Sprint(line["cause"]) != "malformed token" {
		t.Fatalf("the answer %q carries the private cause", rec.Body)
	}
}
