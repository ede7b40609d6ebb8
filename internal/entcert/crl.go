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
	"mime"
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
	// Grace lets a CRL past its NextUpdate still be used, for at most this
	// long after it, while no newer one can be had (its server is down, or
	// still serves the old one). 0 = none: past NextUpdate the leaf is
	// refused until a current CRL is fetched. A grace trades revocation
	// latency for availability; it is the operator's choice to make.
	Grace time.Duration
	// Observer is told of every fetch and of the CRL each source gives
	// (metrics); nil observes nothing.
	Observer Observer
	// Now is the clock; nil = time.Now.
	Now func() time.Time
}

// CRLChecker is a RevocationChecker backed by CRLs. Parsed CRLs are cached
// per (source, issuer) until their NextUpdate and refreshed at the first
// use after it; concurrent callers share one fetch, and a failed one is
// remembered for FailureTTL, so a dead server is asked once per FailureTTL
// however many requests come. It fails closed: when no valid CRL signed by
// the issuer and current (or within Grace of its NextUpdate) can be had,
// Check returns an error. Delta and indirect CRLs are not supported.
//
// Real servers differ in what they send: a CRL in DER or in PEM (the
// format is read from the bytes, not from a Content-Type, which servers
// get wrong), application/pkix-crl, application/octet-stream or no type.
// An HTML page (a portal's error page with status 200) is refused before
// its body is read, and so is a Content-Length over MaxSize.
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
	grace   time.Duration
	obs     Observer
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
	revoked map[string]revocation // by serial number, big.Int.String()
	until   time.Time             // NextUpdate, or fetch time + MaxAge
	// thisUpdate and nextUpdate are the CRL's (for the Observer).
	thisUpdate, nextUpdate time.Time
	// foreign marks a configured file that holds another issuer's CRL;
	// remembered so a file is not re-read for every leaf of other issuers.
	foreign bool
}

// revocation is what a CRL says of one revoked certificate.
type revocation struct {
	at     time.Time
	reason int // RFC 5280 CRLReason; 0 = unspecified
}

// usable reports whether e may be used at now: before its NextUpdate, or
// within grace after it.
func (e *crlEntry) usable(now time.Time, grace time.Duration) bool {
	return e != nil && now.Before(e.until.Add(max(grace, 0)))
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
	if o.FetchTimeout < 0 || o.MaxSize < 0 || o.MaxAge < 0 || o.Grace < 0 {
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
		grace:   o.Grace,
		obs:     o.Observer,
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
	if c.obs == nil {
		c.obs = nopObserver{}
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
	_, err := c.CheckUntil(ctx, leaf, issuer)
	return err
}

// CheckUntil is Check, and on success until when its answer holds: the
// NextUpdate of the CRL it used, or, for a CRL past it that Grace lets
// serve, the end of the grace.
func (c *CRLChecker) CheckUntil(ctx context.Context, leaf, issuer *x509.Certificate) (time.Time, error) {
	if leaf == nil || issuer == nil {
		return time.Time{}, errRevocationUnknown(errors.New("nil certificate"))
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
		// Nothing will change for this leaf: the verifier may remember it.
		return time.Time{}, errRevocationUnknown(&unavailable{until: c.now().Add(c.maxAge),
			err: errors.New("no CRL source: no configured file and no http(s) distribution point")})
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
		if r, ok := e.revoked[leaf.SerialNumber.String()]; ok {
			return time.Time{}, errRevoked(leaf, r, src)
		}
		if c.now().Before(e.until) {
			return e.until, nil
		}
		return e.until.Add(c.grace), nil
	}
	return time.Time{}, errRevocationUnknown(&unavailable{until: c.nextChance(sources, issuerID), err: errors.Join(errs...)})
}

// unavailable is why no revocation status could be had, and until when
// asking again cannot change that: until then the CRLChecker would answer
// the same from what it remembers, so the Verifier may remember the
// failure as long (a failing request then costs a hash, as a succeeding
// one does). A zero until promises nothing.
type unavailable struct {
	until time.Time
	err   error
}

func (u *unavailable) Error() string { return u.err.Error() }
func (u *unavailable) Unwrap() error { return u.err }

// nextChance is the first time one of the sources may give another
// answer: the end of a remembered failure, or of a foreign file's entry.
// It is zero when a source has neither (its fetch was cut short by the
// caller's deadline and may still succeed).
func (c *CRLChecker) nextChance(sources []string, issuerID [32]byte) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	var first time.Time
	for _, src := range sources {
		key := crlKey(src, issuerID)
		var until time.Time
		if f := c.failures[key]; f.err != nil && now.Before(f.until) {
			until = f.until
		} else if e := c.crls[key]; e != nil && e.foreign && now.Before(e.until) {
			until = e.until
		} else {
			return time.Time{}
		}
		if first.IsZero() || until.Before(first) {
			first = until
		}
	}
	return first
}

// crlKey names the CRL of an issuer from a source.
func crlKey(src string, issuerID [32]byte) string { return src + "\x00" + string(issuerID[:]) }

func (c *CRLChecker) get(ctx context.Context, src string, issuer *x509.Certificate, issuerID [32]byte) (*crlEntry, error) {
	key := crlKey(src, issuerID)
	now := c.now()
	c.mu.Lock()
	e, f := c.crls[key], c.failures[key]
	c.mu.Unlock()
	if e != nil && now.Before(e.until) {
		return e, nil
	}
	if f.err != nil && now.Before(f.until) {
		if e.usable(now, c.grace) {
			return e, nil
		}
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
		fresh, err := c.load(fctx, src, issuer)
		c.obs.CRLFetch(src, outcomeOf(err))
		c.mu.Lock()
		defer c.mu.Unlock()
		old := c.crls[key]
		if fresh != nil && (old == nil || !fresh.until.Before(old.until)) {
			// A CRL past its NextUpdate (err says so) is kept too when it
			// is the newest there is: Grace may let it serve.
			c.crls[key] = fresh
			if !fresh.foreign {
				c.obs.CRLInUse(src, fresh.thisUpdate, fresh.nextUpdate)
			}
		}
		if err != nil {
			c.rememberFailure(key, err)
			return nil, err
		}
		delete(c.failures, key)
		return fresh, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			c.mu.Lock()
			e = c.crls[key]
			c.mu.Unlock()
			if e.usable(c.now(), c.grace) {
				return e, nil
			}
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

// load fetches or reads src and returns the issuer's CRL in it. A valid
// CRL already past its NextUpdate comes back with an error (errStale) and
// the entry, which Grace may still let serve.
func (c *CRLChecker) load(ctx context.Context, src string, issuer *x509.Certificate) (*crlEntry, error) {
	var raw []byte
	var err error
	name, isFile := strings.CutPrefix(src, "file:")
	if isFile {
		raw, err = c.readFile(name)
	} else {
		raw, err = c.fetch(ctx, src)
	}
	if err != nil {
		return nil, err
	}
	der, err := crlDER(raw)
	if err != nil {
		return nil, err
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, crlErr(CRLFetchInvalid, fmt.Errorf("parse CRL: %w", err))
	}
	if !bytes.Equal(crl.RawIssuer, issuer.RawSubject) {
		if !isFile {
			// A distribution point serves its issuer's CRL and no other.
			return nil, crlErr(CRLFetchInvalid, fmt.Errorf("the CRL's issuer is %s, not the certificate's issuer %s", crl.Issuer, issuer.Subject))
		}
		return &crlEntry{foreign: true, until: c.now().Add(c.maxAge)}, nil
	}
	if err := crl.CheckSignatureFrom(issuer); err != nil {
		return nil, crlErr(CRLFetchBadSignature, fmt.Errorf("CRL names %s as its issuer but is not signed by its key: %w", issuer.Subject, err))
	}
	now := c.now()
	until := crl.NextUpdate
	if until.IsZero() {
		until = now.Add(c.maxAge)
	}
	e := &crlEntry{revoked: make(map[string]revocation, len(crl.RevokedCertificateEntries)), until: until,
		thisUpdate: crl.ThisUpdate, nextUpdate: crl.NextUpdate}
	for _, r := range crl.RevokedCertificateEntries {
		if r.SerialNumber != nil {
			e.revoked[r.SerialNumber.String()] = revocation{at: r.RevocationTime, reason: r.ReasonCode}
		}
	}
	if !now.Before(until) {
		return e, crlErr(CRLFetchStale, fmt.Errorf("CRL is stale: NextUpdate %s, now %s", until.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339)))
	}
	return e, nil
}

// crlDER is the DER of a CRL sent as DER or as PEM ("X509 CRL", or "CRL"
// as some tools write it). The format is read from the bytes: servers send
// either under any Content-Type.
func crlDER(raw []byte) ([]byte, error) {
	if len(raw) > 0 && raw[0] == 0x30 { // a DER SEQUENCE
		return raw, nil
	}
	if b, _ := pem.Decode(raw); b != nil {
		if b.Type != "X509 CRL" && b.Type != "CRL" {
			return nil, crlErr(CRLFetchInvalid, fmt.Errorf("a PEM %q block, not an X509 CRL", b.Type))
		}
		return b.Bytes, nil
	}
	head := raw[:min(len(raw), 16)]
	return nil, crlErr(CRLFetchInvalid, fmt.Errorf("not a CRL in DER or PEM: %d bytes starting %q", len(raw), head))
}

func (c *CRLChecker) fetch(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, crlErr(CRLFetchUnreachable, err)
	}
	req.Header.Set("Accept", "application/pkix-crl, application/x-pkcs7-crl;q=0.5, */*;q=0.1")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, crlErr(CRLFetchUnreachable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, crlErr(CRLFetchUnreachable, fmt.Errorf("CRL fetch: HTTP %d", resp.StatusCode))
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "text/html" {
		// A portal's error or login page served with 200; never a CRL.
		return nil, crlErr(CRLFetchInvalid, errors.New("CRL fetch: the server sent an HTML page (Content-Type text/html)"))
	}
	if resp.ContentLength > c.maxSize {
		return nil, crlErr(CRLFetchTooLarge, fmt.Errorf("CRL of %d bytes exceeds the %d byte limit", resp.ContentLength, c.maxSize))
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
		return nil, crlErr(CRLFetchUnreachable, fmt.Errorf("reading the CRL: %w", err))
	}
	if int64(len(b)) > max {
		return nil, crlErr(CRLFetchTooLarge, fmt.Errorf("CRL exceeds the %d byte limit", max))
	}
	return b, nil
}

// crlError is a failed load with its outcome (metrics).
type crlError struct {
	outcome CRLOutcome
	err     error
}

func crlErr(o CRLOutcome, err error) error { return &crlError{outcome: o, err: err} }
func (e *crlError) Error() string          { return e.err.Error() }
func (e *crlError) Unwrap() error          { return e.err }

// outcomeOf is the outcome of a load that returned err. A deadline met
// anywhere in it is a timeout, whatever layer reported it.
func outcomeOf(err error) CRLOutcome {
	var ce *crlError
	switch {
	case err == nil:
		return CRLFetchOK
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		return CRLFetchTimeout
	case errors.As(err, &ce):
		return ce.outcome
	}
	return CRLFetchUnreachable // a file that cannot be read
}

// crlReasons are the RFC 5280 CRLReason names (7 is unused).
var crlReasons = [...]string{"unspecified", "keyCompromise", "cACompromise", "affiliationChanged",
	"superseded", "cessationOfOperation", "certificateHold", "", "removeFromCRL", "privilegeWithdrawn", "aACompromise"}

// errRevoked refuses a revoked leaf. The description speaks of the
// certificate the client sent (when, and why when the CA said); the
// serial and the source go to the log only.
func errRevoked(leaf *x509.Certificate, r revocation, src string) error {
	var detail []string
	if !r.at.IsZero() {
		detail = append(detail, "revoked at "+r.at.UTC().Format(time.RFC3339))
	}
	if r.reason > 0 && r.reason < len(crlReasons) && crlReasons[r.reason] != "" {
		detail = append(detail, "reason "+crlReasons[r.reason])
	}
	d := ""
	if len(detail) > 0 {
		d = " (" + strings.Join(detail, ", ") + ")"
	}
	return protocol.InvalidGrant("The certificate has been revoked by its issuer%s; the client needs a new enterprise certificate", d).
		WithCause(fmt.Errorf("serial %s listed in the CRL from %s", leaf.SerialNumber, src))
}
