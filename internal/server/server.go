package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/portvakt/portvakt/internal/accesslog"
	"github.com/portvakt/portvakt/internal/exchange"
	"github.com/portvakt/portvakt/internal/protocol"
	"github.com/portvakt/portvakt/internal/signer"
)

// Public are the public listener's parts.
type Public struct {
	Issuer string
	Token  http.Handler // the token endpoint
	JWKS   func() []byte
	API    http.Handler // the self-service API under {issuer}api/v1/, optional
	// Console is the web console, served under {issuer}console/ with the
	// full path (it knows its root); optional.
	Console http.Handler
	Log     *slog.Logger
	// RequestTimeout bounds every request's context (default 5s).
	RequestTimeout time.Duration
	// Observer is told every request's outcome and traces every route;
	// nil observes nothing.
	Observer Observer
	// Now is the clock that times requests; default time.Now.
	Now func() time.Time
}

// Observer is what the listeners report to (metrics and traces): what the
// access log sees, and Route, which wraps one route's handler (a server
// span named for the route) and may return h itself. Route is called once
// per route when the mux is built; the rest on the request's path.
type Observer interface {
	accesslog.Observer
	Route(route string, h http.Handler) http.Handler
}

// nopObserver observes nothing.
type nopObserver struct{}

func (nopObserver) TraceID(context.Context) string                              { return "" }
func (nopObserver) Request(context.Context, string, string, int, time.Duration) {}
func (nopObserver) Route(_ string, h http.Handler) http.Handler                 { return h }

// Handler builds the public mux. Paths are relative to the issuer's path.
func (p Public) Handler() (http.Handler, error) {
	u, err := url.Parse(p.Issuer)
	if err != nil {
		return nil, err
	}
	base := strings.TrimSuffix(u.Path, "/")
	if p.RequestTimeout == 0 {
		p.RequestTimeout = 5 * time.Second
	}
	if p.Observer == nil {
		p.Observer = nopObserver{}
	}
	logCfg := accesslog.Config{Log: p.Log, Observer: p.Observer, Now: p.Now}
	meta, err := json.Marshal(Metadata(p.Issuer))
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	route := func(pattern, name string, h http.Handler) {
		h = accesslog.Middleware(logCfg, name, timeout(p.RequestTimeout, h))
		mux.Handle(pattern, p.Observer.Route(name, h))
	}
	route(base+"/token", "/token", p.Token)
	route("GET "+base+"/jwk", "/jwk", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(signer.JWKSMaxAge.Seconds())))
		_, _ = w.Write(p.JWKS())
	}))
	metaHandler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		_, _ = w.Write(meta)
	})
	// RFC 8414 section 3: the well-known segment goes between host and the
	// issuer's path; many clients also look under the issuer's path.
	route("GET /.well-known/oauth-authorization-server"+base, "/.well-known/oauth-authorization-server", metaHandler)
	route("GET /.well-known/openid-configuration"+base, "/.well-known/openid-configuration", metaHandler)
	if base != "" {
		route("GET "+base+"/.well-known/oauth-authorization-server", "/.well-known/oauth-authorization-server", metaHandler)
		route("GET "+base+"/.well-known/openid-configuration", "/.well-known/openid-configuration", metaHandler)
	}
	if p.API != nil {
		route(base+"/api/v1/", "/api/v1", http.StripPrefix(base, p.API))
	}
	if p.Console != nil {
		route(base+"/console/", "/console", p.Console)
	}
	return mux, nil
}

func timeout(d time.Duration, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// AuthServerMetadata is the RFC 8414 document.
type AuthServerMetadata struct {
	Issuer                                string   `json:"issuer"`
	TokenEndpoint                         string   `json:"token_endpoint"`
	JWKSURI                               string   `json:"jwks_uri"`
	GrantTypesSupported                   []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported     []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgsSupported []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	ResponseTypesSupported                []string `json:"response_types_supported"`
	ScopesSupported                       []string `json:"scopes_supported,omitempty"`
	// DPoPSigningAlgsSupported are the algorithms of DPoP proofs the token
	// endpoint accepts (RFC 9449 section 5.1).
	DPoPSigningAlgsSupported []string `json:"dpop_signing_alg_values_supported"`
}

// Metadata is the discovery document for issuer.
func Metadata(issuer string) AuthServerMetadata {
	return AuthServerMetadata{
		Issuer:                                issuer,
		TokenEndpoint:                         issuer + "token",
		JWKSURI:                               issuer + "jwk",
		GrantTypesSupported:                   []string{protocol.GrantTypeJWTBearer},
		TokenEndpointAuthMethodsSupported:     []string{protocol.AuthPrivateKeyJWT},
		TokenEndpointAuthSigningAlgsSupported: exchange.AllowedAlgorithms,
		ResponseTypesSupported:                []string{"token"},
		DPoPSigningAlgsSupported:              exchange.AllowedAlgorithms,
	}
}

// Settings are the http.Server limits for a listener.
type Settings struct {
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
}

// NewHTTPServer hardens an http.Server for addr.
func NewHTTPServer(addr string, h http.Handler, s Settings, log *slog.Logger) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: s.ReadHeaderTimeout,
		ReadTimeout:       s.ReadTimeout,
		WriteTimeout:      s.WriteTimeout,
		IdleTimeout:       s.IdleTimeout,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}
