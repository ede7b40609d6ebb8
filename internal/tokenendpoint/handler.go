package tokenendpoint

import (
	"context"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/portvakt/portvakt/internal/exchange"
	"github.com/portvakt/portvakt/internal/protocol"
)

// session carries the grant's result from Handle to Populate.
type session struct {
	fosite.DefaultSession
	result     *exchange.Result
	remoteAddr string // the rate limit of unknown clients
	dpop       string // the request's DPoP proof, "" without one
	x5t        string // the client certificate's thumbprint, "" without one
}

// grantHandler is portvakt's fosite TokenEndpointHandler for the JWT grant.
type grantHandler struct {
	ex Exchanger
}

func (h *grantHandler) CanHandleTokenEndpointRequest(_ context.Context, ar fosite.AccessRequester) bool {
	return ar.GetGrantTypes().ExactOne(protocol.GrantTypeJWTBearer)
}

// CanSkipClientAuth: the assertion is the only client authentication.
func (h *grantHandler) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool { return true }

func (h *grantHandler) HandleTokenEndpointRequest(ctx context.Context, ar fosite.AccessRequester) error {
	if !h.CanHandleTokenEndpointRequest(ctx, ar) {
		return fosite.ErrUnknownRequest
	}
	sess, ok := ar.GetSession().(*session)
	if !ok {
		return fosite.ErrServerError.WithDebug("unexpected session type")
	}
	res, err := h.ex.Exchange(ctx, exchange.Request{Assertion: ar.GetRequestForm().Get("assertion"), RemoteAddr: sess.remoteAddr, DPoP: sess.dpop, X5T: sess.x5t})
	sess.result = res
	if err != nil {
		return err
	}
	for _, s := range strings.Split(res.Scope, " ") {
		ar.GrantScope(s)
	}
	return nil
}

func (h *grantHandler) PopulateTokenEndpointResponse(ctx context.Context, ar fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !h.CanHandleTokenEndpointRequest(ctx, ar) {
		return fosite.ErrUnknownRequest
	}
	sess, ok := ar.GetSession().(*session)
	if !ok || sess.result == nil || sess.result.AccessToken == "" {
		return fosite.ErrServerError.WithDebug("no token was issued")
	}
	resp.SetAccessToken(sess.result.AccessToken)
	tokenType := protocol.TokenTypeBearer
	if sess.result.JKT != "" {
		tokenType = protocol.TokenTypeDPoP
	}
	resp.SetTokenType(tokenType)
	resp.SetExpiresIn(time.Duration(sess.result.ExpiresIn) * time.Second)
	resp.SetScopes(ar.GetGrantedScopes())
	return nil
}
