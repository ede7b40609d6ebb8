package mtls

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// CnfMember is the cnf member of a certificate-bound token (RFC 8705
// section 3.1).
const CnfMember = "x5t#S256"

// MaxHeaderBytes bounds the certificate header, checked before it is
// decoded: a certificate chain's leaf is a few KiB.
const MaxHeaderBytes = 16 << 10

// Thumbprint is the x5t#S256 of cert: the base64url (no padding) SHA-256 of
// its DER encoding.
func Thumbprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// SourceConfig configures a Source. The zero value reads the certificate
// from the TLS connection only.
type SourceConfig struct {
	// ProxyHeader is the header a TLS-terminating proxy puts the client's
	// certificate in, e.g. X-SSL-Client-Cert; empty: no proxy mode.
	ProxyHeader string
	// TrustedProxies are the addresses (or CIDRs) whose ProxyHeader is
	// believed. ProxyHeader needs at least one.
	TrustedProxies []string
}

// Source finds the client certificate of a request. The zero value reads
// the TLS connection only. It is safe for concurrent use.
type Source struct {
	header  string
	trusted []netip.Prefix
}

// NewSource validates cfg, reporting every problem at once.
func NewSource(cfg SourceConfig) (*Source, error) {
	var errs []error
	s := &Source{header: http.CanonicalHeaderKey(strings.TrimSpace(cfg.ProxyHeader))}
	for _, a := range cfg.TrustedProxies {
		p, err := ParsePrefix(a)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.trusted = append(s.trusted, p)
	}
	switch {
	case s.header == "" && len(cfg.TrustedProxies) > 0:
		errs = append(errs, errors.New("trusted proxies are set without a proxy header"))
	case s.header != "" && len(cfg.TrustedProxies) == 0 && len(errs) == 0:
		errs = append(errs, fmt.Errorf("proxy header %s is set without trusted proxies: it would never be believed", s.header))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("mtls: %w", err)
	}
	return s, nil
}

// ParsePrefix reads an address ("10.0.0.7", "::1") or a CIDR ("10.0.0.0/8").
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// ProxyMode reports whether the Source reads a proxy header.
func (s *Source) ProxyMode() bool { return s != nil && s.header != "" }

// Peer is what a Source found for a request.
type Peer struct {
	// Cert is the client certificate; nil when the request has none.
	Cert *x509.Certificate
	// FromHeader is set when Cert (or its absence) came from a trusted
	// proxy's header.
	FromHeader bool
	// IgnoredHeader is set when the request carried the proxy header but
	// not from a trusted proxy: the header was not believed. Log it.
	IgnoredHeader bool
}

// Thumbprint is the certificate's x5t#S256, "" without one.
func (p Peer) Thumbprint() string {
	if p.Cert == nil {
		return ""
	}
	return Thumbprint(p.Cert)
}

// HeaderError is a proxy header that could not be read. Description is fit
// for the caller (400 invalid_request); Cause is for the log.
type HeaderError struct {
	Description string
	Cause       error
}

func (e *HeaderError) Error() string {
	if e.Cause != nil {
		return "mtls: " + e.Description + ": " + e.Cause.Error()
	}
	return "mtls: " + e.Description
}

func (e *HeaderError) Unwrap() error { return e.Cause }

// Certificate finds r's client certificate: from the proxy header when r
// comes from a trusted proxy, else from r's TLS connection. The error is a
// *HeaderError, and only for a trusted proxy's header that cannot be read.
func (s *Source) Certificate(r *http.Request) (Peer, error) {
	if s.ProxyMode() {
		vals := r.Header.Values(s.header)
		if s.trustedPeer(r.RemoteAddr) {
			if len(vals) > 1 {
				return Peer{FromHeader: true}, &HeaderError{Description: fmt.Sprintf("the %s header is repeated", s.header)}
			}
			if len(vals) == 0 || strings.TrimSpace(vals[0]) == "" {
				return Peer{FromHeader: true}, nil
			}
			c, err := ParseHeader(vals[0])
			if err != nil {
				return Peer{FromHeader: true}, &HeaderError{Description: fmt.Sprintf("the %s header does not hold a certificate (URL-escaped PEM or base64 DER)", s.header), Cause: err}
			}
			return Peer{Cert: c, FromHeader: true}, nil
		}
		if len(vals) > 0 {
			return Peer{Cert: tlsPeer(r), IgnoredHeader: true}, nil
		}
	}
	return Peer{Cert: tlsPeer(r)}, nil
}

func tlsPeer(r *http.Request) *x509.Certificate {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil
	}
	return r.TLS.PeerCertificates[0]
}

// trustedPeer reports whether addr ("host:port") is a trusted proxy.
func (s *Source) trustedPeer(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range s.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

const pemBegin = "-----BEGIN CERTIFICATE-----"

// ParseHeader reads one certificate from a proxy header's value:
// URL-escaped PEM, or base64 DER (standard alphabet, padding optional,
// URL-escaped or not). It bounds the value's size before decoding.
func ParseHeader(v string) (*x509.Certificate, error) {
	if len(v) > MaxHeaderBytes {
		return nil, fmt.Errorf("the value is larger than %d bytes", MaxHeaderBytes)
	}
	v = strings.TrimSpace(v)
	if strings.Contains(v, "%") {
		u, err := url.PathUnescape(v)
		if err != nil {
			return nil, err
		}
		v = strings.TrimSpace(u)
	}
	var der []byte
	if strings.HasPrefix(v, pemBegin) {
		b, rest := pem.Decode([]byte(v))
		if b == nil || b.Type != "CERTIFICATE" {
			return nil, errors.New("not a PEM certificate")
		}
		if strings.TrimSpace(string(rest)) != "" {
			return nil, errors.New("more than one PEM block: send the client's certificate alone")
		}
		der = b.Bytes
	} else {
		b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(v, "="))
		if err != nil {
			return nil, fmt.Errorf("neither PEM nor base64 DER: %w", err)
		}
		der = b
	}
	return x509.ParseCertificate(der)
}
