package selfservice

import (
	"errors"
	"net/http"
	"strings"

	"github.com/portvakt/portvakt/pkg/resource"
)

// caller is who a request acts as, read from its verified access token.
type caller struct {
	Org      string // the token's consumer: the org the request acts for
	Supplier string // the vendor's org when the token is delegated, else ""
	ClientID string
	TokenJTI string
	Scopes   []string
}

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

// authenticate verifies a bearer token issued by this server with the
// resource verifier over the signer's published keys (in process): the
// signature against the key its kid names, with only that key's algorithm;
// typ at+jwt; iss exactly; exp with no leeway.
func (h *handler) authenticate(r *http.Request) (*caller, error) {
	raw, sent, err := bearer(r)
	if !sent {
		return nil, unauthorized(false, nil, "this endpoint needs an access token from this server: send Authorization: Bearer <token>")
	}
	if err != nil {
		return nil, unauthorized(true, err, "%v; send Authorization: Bearer <access token>", err)
	}
	claims, err := h.tokens.Verify(r.Context(), raw)
	switch {
	case errors.Is(err, resource.ErrTokenExpired):
		return nil, unauthorized(true, err, "the access token has expired; get a new one")
	case err != nil:
		return nil, unauthorized(true, err, "the access token is not valid here: it must be an unexpired access token issued by %s", h.cfg.Issuer)
	}
	org := claims.ConsumerOrg
	if org == "" {
		return nil, unauthorized(true, errors.New("no consumer org"), "the access token has no consumer organisation")
	}
	c := &caller{Org: org, ClientID: claims.ClientID, TokenJTI: claims.JTI, Scopes: strings.Fields(claims.Scope)}
	c.Supplier = claims.SupplierOrg
	return c, nil
}
