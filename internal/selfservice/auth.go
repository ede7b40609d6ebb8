package selfservice

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portvakt/portvakt/internal/protocol"
)

// caller is who a request acts as, read from its verified access token.
type caller struct {
	Org      string // the token's consumer: the org the request acts for
	Supplier string // the vendor's org when the token is delegated, else ""
	ClientID string
	TokenJTI string
	Scopes   []string
}

// tokenClaims adapts protocol.AccessTokenClaims to jwt.Claims so the parser
// checks exp and iss; everything else is checked by authenticate.
type tokenClaims struct {
	protocol.AccessTokenClaims
}

func (c *tokenClaims) GetExpirationTime() (*jwt.NumericDate, error) {
	if c.ExpiresAt == 0 {
		return nil, nil
	}
	return jwt.NewNumericDate(unix(c.ExpiresAt)), nil
}
func (c *tokenClaims) GetIssuedAt() (*jwt.NumericDate, error) {
	if c.IssuedAt == 0 {
		return nil, nil
	}
	return jwt.NewNumericDate(unix(c.IssuedAt)), nil
}
func (c *tokenClaims) GetNotBefore() (*jwt.NumericDate, error) { return nil, nil }
func (c *tokenClaims) GetIssuer() (string, error)              { return c.Issuer, nil }
func (c *tokenClaims) GetSubject() (string, error)             { return "", nil }
func (c *tokenClaims) GetAudience() (jwt.ClaimStrings, error)  { return nil, nil }

// bearer returns the token of an Authorization: Bearer header; sent reports
// whether an Authorization header was there at all.
func bearer(r *http.Request) (token string, sent bool, err error) {
	h := r.Header.Values("Authorization")
	if len(h) == 0 {
		return "", false, nil
	}
	if len(h) > 1 {
		return "", true, errors.New("more than one Authorization header")
	}
	scheme, tok, ok := strings.Cut(h[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", true, errors.New("the Authorization header is not a Bearer token")
	}
	return strings.TrimSpace(tok), true, nil
}

// authenticate verifies a bearer token issued by this server: the signature
// against the published key its kid names, with only that key's algorithm;
// typ at+jwt; iss exactly; exp with no leeway (SPEC 4).
func (h *handler) authenticate(r *http.Request) (*caller, error) {
	raw, sent, err := bearer(r)
	if !sent {
		return nil, unauthorized(false, nil, "this endpoint needs an access token from this server: send Authorization: Bearer <token>")
	}
	if err != nil {
		return nil, unauthorized(true, err, "%v; send Authorization: Bearer <access token>", err)
	}
	var claims tokenClaims
	tok, err := h.parser.ParseWithClaims(raw, &claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		k, ok := h.keys.Lookup(kid)
		if !ok {
			return nil, fmt.Errorf("unknown kid %q", kid)
		}
		if t.Method.Alg() != k.Alg {
			return nil, fmt.Errorf("alg %s does not match key %s (%s)", t.Method.Alg(), kid, k.Alg)
		}
		if typ, _ := t.Header["typ"].(string); !strings.EqualFold(typ, protocol.TokenType) {
			return nil, fmt.Errorf("typ %q, want %s", typ, protocol.TokenType)
		}
		return k.Private.Public(), nil
	})
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, unauthorized(true, err, "the access token has expired; get a new one")
	case err != nil:
		return nil, unauthorized(true, err, "the access token is not valid here: it must be an unexpired access token issued by %s", h.cfg.Issuer)
	case !tok.Valid:
		return nil, unauthorized(true, errors.New("token not valid"), "the access token is not valid")
	}
	org := claims.Consumer.Orgno()
	if org == "" {
		return nil, unauthorized(true, errors.New("no consumer org"), "the access token has no consumer organisation")
	}
	c := &caller{Org: org, ClientID: claims.ClientID, TokenJTI: claims.JTI, Scopes: strings.Fields(claims.Scope)}
	if claims.Supplier != nil {
		c.Supplier = claims.Supplier.Orgno()
	}
	return c, nil
}
