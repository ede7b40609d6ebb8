package client

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
)

// MTLS presents a TLS client certificate (RFC 8705) on the token request
// and on every request of the *http.Client the Config hands out
// (Config.Client, TokenSource.HTTPClient). A server that asks for client
// certificates binds the token to it (cnf.x5t#S256), and a resource server
// then accepts the token only over a connection made with that
// certificate: a token that leaks is worthless without the certificate's
// key. The certificate binds; the grant still authenticates the client.
//
// The certificate is, in this order: Certificate, when set; CertFile and
// KeyFile, when set; else the enterprise certificate the grants are signed
// with (Config.CertFile and KeyFile, PKCS12File, or a CertificateSigner).
// That last is the common case, as in Maskinporten: the enterprise
// certificate is usually also the client's TLS certificate, and
// &client.MTLS{} is all it takes. A client that signs with a registered
// key (KeyID) must name a certificate here.
//
// The HTTP client's transport must be an *http.Transport (or nil, for
// http.DefaultTransport): it is cloned with the certificate added.
type MTLS struct {
	// CertFile (PEM: the leaf, intermediates may follow, in any order) and
	// KeyFile (its unencrypted private key, PEM) name the certificate.
	CertFile string
	KeyFile  string
	// Certificate is the certificate in memory.
	Certificate *tls.Certificate
}

func (m *MTLS) validate() []error {
	if m == nil {
		return nil
	}
	var errs []error
	if (m.CertFile == "") != (m.KeyFile == "") {
		errs = append(errs, errors.New("MTLS.CertFile and MTLS.KeyFile go together: set both or neither"))
	}
	if m.Certificate != nil && m.CertFile != "" {
		errs = append(errs, errors.New("MTLS.Certificate and MTLS.CertFile are both set: use one"))
	}
	if m.Certificate != nil && len(m.Certificate.Certificate) == 0 {
		errs = append(errs, errors.New("MTLS.Certificate holds no certificate"))
	}
	return errs
}

// certificate loads the TLS client certificate; s is the grant's Signer,
// whose enterprise certificate is the default.
func (m *MTLS) certificate(s Signer) (tls.Certificate, error) {
	switch {
	case m.Certificate != nil:
		return *m.Certificate, nil
	case m.CertFile != "":
		certPEM, err := readFile("MTLS.CertFile", m.CertFile)
		if err != nil {
			return tls.Certificate{}, err
		}
		keyPEM, err := readFile("MTLS.KeyFile", m.KeyFile)
		if err != nil {
			return tls.Certificate{}, err
		}
		key, chain, err := LoadPEM(certPEM, keyPEM)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("%w (MTLS.CertFile %s, MTLS.KeyFile %s)", err, m.CertFile, m.KeyFile)
		}
		return tlsCertificate(key, chain), nil
	case len(s.chain) > 0:
		return tlsCertificate(s.key, s.chain), nil
	}
	return tls.Certificate{}, errors.New("client: MTLS names no certificate and the grants are signed with a registered key (KeyID), not a certificate: set MTLS.CertFile and MTLS.KeyFile")
}

func tlsCertificate(key crypto.Signer, chain []*x509.Certificate) tls.Certificate {
	c := tls.Certificate{PrivateKey: key, Leaf: chain[0]}
	for _, x := range chain {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	return c
}

// withClientCertificate returns a copy of hc whose transport presents cert.
func withClientCertificate(hc *http.Client, cert tls.Certificate) (*http.Client, error) {
	var tr *http.Transport
	switch t := hc.Transport.(type) {
	case nil:
		tr = http.DefaultTransport.(*http.Transport).Clone()
	case *http.Transport:
		tr = t.Clone()
	default:
		return nil, fmt.Errorf("client: MTLS needs the HTTP client's transport to be an *http.Transport, not %T: set the certificate in your transport's TLSClientConfig instead", hc.Transport)
	}
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	tr.TLSClientConfig.Certificates = []tls.Certificate{cert}
	out := *hc
	out.Transport = tr
	return &out, nil
}
