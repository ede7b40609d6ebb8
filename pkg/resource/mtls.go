package resource

import (
	"crypto/subtle"
	"log/slog"
	"net/http"
)

// MTLSConfig says where the client certificate of a request is found, for
// tokens bound to one (RFC 8705, cnf.x5t#S256). The zero value reads the
// request's TLS connection only: the server must then serve TLS and ask
// for client certificates (tls.Config ClientAuth RequestClientCert or
// stricter, with a verification the server trusts).
type MTLSConfig struct {
	// ProxyHeader, behind a TLS-terminating proxy, is the header the proxy
	// puts the client's certificate in (URL-escaped PEM as nginx's
	// $ssl_client_escaped_cert, or base64 DER; see package mtls).
	ProxyHeader string
	// TrustedProxies are the addresses or CIDRs whose ProxyHeader is
	// believed. From any other address the header is ignored (and logged
	// to VerifierConfig.Log); the request's own TLS connection counts.
	TrustedProxies []string
}

// checkCertificate holds when r comes with the client certificate whose
// thumbprint is x5t: on its TLS connection, or in a trusted proxy's header.
func (v *Verifier) checkCertificate(r *http.Request, x5t string) error {
	peer, err := v.certs.Certificate(r)
	if peer.IgnoredHeader && v.cfg.Log != nil {
		v.cfg.Log.LogAttrs(r.Context(), slog.LevelWarn, "client certificate header ignored: not from a trusted proxy",
			slog.String("remote", r.RemoteAddr), slog.String("path", r.URL.Path))
	}
	if err != nil {
		return invalid("the token is bound to a client certificate and the proxy's certificate header cannot be read", err)
	}
	if peer.Cert == nil {
		return invalid("the token is bound to a client certificate: send it over a TLS connection made with that certificate", nil)
	}
	if subtle.ConstantTimeCompare([]byte(peer.Thumbprint()), []byte(x5t)) != 1 {
		return invalid("the token is bound to another client certificate than this connection's", nil)
	}
	return nil
}
