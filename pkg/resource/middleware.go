package resource

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/portvakt/portvakt/pkg/dpop"
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
				if c, ok = v.authenticate(w, r); !ok {
					return
				}
				r = r.WithContext(NewContext(r.Context(), c))
			}
			if !scopesOK(c, scopes, all) {
				desc := "the token lacks a required scope"
				if !all {
					desc = "the token has none of the accepted scopes"
				}
				scheme := "Bearer"
				if c.JKT != "" {
					scheme = "DPoP"
				}
				writeChallenge(w, http.StatusForbidden, scheme, "insufficient_scope", desc, "scope", strings.Join(scopes, " "))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// authenticate verifies the request's credentials: a bearer token, or a
// DPoP-bound token with its proof. On failure it has answered with the
// error and its challenge.
func (v *Verifier) authenticate(w http.ResponseWriter, r *http.Request) (*Claims, bool) {
	scheme, token, err := credentials(r)
	if err != nil {
		v.logRefusal(r, http.StatusBadRequest, "invalid_request", err)
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error(), "")
		return nil, false
	}
	dpopOn := v.dpop.enabled()
	switch scheme {
	case "":
		// RFC 6750 section 3.1: no error attribute without credentials.
		w.Header().Set("WWW-Authenticate", "Bearer")
		if dpopOn {
			w.Header().Add("WWW-Authenticate", `DPoP algs="`+v.dpop.algs+`"`)
		}
		// The same JSON body as every other refusal.
		writeBody(w, http.StatusUnauthorized, "invalid_request", "this endpoint needs an access token: send Authorization: Bearer <token> (or DPoP <token> with a proof)")
		return nil, false
	case "bearer":
		c, err := v.VerifyBearer(r.Context(), token, r)
		if err != nil {
			if dpopOn {
				w.Header().Add("WWW-Authenticate", `DPoP algs="`+v.dpop.algs+`"`)
			}
			v.logRefusal(r, http.StatusUnauthorized, "invalid_token", err)
			writeError(w, http.StatusUnauthorized, "invalid_token", describeErr(err), "")
			return nil, false
		}
		return c, true
	}
	// Authorization: DPoP (RFC 9449 section 7.1).
	if !dpopOn {
		writeError(w, http.StatusUnauthorized, "invalid_token", "this server does not accept DPoP-bound tokens", "")
		return nil, false
	}
	if v.dpop.cfg.Nonces != nil {
		w.Header().Set(dpop.NonceHeader, v.dpop.cfg.Nonces.Current())
	}
	proofs := r.Header.Values(dpop.HeaderName)
	if len(proofs) != 1 {
		writeChallenge(w, http.StatusUnauthorized, "DPoP", dpop.CodeInvalidProof, "send exactly one DPoP proof header", "algs", v.dpop.algs)
		return nil, false
	}
	c, err := v.VerifyDPoP(r.Context(), token, proofs[0], r)
	if err != nil {
		var de *dpop.Error
		v.logRefusal(r, http.StatusUnauthorized, "dpop", err)
		if errors.As(err, &de) {
			writeChallenge(w, http.StatusUnauthorized, "DPoP", de.Code(), de.Description, "algs", v.dpop.algs)
			return nil, false
		}
		writeChallenge(w, http.StatusUnauthorized, "DPoP", "invalid_token", describeErr(err), "algs", v.dpop.algs)
		return nil, false
	}
	return c, true
}

func describeErr(err error) string {
	var te *TokenError
	if errors.As(err, &te) {
		return te.Description
	}
	return "token rejected"
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

// credentials returns the scheme ("bearer" or "dpop", lower case) and token
// of the Authorization header; "" when the request has no credentials of
// either scheme.
func credentials(r *http.Request) (scheme, token string, err error) {
	h := r.Header.Values("Authorization")
	if len(h) == 0 {
		return "", "", nil
	}
	if len(h) > 1 {
		return "", "", errMalformedBearer
	}
	scheme, token, _ = strings.Cut(strings.TrimSpace(h[0]), " ")
	scheme = strings.ToLower(scheme)
	if scheme != "bearer" && scheme != "dpop" {
		// Another scheme is no credentials: challenge for one.
		return "", "", nil
	}
	token = strings.TrimSpace(token)
	if token == "" || strings.ContainsAny(token, " \t") {
		return "", "", errMalformedBearer
	}
	return scheme, token, nil
}

// writeError sends an RFC 6750 error with the challenge and a small JSON body.
func writeError(w http.ResponseWriter, status int, code, desc, scope string) {
	if scope != "" {
		writeChallenge(w, status, "Bearer", code, desc, "scope", scope)
		return
	}
	writeChallenge(w, status, "Bearer", code, desc)
}

// writeChallenge sends an error with its challenge (RFC 6750 section 3,
// RFC 9449 section 7.1): scheme, error, error_description and the extra
// name-value pairs, and a small JSON body. Challenges already set (another
// scheme's) follow it.
func writeChallenge(w http.ResponseWriter, status int, scheme, code, desc string, extra ...string) {
	ch := scheme + ` error="` + code + `", error_description="` + quotable(desc) + `"`
	for i := 0; i+1 < len(extra); i += 2 {
		ch += `, ` + extra[i] + `="` + quotable(extra[i+1]) + `"`
	}
	w.Header()["Www-Authenticate"] = append([]string{ch}, w.Header().Values("WWW-Authenticate")...)
	writeBody(w, status, code, desc)
}

// writeBody writes the JSON body every refusal has:
// {"error","error_description"}.
func writeBody(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// logRefusal tells the provider's log why a request was refused, with the
// private cause the answer leaves out.
func (v *Verifier) logRefusal(r *http.Request, status int, code string, err error) {
	if v.cfg.Log == nil {
		return
	}
	v.cfg.Log.LogAttrs(r.Context(), slog.LevelInfo, "token refused",
		slog.Int("status", status), slog.String("error", code), slog.String("cause", err.Error()),
		slog.String("method", r.Method), slog.String("path", r.URL.Path))
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
