package config

import (
	"fmt"

	"github.com/portvakt/portvakt/pkg/mtls"
)

// TLS serves the public listener over TLS and reads client certificates,
// under tls. A client certificate binds the token it asks for (RFC 8705
// section 3, cnf.x5t#S256); it never authenticates the client, whose grant
// does. Every field works at its zero value: plain HTTP, no certificates.
type TLS struct {
	// CertFile and KeyFile (PEM) make the public listener serve TLS 1.2+.
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
	// ClientAuth is none (default), request (ask for a client certificate,
	// bind the token when one is shown) or require (a handshake without
	// one fails). It needs CertFile.
	ClientAuth string `mapstructure:"client_auth"`
	// ClientCAFiles are the roots (PEM) client certificates must chain to.
	// Empty: trust.roots, with trust.intermediates completing chains, so
	// the enterprise certificate a client signs its grant with binds too.
	ClientCAFiles []string `mapstructure:"client_ca_files"`
	// Proxy reads the client certificate from a TLS-terminating proxy.
	Proxy TLSProxy `mapstructure:"proxy"`
}

// TLSProxy is the proxy-header mode: a proxy in front terminates TLS and
// passes the client certificate in a header. The header is believed only
// from Trusted addresses; from others it is ignored and logged.
type TLSProxy struct {
	// Header names the header, e.g. X-SSL-Client-Cert (nginx:
	// proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert).
	Header string `mapstructure:"header"`
	// Trusted are the proxies' addresses or CIDRs.
	Trusted []string `mapstructure:"trusted"`
}

// Served reports whether the public listener serves TLS itself.
func (t TLS) Served() bool { return t.CertFile != "" }

// CertificatesSeen reports whether the token endpoint can see client
// certificates: asked for by the listener, or passed by a proxy.
func (t TLS) CertificatesSeen() bool {
	return (t.Served() && t.ClientAuth != "none") || t.Proxy.Header != ""
}

func (t *TLS) defaults() {
	if t.ClientAuth == "" {
		t.ClientAuth = "none"
	}
}

func (t TLS) validate(trustRoots int, bad func(key, format string, args ...any)) {
	if (t.CertFile == "") != (t.KeyFile == "") {
		bad("tls.key_file", "tls.cert_file and tls.key_file go together: set both or neither")
	}
	switch t.ClientAuth {
	case "none":
	case "request", "require":
		if !t.Served() {
			bad("tls.client_auth", "%q needs the listener to serve TLS (tls.cert_file and tls.key_file)", t.ClientAuth)
		}
		if len(t.ClientCAFiles) == 0 && trustRoots == 0 {
			bad("tls.client_ca_files", "client certificates are asked for (tls.client_auth: %s) but there are no CAs to verify them: list PEM files here or in trust.roots", t.ClientAuth)
		}
	default:
		bad("tls.client_auth", "must be none, request or require, got %q", t.ClientAuth)
	}
	if t.Proxy.Header != "" && len(t.Proxy.Trusted) == 0 {
		bad("tls.proxy.trusted", "tls.proxy.header is set: list the proxies' addresses or CIDRs it is believed from")
	}
	if t.Proxy.Header == "" && len(t.Proxy.Trusted) > 0 {
		bad("tls.proxy.header", "tls.proxy.trusted is set without the header to read")
	}
	for i, a := range t.Proxy.Trusted {
		if _, err := mtls.ParsePrefix(a); err != nil {
			bad(fmt.Sprintf("tls.proxy.trusted[%d]", i), "%v", err)
		}
	}
}
