package resource

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

type ctxKey struct{}

// NewContext returns ctx carrying c. The middleware does this; handler tests
// can too.
func NewContext(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, ctxKey{}, c)
}

// FromContext returns the claims the middleware verified.
func FromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(ctxKey{}).(*Claims)
	return c, ok && c != nil
}

// RequireScope lets a request through only with a valid bearer token holding
// every one of scopes. With no scopes, any valid token will do.
func RequireScope(v *Verifier, scopes ...string) func(http.Handler) http.Handler {
	return require(v, scopes, true)
}

// RequireAnyScope lets a request through only with a valid bearer token
// holding at least one of scopes. With no scopes, any valid token will do.
func RequireAnyScope(v *Verifier, scopes ...string) func(http.Handler) http.Handler {
	return require(v, scopes, false)
}

func require(v *Verifier, scopes []string, all bool) func(http.Handler) http.Handler {
	scopes = append([]string(nil), scopes...)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, ok := FromContext(r.Context())
			if !ok {
				// Verify once even when middlewares are stacked.
				token, err := bearer(r)
				if err != nil {
					writeError(w, http.StatusBadRequest, "invalid_request", err.Error(), "")
					return
				}
				if token == "" {
					// RFC 6750 section 3.1: no error attribute without credentials.
					w.Header().Set("WWW-Authenticate", "Bearer")
					http.Error(w, http.StatusText(http.StatusUnauthorized), http.StatusUnauthorized)
					return
				}
				c, err = v.Verify(r.Context(), token)
				if err != nil {
					desc := "token rejected"
					var te *TokenError
					if errors.As(err, &te) {
						desc = te.Description
					}
					writeError(w, http.StatusUnauthorized, "invalid_token", desc, "")
					return
				}
				r = r.WithContext(NewContext(r.Context(), c))
			}
			if !scopesOK(c, scopes, all) {
				desc := "the token lacks a required scope"
				if !all {
					desc = "the token has none of the accepted scopes"
				}
				writeError(w, http.StatusForbidden, "insufficient_scope", desc, strings.Join(scopes, " "))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func scopesOK(c *Claims, scopes []string, all bool) bool {
	if len(scopes) == 0 {
		return true
	}
	for _, s := range scopes {
		if c.HasScope(s) != all {
			return !all
		}
	}
	return all
}

var errMalformedBearer = errors.New("malformed Authorization header")

// bearer returns the token from "Authorization: Bearer <token>", "" when the
// request has no bearer credentials at all.
func bearer(r *http.Request) (string, error) {
	h := r.Header.Values("Authorization")
	if len(h) == 0 {
		return "", nil
	}
	if len(h) > 1 {
		return "", errMalformedBearer
	}
	scheme, token, _ := strings.Cut(strings.TrimSpace(h[0]), " ")
	if !strings.EqualFold(scheme, "bearer") {
		// Another scheme is no bearer credentials: challenge for one.
		return "", nil
	}
	token = strings.TrimSpace(token)
	if token == "" || strings.ContainsAny(token, " \t") {
		return "", errMalformedBearer
	}
	return token, nil
}

// writeError sends an RFC 6750 error with the challenge and a small JSON body.
func writeError(w http.ResponseWriter, status int, code, desc, scope string) {
	ch := `Bearer error="` + code + `", error_description="` + quotable(desc) + `"`
	if scope != "" {
		ch += `, scope="` + quotable(scope) + `"`
	}
	w.Header().Set("WWW-Authenticate", ch)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// quotable keeps only the characters RFC 6750 allows in error_description
// and scope (%x20-21 / %x23-5B / %x5D-7E).
func quotable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return '\''
		}
		return r
	}, s)
}
