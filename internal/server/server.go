package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/portvakt/portvakt/internal/accesslog"
	"github.com/portvakt/portvakt/internal/exchange"
	"github.com/portvakt/portvakt/internal/protocol"
)

// Public are the public listener's parts.
type Public struct {
	Issuer string
	Token  http.Handler // the token endpoint
	JWKS   func() []byte
	API    http.Handler // the self-service API under {issuer}api/v1/, optional
	Log    *slog.Logger
	// Wrap, when set, wraps every route's handler (tracing); it gets the route pattern.
	Wrap func(route string, h http.Handler) http.Handler
	// RequestTimeout bounds every request's context (default 5s).
	RequestTimeout time.Duration
	// Observe, when set, is told every request's outcome (metrics).
	Observe accesslog.Observer
}

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
	meta, err := json.Marshal(Metadata(p.Issuer))
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	route := func(pattern, name string, h http.Handler) {
		var obs []accesslog.Observer
		if p.Observe != nil {
			obs = append(obs, p.Observe)
		}
		h = accesslog.Middleware(p.Log, name, timeout(p.RequestTimeout, h), obs...)
		if p.Wrap != nil {
			h = p.Wrap(name, h)
		}
		mux.Handle(pattern, h)
	}
	route(base+"/token", "/token", p.Token)
	route("GET "+base+"/jwk", "/jwk", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
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
