package testpki

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portvakt/portvakt/internal/devpki"
)

// Revoked is one entry of a CRL.
type Revoked struct {
	Serial *big.Int
	At     time.Time // zero = a minute before ThisUpdate
	Reason int       // RFC 5280 CRLReason; 0 = unspecified (not written)
}

// CRLSpec shapes a CRL.
type CRLSpec struct {
	ThisUpdate time.Time
	NextUpdate time.Time // zero = none
	Revoked    []Revoked
}

// CRLOf makes a CRL signed by ca as spec says.
func (ca *CA) CRLOf(spec CRLSpec) ([]byte, error) {
	entries := make([]x509.RevocationListEntry, 0, len(spec.Revoked))
	for _, r := range spec.Revoked {
		at := r.At
		if at.IsZero() {
			at = spec.ThisUpdate.Add(-time.Minute)
		}
		entries = append(entries, x509.RevocationListEntry{SerialNumber: r.Serial, RevocationTime: at, ReasonCode: r.Reason})
	}
	number, err := devpki.SerialNumber()
	if err != nil {
		return nil, err
	}
	return x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    number,
		ThisUpdate:                spec.ThisUpdate,
		NextUpdate:                spec.NextUpdate,
		RevokedCertificateEntries: entries,
	}, ca.Cert, ca.Key)
}

// CRLPEM is a CRL in PEM ("X509 CRL").
func CRLPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}

// Impostor is a CA that bears ca's name (the same raw subject) and a key of
// its own: what it signs names ca as its issuer but does not verify under
// ca's key, as a CRL from a server that was tampered with, or from a CA
// that re-keyed without telling, would.
func (ca *CA) Impostor(now time.Time) (*CA, error) {
	key, err := devpki.NewKey()
	if err != nil {
		return nil, err
	}
	tmpl, err := devpki.IssuingTemplate("impostor", now)
	if err != nil {
		return nil, err
	}
	tmpl.RawSubject = ca.Cert.RawSubject
	cert, err := devpki.Sign(tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("testpki: impostor: %w", err)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// CRLServer is a CA's CRL distribution point on a loopback HTTP server: it
// serves the CRL it was last given, counts the requests, and can be taken
// down (503 to every request, counted still) and brought back.
type CRLServer struct {
	// URL is the distribution point to put in a leaf (LeafOptions.CRLURLs).
	URL string

	srv  *httptest.Server
	hits atomic.Int64

	mu          sync.Mutex
	body        []byte
	contentType string
	handler     http.HandlerFunc // replaces the CRL when set
	down        bool
}

// NewCRLServer starts a server that answers 404 until Serve is called.
// Close it when done.
func NewCRLServer() *CRLServer {
	s := &CRLServer{}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.URL = s.srv.URL + "/issuing.crl"
	return s
}

func (s *CRLServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.hits.Add(1)
	s.mu.Lock()
	body, ct, h, down := s.body, s.contentType, s.handler, s.down
	s.mu.Unlock()
	switch {
	case down:
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	case h != nil:
		h(w, r)
	case body == nil:
		http.NotFound(w, r)
	default:
		if ct != "" {
			w.Header().Set("Content-Type", ct)
		}
		_, _ = w.Write(body)
	}
}

// Serve makes the server answer with crl (DER or PEM) and contentType
// ("" = none).
func (s *CRLServer) Serve(crl []byte, contentType string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body, s.contentType, s.handler = crl, contentType, nil
}

// Handle makes the server answer with h (hostile or broken servers).
func (s *CRLServer) Handle(h http.HandlerFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handler = h
}

// Down answers every request with 503 while down is true.
func (s *CRLServer) Down(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// Hits is the number of requests the server has had.
func (s *CRLServer) Hits() int { return int(s.hits.Load()) }

// Close stops the server; requests in flight are cut.
func (s *CRLServer) Close() {
	s.srv.CloseClientConnections()
	s.srv.Close()
}
