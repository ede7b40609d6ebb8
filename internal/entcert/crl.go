package entcert

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/portvakt/portvakt/internal/protocol"
)

// CRLOptions configure a CRLChecker. Every field works at its zero value.
type CRLOptions struct {
	// Files are CRLs on disk (DER or PEM), for issuers whose CRL is
	// distributed out of band. Each file is matched to an issuer by the
	// CRL's issuer name and signature, and re-read once it is past its
	// NextUpdate (so a cron job that replaces it is picked up). A file CRL
	// for the issuer takes precedence over the leaf's distribution points.
	Files []string
	// HTTPClient fetches CRLs from http(s) distribution points; nil = a
	// plain client. Its redirect policy is replaced: a redirect is followed
	// only to the same host, at most three times.
	HTTPClient *http.Client
	// FetchTimeout is the budget of one Check for all its fetches
	// together, across every distribution point (not per point); the
	// caller's context deadline bounds it further. 0 = 10 s.
	FetchTimeout time.Duration
	// FailureTTL is how long a failed fetch of a distribution point is
	// remembered: a check within it fails at once (fail closed) instead of
	// waiting for a server that was just down or slow, and the server is
	// not asked again. 0 = 10 s, negative = not remembered.
	FailureTTL time.Duration
	// MaxSize bounds a CRL in bytes; 0 = 16 MiB.
	MaxSize int64
	// MaxAge is how long a CRL without NextUpdate is used; 0 = 1 h.
	MaxAge time.Duration
	// Now is the clock; nil = time.Now.
	Now func() time.Time
}

// CRLChecker is a RevocationChecker backed by CRLs. Parsed CRLs are cached
// per (source, issuer) until their NextUpdate and refreshed on demand after
// it; concurrent callers share one fetch, and a failed one is remembered for
// FailureTTL. It fails closed: when no valid, current CRL signed by the
// issuer can be had, Check returns an error. Delta and indirect CRLs are not
// supported.
//
// Time: one Check spends at most FetchTimeout, or less when its context's
// deadline (the request's) comes first, on all its sources together. A
// shared fetch is not cancelled when the caller that started it goes away
// (another caller may be waiting for it), but it ends at that caller's
// deadline; every caller stops waiting at its own.
type CRLChecker struct {
	files   []string
	client  *http.Client
	timeout time.Duration
	failTTL time.Duration
	maxSize int64
	maxAge  time.Duration
	now     func() time.Time

	sf singleflight.Group
	mu sync.Mutex
	// crls holds the last good CRL per source and issuer.
	crls map[string]*crlEntry
	// failures holds recent failures per source and issuer, at most
	// maxCRLFailures of them.
	failures map[string]crlFailure
}

type crlFailure struct {
	err   error
	until time.Time
}

const (
	// maxCRLRedirects bounds the redirects of one fetch.
	maxCRLRedirects = 3
	// maxCRLFailures bounds the remembered failures. Sources come from
	// leaves that already chained to a trusted CA, so there are few.
	maxCRLFailures = 1024
)

type crlEntry struct {
	revoked map[string]struct{} // serial numbers, big.Int.String()
	until   time.Time           // NextUpdate, or fetch time + MaxAge
	// foreign marks a configured file that holds another issuer's CRL;
	// remembered so a file is not re-read for every leaf of other issuers.
	foreign bool
}

// NewCRLChecker builds a CRLChecker. The files are read lazily, at the first
// check of a certificate whose issuer they may belong to, but each must exist.
func NewCRLChecker(o CRLOptions) (*CRLChecker, error) {
	var errs []error
	for _, f := range o.Files {
		if _, err := os.Stat(f); err != nil {
			errs = append(errs, fmt.Errorf("entcert: CRL file: %w", err))
		}
	}
	if o.FetchTimeout < 0 || o.MaxSize < 0 || o.MaxAge < 0 {
		errs = append(errs, errors.New("entcert: CRL options must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	c := &CRLChecker{
		files:   append([]string(nil), o.Files...),
		client:  o.HTTPClient,
		timeout: o.FetchTimeout,
		failTTL: o.FailureTTL,
		maxSize: o.MaxSize,
		maxAge:  o.MaxAge,
		now:     o.Now,
		crls:    make(map[string]*crlEntry),

		failures: make(map[string]crlFailure),
	}
	if c.timeout == 0 {
		c.timeout = 10 * time.Second
	}
	if c.maxSize == 0 {
		c.maxSize = 16 << 20
	}
	if c.maxAge == 0 {
		c.maxAge = time.Hour
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.failTTL == 0 {
		c.failTTL = 10 * time.Second
	}
	cl := http.Client{Timeout: c.timeout}
	if c.client != nil {
		cl = *c.client
	}
	cl.CheckRedirect = sameHostRedirect
	c.client = &cl
	return c, nil
}

// Check implements RevocationChecker. It returns nil when a current CRL of
// the issuer does not list the leaf, an invalid_grant "revoked" error when
// one does, and an invalid_grant "could not be checked" error otherwise.
func (c *CRLChecker) Check(ctx context.Context, leaf, issuer *x509.Certificate) error {
	if leaf == nil || issuer == nil {
		return errRevocationUnknown(errors.New("nil certificate"))
	}
	if ctx == nil {
		ctx = context.Background() // context.WithoutCancel panics on nil
	}
	// One budget for every source: a dead first distribution point must
	// not cost a full timeout before the second is tried, and the request's
	// own deadline comes first.
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	issuerID := sha256.Sum256(issuer.Raw)
	var sources []string
	for _, f := range c.files {
		sources = append(sources, "file:"+f)
	}
	for _, u := range leaf.CRLDistributionPoints {
		if pu, err := url.Parse(u); err == nil && (pu.Scheme == "http" || pu.Scheme == "https") && pu.Host != "" {
			sources = append(sources, u)
		}
	}
	if len(sources) == 0 {
		return errRevocationUnknown(errors.New("no CRL source: no configured file and no http(s) distribution point"))
	}
	var errs []error
	for _, src := range sources {
		e, err := c.get(ctx, src, issuer, issuerID)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", src, err))
			continue
		}
		if e.foreign {
			errs = append(errs, fmt.Errorf("%s: CRL of another issuer", src))
			continue
		}
		if _, ok := e.revoked[leaf.SerialNumber.String()]; ok {
			return protocol.InvalidGrant("The certificate has been revoked by its issuer").
				WithCause(fmt.Errorf("serial %s listed in CRL from %s", leaf.SerialNumber, src))
		}
		return nil
	}
	return errRevocationUnknown(errors.Join(errs...))
}

func (c *CRLChecker) get(ctx context.Context, src string, issuer *x509.Certificate, issuerID [32]byte) (*crlEntry, error) {
	key := src + "\x00" + string(issuerID[:])
	now := c.now()
	c.mu.Lock()
	e, f := c.crls[key], c.failures[key]
	c.mu.Unlock()
	if e != nil && now.Before(e.until) {
		return e, nil
	}
	if f.err != nil && now.Before(f.until) {
		return nil, fmt.Errorf("failed %s ago, not retried yet: %w", c.failTTL-f.until.Sub(now), f.err)
	}
	// One fetch serves every concurrent caller. It is detached from the
	// cancellation of the caller that starts it, so that a client going
	// away does not fail the others, but not from its deadline.
	ch := c.sf.DoChan(key, func() (any, error) {
		fctx, cancel := context.WithoutCancel(ctx), context.CancelFunc(func() {})
		if d, ok := ctx.Deadline(); ok {
			fctx, cancel = context.WithDeadline(fctx, d)
		}
		defer cancel()
		e, err := c.load(fctx, src, issuer)
		c.mu.Lock()
		defer c.mu.Unlock()
		if err != nil {
			c.rememberFailure(key, err)
			return nil, err
		}
		c.crls[key] = e
		delete(c.failures, key)
		return e, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*crlEntry), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("no CRL within the time left: %w", context.Cause(ctx))
	}
}

// rememberFailure records a failed load; c.mu is held.
func (c *CRLChecker) rememberFailure(key string, err error) {
	if c.failTTL < 0 {
		return
	}
	now := c.now()
	if len(c.failures) >= maxCRLFailures {
		for k, f := range c.failures {
			if !now.Before(f.until) {
				delete(c.failures, k)
			}
		}
	}
	for k := range c.failures {
		if len(c.failures) < maxCRLFailures {
			break
		}
		delete(c.failures, k)
	}
	c.failures[key] = crlFailure{err: err, until: now.Add(c.failTTL)}
}

// sameHostRedirect follows a redirect only to the host of the distribution
// point (an http to https upgrade is fine), at most maxCRLRedirects times:
// a CRL server must not send the fetcher to probe other hosts.
func sameHostRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > maxCRLRedirects {
		return fmt.Errorf("more than %d redirects", maxCRLRedirects)
	}
	if s := req.URL.Scheme; s != "http" && s != "https" {
		return fmt.Errorf("redirect to scheme %q refused", s)
	}
	if !strings.EqualFold(req.URL.Host, via[0].URL.Host) {
		return fmt.Errorf("redirect from %s to another host (%s) refused", via[0].URL.Host, req.URL.Host)
	}
	return nil
}

func (c *CRLChecker) load(ctx context.Context, src string, issuer *x509.Certificate) (*crlEntry, error) {
	var raw []byte
	var err error
	if name, ok := strings.CutPrefix(src, "file:"); ok {
		raw, err = c.readFile(name)
	} else {
		raw, err = c.fetch(ctx, src)
	}
	if err != nil {
		return nil, err
	}
	if b, _ := pem.Decode(raw); b != nil && b.Type == "X509 CRL" {
		raw = b.Bytes
	}
	crl, err := x509.ParseRevocationList(raw)
	if err != nil {
		return nil, fmt.Errorf("parse CRL: %w", err)
	}
	if !bytes.Equal(crl.RawIssuer, issuer.RawSubject) {
		return &crlEntry{foreign: true, until: c.now().Add(c.maxAge)}, nil
	}
	if err := crl.CheckSignatureFrom(issuer); err != nil {
		return nil, fmt.Errorf("CRL signature: %w", err)
	}
	now := c.now()
	until := crl.NextUpdate
	if until.IsZero() {
		until = now.Add(c.maxAge)
	}
	if !now.Before(until) {
		return nil, fmt.Errorf("CRL is stale: NextUpdate %s, now %s", until, now)
	}
	e := &crlEntry{revoked: make(map[string]struct{}, len(crl.RevokedCertificateEntries)), until: until}
	for _, r := range crl.RevokedCertificateEntries {
		if r.SerialNumber != nil {
			e.revoked[r.SerialNumber.String()] = struct{}{}
		}
	}
	return e, nil
}

func (c *CRLChecker) fetch(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("CRL fetch: HTTP %d", resp.StatusCode)
	}
	if resp.ContentLength > c.maxSize {
		return nil, fmt.Errorf("CRL of %d bytes exceeds the %d byte limit", resp.ContentLength, c.maxSize)
	}
	return readLimited(resp.Body, c.maxSize)
}

func (c *CRLChecker) readFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readLimited(f, c.maxSize)
}

func readLimited(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("CRL exceeds the %d byte limit", max)
	}
	return b, nil
}
