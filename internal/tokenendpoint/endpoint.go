package tokenendpoint

import (
	"context"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/ory/fosite"

	"github.com/portvakt/portvakt/internal/accesslog"
	"github.com/portvakt/portvakt/internal/exchange"
	"github.com/portvakt/portvakt/internal/protocol"
	"github.com/portvakt/portvakt/pkg/dpop"
	"github.com/portvakt/portvakt/pkg/mtls"
)

// MaxBodyBytes is the largest accepted request body (docs/protocol.md).
const MaxBodyBytes = 64 << 10

// Exchanger runs the grant.
type Exchanger interface {
	Exchange(ctx context.Context, req exchange.Request) (*exchange.Result, error)
}

// Config configures the endpoint. Every field works at its zero value.
type Config struct {
	// Observer is told the outcome of every token request; nil observes
	// nothing.
	Observer Observer
	// Now is the clock that times each request; default time.Now.
	Now func() time.Time
	// DPoPNonces, when set, are the server's DPoP nonces: the answer to
	// every request with a DPoP header carries the current one in
	// DPoP-Nonce (the exchange's dpop.Verifier must require them too).
	DPoPNonces *dpop.Nonces
	// Certificates finds the client certificate a token is bound to (RFC
	// 8705): the TLS connection's, or a trusted proxy's header. Nil reads
	// the TLS connection only.
	Certificates *mtls.Source
}

// Observer is told the outcome of every token request (metrics). It runs
// on the request's path and must be cheap.
type Observer interface {
	// TokenRequest is told a request's result (the fields learned, never
	// nil), its error (nil when a token was issued) and how long it took.
	TokenRequest(ctx context.Context, res *exchange.Result, err *protocol.Error, took time.Duration)
}

// nopObserver observes nothing.
type nopObserver struct{}

func (nopObserver) TokenRequest(context.Context, *exchange.Result, *protocol.Error, time.Duration) {}

// Endpoint is the token endpoint's http.Handler.
type Endpoint struct {
	provider fosite.OAuth2Provider
	observer Observer
	now      func() time.Time
	nonces   *dpop.Nonces
	certs    *mtls.Source
}

// New makes the endpoint.
func New(ex Exchanger, c Config) *Endpoint {
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	h := &grantHandler{ex: ex}
	cfg := &fosite.Config{
		TokenEndpointHandlers:        fosite.TokenEndpointHandlers{h},
		ClientAuthenticationStrategy: noClientAuthentication,
		SendDebugMessagesToClients:   false,
	}
	if c.Certificates == nil {
		c.Certificates = &mtls.Source{}
	}
	return &Endpoint{provider: fosite.NewOAuth2Provider(refusingStorage{}, cfg), observer: c.Observer, now: c.Now, nonces: c.DPoPNonces, certs: c.Certificates}
}

// ServeHTTP implements the token endpoint.
func (e *Endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := e.now()
	ctx := r.Context()
	log := accesslog.From(ctx)
	sess := &session{remoteAddr: r.RemoteAddr}
	res, perr := e.serve(ctx, w, r, sess)
	if res == nil {
		res = &exchange.Result{}
	}
	log.SetClient(res.ClientID, res.ConsumerOrg, res.SupplierOrg)
	if perr != nil {
		log.SetError(perr.Code, perr.Cause)
		e.writeError(ctx, w, perr, log.RequestID)
	}
	e.observer.TokenRequest(ctx, res, perr, e.now().Sub(start))
}

func (e *Endpoint) serve(ctx context.Context, w http.ResponseWriter, r *http.Request, sess *session) (*exchange.Result, *protocol.Error) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		pe := protocol.InvalidRequest("The token endpoint accepts only POST")
		pe.Status = http.StatusMethodNotAllowed
		return nil, pe
	}
	if perr := checkForm(w, r); perr != nil {
		return nil, perr
	}
	proof, perr := e.dpopHeader(w, r)
	if perr != nil {
		return nil, perr
	}
	sess.dpop = proof
	peer, err := e.certs.Certificate(r)
	if peer.IgnoredHeader {
		// Never believed, always told: a client (or a misrouted proxy)
		// sent a certificate header from an address that is not a trusted
		// proxy.
		accesslog.From(ctx).Add(slog.String("client_cert_header", "ignored: not from a trusted proxy"))
	}
	if err != nil {
		var he *mtls.HeaderError
		if errors.As(err, &he) {
			return nil, protocol.InvalidRequest("%s", he.Description).WithCause(err)
		}
		return nil, protocol.ServerError(err)
	}
	sess.x5t = peer.Thumbprint()
	ar, err := e.provider.NewAccessRequest(ctx, r, sess)
	if err != nil {
		return sess.result, toProtocol(err)
	}
	resp, err := e.provider.NewAccessResponse(ctx, ar)
	if err != nil {
		return sess.result, toProtocol(err)
	}
	e.provider.WriteAccessResponse(ctx, w, ar, resp)
	return sess.result, nil
}

// checkForm makes the checks of docs/protocol.md's first rows, before fosite: a
// url-encoded form of at most 64 KiB with exactly one non-empty grant_type
// and assertion, and the JWT bearer grant type.
func checkForm(w http.ResponseWriter, r *http.Request) *protocol.Error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return protocol.InvalidRequest("The request body must be a form (Content-Type: application/x-www-form-urlencoded)")
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return protocol.InvalidRequest("The request body is larger than 64 KiB").WithCause(err)
		}
		return protocol.InvalidRequest("The request body is not a valid form").WithCause(err)
	}
	gt := r.PostForm["grant_type"]
	switch {
	case len(gt) == 0 || gt[0] == "":
		return protocol.InvalidRequest("The grant_type parameter is missing: use %s", protocol.GrantTypeJWTBearer)
	case len(gt) > 1:
		return protocol.InvalidRequest("The grant_type parameter is repeated: send it once")
	case gt[0] != protocol.GrantTypeJWTBearer:
		return protocol.UnsupportedGrantType("The grant type is not supported: use %s", protocol.GrantTypeJWTBearer)
	}
	as := r.PostForm["assertion"]
	switch {
	case len(as) == 0 || as[0] == "":
		return protocol.InvalidRequest("The assertion parameter is missing: send the signed JWT grant")
	case len(as) > 1:
		return protocol.InvalidRequest("The assertion parameter is repeated: send it once")
	}
	return nil
}

// dpopHeader returns the request's DPoP proof, "" when it has none: at most
// one header, not empty, and at most dpop.MaxProofBytes, checked before any
// signature work. With nonces configured, the answer to a request with a
// proof carries the current nonce.
func (e *Endpoint) dpopHeader(w http.ResponseWriter, r *http.Request) (string, *protocol.Error) {
	h := r.Header.Values(dpop.HeaderName)
	if len(h) == 0 {
		return "", nil
	}
	if e.nonces != nil {
		w.Header().Set(dpop.NonceHeader, e.nonces.Current())
	}
	switch {
	case len(h) > 1:
		return "", protocol.InvalidDPoPProof("The request has %d DPoP headers: send exactly one proof", len(h))
	case h[0] == "":
		return "", protocol.InvalidDPoPProof("The DPoP header is empty: send one proof JWT")
	case len(h[0]) > dpop.MaxProofBytes:
		return "", protocol.InvalidDPoPProof("The DPoP proof is larger than %d bytes", dpop.MaxProofBytes)
	}
	return h[0], nil
}

// toProtocol turns what fosite or the grant returned into a protocol error.
func toProtocol(err error) *protocol.Error {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe
	}
	var fe *fosite.RFC6749Error
	if errors.As(err, &fe) && fe.CodeField >= 400 && fe.CodeField < 500 {
		return &protocol.Error{Code: fe.ErrorField, Status: fe.CodeField, Description: "The request is not valid", Cause: err}
	}
	return protocol.ServerError(err)
}

// writeError renders pe through fosite, with the request id at the end of the
// description so a developer can quote it to the operator.
func (e *Endpoint) writeError(ctx context.Context, w http.ResponseWriter, pe *protocol.Error, traceID string) {
	if s := pe.RetryAfterSeconds(); s > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(s, 10))
	}
	e.provider.WriteAccessError(ctx, w, nil, &fosite.RFC6749Error{
		ErrorField:       pe.Code,
		DescriptionField: pe.Description + " (request_id: " + traceID + ")",
		CodeField:        pe.Status,
	})
}
