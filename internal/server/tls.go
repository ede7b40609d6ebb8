package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// The client certificate modes of a TLS listener (config tls.client_auth).
const (
	ClientAuthNone    = "none"    // no certificate is asked for
	ClientAuthRequest = "request" // asked for; a client may show none
	ClientAuthRequire = "require" // a handshake without one fails
)

// MaxClientChain bounds the certificates a client may send in its
// handshake, checked before any of them is verified.
const MaxClientChain = 8

// TLS is the public listener's TLS: its certificate, and the client
// certificates it asks for. A client certificate only binds tokens (RFC
// 8705 section 3); it never authenticates a client.
type TLS struct {
	// Certificate is the listener's own certificate and key.
	Certificate tls.Certificate
	// ClientAuth is ClientAuthNone (the zero value too), ClientAuthRequest
	// or ClientAuthRequire.
	ClientAuth string
	// ClientCAs are the roots a client certificate must chain to;
	// ClientIntermediates complete a chain a client sends without them.
	ClientCAs           []*x509.Certificate
	ClientIntermediates []*x509.Certificate
	// Now is the clock certificates are checked against (default time.Now).
	Now func() time.Time
}

// Config builds the listener's tls.Config: TLS 1.2 or later with Go's
// default cipher suites (all AEAD with forward secrecy for TLS 1.2), and,
// unless ClientAuth is none, a request for a client certificate, verified
// against ClientCAs (with ClientIntermediates) for client authentication
// use at the current time. A certificate that does not verify fails the
// handshake, in request mode too: a client that shows one must show a good
// one.
func (t TLS) Config() (*tls.Config, error) {
	if len(t.Certificate.Certificate) == 0 {
		return nil, errors.New("server: TLS without a certificate")
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{t.Certificate},
	}
	switch t.ClientAuth {
	case "", ClientAuthNone:
		return cfg, nil
	case ClientAuthRequest:
		cfg.ClientAuth = tls.RequestClientCert
	case ClientAuthRequire:
		cfg.ClientAuth = tls.RequireAnyClientCert
	default:
		return nil, fmt.Errorf("server: client auth %q is not none, request or require", t.ClientAuth)
	}
	if len(t.ClientCAs) == 0 {
		return nil, errors.New("server: client certificates are asked for without CAs to verify them")
	}
	roots := x509.NewCertPool()
	for _, c := range t.ClientCAs {
		roots.AddCert(c)
	}
	inter := x509.NewCertPool()
	for _, c := range t.ClientIntermediates {
		inter.AddCert(c)
	}
	now := t.Now
	if now == nil {
		now = time.Now
	}
	// crypto/tls's own check (VerifyClientCertIfGiven) cannot use
	// configured intermediates, and enterprise clients often send their
	// leaf alone: the chain is verified here instead.
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		certs := cs.PeerCertificates
		if len(certs) == 0 {
			return nil // require mode has refused it already
		}
		if len(certs) > MaxClientChain {
			return fmt.Errorf("server: client sent %d certificates, more than %d", len(certs), MaxClientChain)
		}
		pool := inter.Clone()
		for _, c := range certs[1:] {
			pool.AddCert(c)
		}
		_, err := certs[0].Verify(x509.VerifyOptions{
			Roots: roots, Intermediates: pool, CurrentTime: now(),
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		})
		if err != nil {
			return fmt.Errorf("server: client certificate: %w", err)
		}
		return nil
	}
	return cfg, nil
}
