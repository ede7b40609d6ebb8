package entcert

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/portvakt/portvakt/internal/protocol"
)

// Policy is the trust policy for enterprise certificates. Every field works
// at its zero value except Roots, which must hold at least one anchor.
type Policy struct {
	// Roots are the trust anchors (from PEM files in the config).
	Roots []*x509.Certificate
	// Intermediates complete a chain when the client sends only its leaf.
	Intermediates []*x509.Certificate
	// AllowedPolicies, when non-empty, lists the certificate policy OIDs of
	// which the leaf must carry at least one.
	AllowedPolicies []asn1.ObjectIdentifier
	// Revocation checks the leaf against its issuer; nil = no revocation check.
	Revocation RevocationChecker
	// Now is the clock; nil = time.Now.
	Now func() time.Time
	// CacheSize is the number of verified leaves kept; 0 = 10000, negative
	// disables the cache (every Verify does the full work).
	CacheSize int
	// CacheTTL bounds how long a verified leaf is trusted without a new
	// revocation check, when Revocation is set; 0 = 5 minutes.
	CacheTTL time.Duration
	// NegativeCacheSize is the number of failed chains remembered; 0 =
	// 10000, negative disables the negative cache. An entry holds a key and
	// the error's texts (at most about 1 KiB), never a certificate.
	NegativeCacheSize int
	// NegativeCacheTTL is how long a failed chain is refused from memory;
	// 0 = 30 s. Short, so that a fix on the client's or the CA's side (a
	// missing intermediate, a certificate not valid yet) takes effect soon.
	NegativeCacheTTL time.Duration
	// Observer is told of the caches' lookups; nil observes nothing.
	Observer Observer
}

// Observer is told how the caches serve and how the CRLs fare (metrics).
// Its methods run on the request's path and must be cheap and not block.
// A Verifier calls the first two, a CRLChecker the last two.
type Observer interface {
	// CacheLookup is told whether a lookup of the verified-chain cache hit.
	CacheLookup(hit bool)
	// NegativeLookup is told whether a lookup of the failed-chain cache hit.
	NegativeLookup(hit bool)
	// CRLFetch is told the outcome of each fetch (or read, for a file) of
	// a CRL source: its distribution point URL or "file:" and its path.
	// The sources are those of leaves that chained to a trusted CA and the
	// configured files, so there are few; an observer that makes labels of
	// them still bounds how many it keeps.
	CRLFetch(source string, outcome CRLOutcome)
	// CRLInUse is told the validity of the CRL that a source now gives:
	// its thisUpdate and nextUpdate (zero when it has none).
	CRLInUse(source string, thisUpdate, nextUpdate time.Time)
}

// CRLOutcome is how a fetch of a CRL went.
type CRLOutcome string

// The outcomes of a CRL fetch.
const (
	CRLFetchOK CRLOutcome = "ok"
	// CRLFetchTimeout: no whole answer within the time budget (a server
	// that never answers, or trickles its bytes).
	CRLFetchTimeout CRLOutcome = "timeout"
	// CRLFetchUnreachable: no connection, a refused redirect, or an
	// HTTP status other than 200.
	CRLFetchUnreachable CRLOutcome = "unreachable"
	// CRLFetchTooLarge: over CRLOptions.MaxSize.
	CRLFetchTooLarge CRLOutcome = "too_large"
	// CRLFetchInvalid: not a CRL (an HTML page, garbage), or the CRL of
	// another issuer.
	CRLFetchInvalid CRLOutcome = "invalid"
	// CRLFetchBadSignature: a CRL naming the issuer that its key did not sign.
	CRLFetchBadSignature CRLOutcome = "bad_signature"
	// CRLFetchStale: a valid CRL already past its nextUpdate.
	CRLFetchStale CRLOutcome = "stale"
)

// nopObserver observes nothing.
type nopObserver struct{}

func (nopObserver) CacheLookup(bool)                      {}
func (nopObserver) NegativeLookup(bool)                   {}
func (nopObserver) CRLFetch(string, CRLOutcome)           {}
func (nopObserver) CRLInUse(string, time.Time, time.Time) {}

// Identity is what a verified enterprise certificate says about its holder.
// Leaf may be shared between calls through the cache: treat it as read-only.
type Identity struct {
	Org         string // 9-digit organisation number, mod-11 valid
	Leaf        *x509.Certificate
	PublicKey   crypto.PublicKey // *rsa.PublicKey (>= 2048 bits) or *ecdsa.PublicKey (P-256/P-384)
	Fingerprint [32]byte         // SHA-256 of the leaf DER
	SEID        int              // 1 or 2; 0 when the org was found only in O
}

// RevocationChecker reports whether leaf, issued by issuer, is revoked. A nil
// error means "not revoked"; any error rejects the certificate (fail closed).
// Errors that are *protocol.Error reach the client as they are; others become
// a generic "revocation status could not be checked".
//
// A checker that can say how long its "not revoked" holds (CRLChecker: until
// the NextUpdate of the CRL it used, or the end of the grace it is in) also
// implements CheckUntil; the Verifier then trusts a cached leaf no longer
// than that, so a CRL is never used past its time through the cache.
type RevocationChecker interface {
	Check(ctx context.Context, leaf, issuer *x509.Certificate) error
}

// revocationWindow is a RevocationChecker whose answer has an end: a zero
// time means none of its own.
type revocationWindow interface {
	CheckUntil(ctx context.Context, leaf, issuer *x509.Certificate) (time.Time, error)
}

const (
	defaultCacheSize    = 10000
	defaultCacheTTL     = 5 * time.Minute
	defaultNegCacheSize = 10000
	defaultNegCacheTTL  = 30 * time.Second
)

// Verifier verifies x5c chains under one Policy. It is safe for concurrent
// use. A change of trust configuration means a new Verifier (and so a new,
// empty cache).
type Verifier struct {
	roots         *x509.CertPool
	intermediates *x509.CertPool
	allowed       []asn1.ObjectIdentifier
	rev           RevocationChecker
	now           func() time.Time
	ttl           time.Duration
	cache         *cache    // nil when disabled
	neg           *negCache // nil when disabled
	negTTL        time.Duration
	obs           Observer
	// configured holds the SHA-256 of every configured root and
	// intermediate; bySubject indexes them by raw subject (see pool).
	configured map[[32]byte]bool
	bySubject  map[string][]*x509.Certificate
}

// NewVerifier checks p and builds a Verifier from it.
func NewVerifier(p Policy) (*Verifier, error) {
	var errs []error
	if len(p.Roots) == 0 {
		errs = append(errs, errors.New("entcert: at least one trust anchor (root) is required"))
	}
	v := &Verifier{
		roots:         x509.NewCertPool(),
		intermediates: x509.NewCertPool(),
		allowed:       append([]asn1.ObjectIdentifier(nil), p.AllowedPolicies...),
		rev:           p.Revocation,
		now:           p.Now,
		ttl:           p.CacheTTL,
		negTTL:        p.NegativeCacheTTL,
		obs:           p.Observer,
		configured:    map[[32]byte]bool{},
		bySubject:     map[string][]*x509.Certificate{},
	}
	trust := func(c *x509.Certificate) {
		fp := sha256.Sum256(c.Raw)
		if !v.configured[fp] {
			v.configured[fp] = true
			v.bySubject[string(c.RawSubject)] = append(v.bySubject[string(c.RawSubject)], c)
		}
	}
	for i, c := range p.Roots {
		if c == nil {
			errs = append(errs, fmt.Errorf("entcert: root %d is nil", i))
			continue
		}
		v.roots.AddCert(c)
		trust(c)
	}
	for i, c := range p.Intermediates {
		if c == nil {
			errs = append(errs, fmt.Errorf("entcert: intermediate %d is nil", i))
			continue
		}
		if !c.IsCA {
			errs = append(errs, fmt.Errorf("entcert: intermediate %d (%s) is not a CA certificate", i, c.Subject))
			continue
		}
		v.intermediates.AddCert(c)
		trust(c)
	}
	if p.CacheTTL < 0 {
		errs = append(errs, errors.New("entcert: CacheTTL must not be negative"))
	}
	if p.NegativeCacheTTL < 0 {
		errs = append(errs, errors.New("entcert: NegativeCacheTTL must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.obs == nil {
		v.obs = nopObserver{}
	}
	if v.ttl == 0 {
		v.ttl = defaultCacheTTL
	}
	switch {
	case p.CacheSize == 0:
		v.cache = newCache(defaultCacheSize)
	case p.CacheSize > 0:
		v.cache = newCache(p.CacheSize)
	}
	if v.negTTL == 0 {
		v.negTTL = defaultNegCacheTTL
	}
	switch {
	case p.NegativeCacheSize == 0:
		v.neg = newNegCache(defaultNegCacheSize)
	case p.NegativeCacheSize > 0:
		v.neg = newNegCache(p.NegativeCacheSize)
	}
	return v, nil
}

// Verify checks the x5c chain (DER certificates, leaf first, as DecodeX5C
// returns them) and returns the leaf's identity. It never panics on any input
// and every failure is a *protocol.Error with code invalid_grant.
//
// A success is cached by the SHA-256 of the leaf DER, so a repeat costs a
// hash and a map lookup. Only the leaf is part of the key, on purpose: the
// verdict depends only on the leaf bytes and the trust configuration (which
// is fixed for the life of the Verifier). A leaf that verified once was signed
// by some CA that chains to a configured root, and that stays true whatever
// certificates the client sends next to it next time; a header can add
// intermediates but never remove the proof already checked. What can change
// with time is bounded instead: the entry lapses at the earliest NotAfter of
// the chain that was used, and, with revocation on, after CacheTTL.
//
// A failure is cached too, for NegativeCacheTTL, by the SHA-256 of the whole
// chain as sent (every certificate with its length, so that no other split
// of the same bytes shares the key): the same failing chain sent again gets
// the same error without the work (docs/protocol.md). The key is the whole chain
// because a failure, unlike a success, may be the fault of any certificate in
// it. A revocation status that could not be had is cached only as long as the
// revocation checker promises the same answer (CRLChecker: while it remembers
// the failed fetch), so a CRL server that comes back is used as soon as the
// checker would ask it again, and an outage does not make every request redo
// the chain's work. The work before any cache entry is bounded: at
// most MaxChainElements ASN.1 elements parsed, every key within MaxRSABits,
// and no signature checked with a key that no trusted CA vouched for (see
// pool), so a failing chain costs no more than a succeeding one.
func (v *Verifier) Verify(ctx context.Context, chain [][]byte) (Identity, error) {
	if len(chain) == 0 {
		return Identity{}, errX5C(errors.New("empty chain"))
	}
	if len(chain) > MaxChainLen {
		return Identity{}, protocol.InvalidGrant("The x5c header holds %d certificates; at most %d are accepted", len(chain), MaxChainLen).
			WithCause(errors.New("x5c chain too long"))
	}
	for i, der := range chain {
		if len(der) == 0 {
			return Identity{}, errX5C(fmt.Errorf("x5c[%d] is empty", i))
		}
		if len(der) > MaxCertSize {
			return Identity{}, errCertSize(i)
		}
	}
	fp := sha256.Sum256(chain[0])
	now := v.now()
	if v.cache != nil {
		id, ok := v.cache.get(fp, now)
		v.obs.CacheLookup(ok)
		if ok {
			return id, nil
		}
	}
	var key [32]byte
	if v.neg != nil {
		key = chainKey(chain)
		err, ok := v.neg.get(key, now)
		v.obs.NegativeLookup(ok)
		if ok {
			return Identity{}, err
		}
	}
	res, err := v.verify(ctx, chain, fp, now)
	if err != nil {
		if v.neg != nil && !res.transient {
			until := now.Add(v.negTTL)
			if !res.negUntil.IsZero() && res.negUntil.Before(until) {
				until = res.negUntil
			}
			v.neg.put(key, err, now, until)
		}
		return Identity{}, err
	}
	if v.cache != nil {
		var deadline time.Time
		if v.rev != nil {
			deadline = now.Add(v.ttl)
			if !res.revUntil.IsZero() && res.revUntil.Before(deadline) {
				deadline = res.revUntil
			}
		}
		v.cache.put(fp, entry{id: res.id, notBefore: res.notBefore, notAfter: res.notAfter, deadline: deadline})
	}
	return res.id, nil
}

// chainKey is the SHA-256 of the chain as sent: each certificate's length
// (4 bytes, big-endian) and then its bytes.
func chainKey(chain [][]byte) [32]byte {
	h := sha256.New()
	var n [4]byte
	for _, der := range chain {
		binary.BigEndian.PutUint32(n[:], uint32(len(der)))
		h.Write(n[:])
		h.Write(der)
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// verify does the full, uncached check. It returns the identity and the
// window (latest NotBefore, earliest NotAfter) of the chain it verified. The
// cheap checks come first and no signature is verified before every sent key
// is within bounds (docs/protocol.md).
func (v *Verifier) verify(ctx context.Context, chain [][]byte, fp [32]byte, now time.Time) (result, error) {
	certs, err := parseChain(chain)
	if err != nil {
		return result{}, err
	}
	leaf := certs[0]
	// A leaf that names itself as its issuer is self-signed for every
	// purpose here; checking its signature would let the client choose
	// the key of the first verification.
	if bytes.Equal(leaf.RawIssuer, leaf.RawSubject) {
		return result{}, protocol.InvalidGrant("The certificate is self-signed; use an enterprise certificate issued by a trusted CA").
			WithCause(errors.New("self-signed leaf (issuer = subject)"))
	}
	if now.Before(leaf.NotBefore) {
		// Remembered only until it becomes valid.
		return result{negUntil: leaf.NotBefore}, protocol.InvalidGrant("The certificate is not valid yet: it is valid from %s", leaf.NotBefore.UTC().Format(time.RFC3339)).
			WithCause(fmt.Errorf("leaf NotBefore %s, now %s", leaf.NotBefore, now))
	}
	if now.After(leaf.NotAfter) {
		return result{}, protocol.InvalidGrant("The certificate expired at %s", leaf.NotAfter.UTC().Format(time.RFC3339)).
			WithCause(fmt.Errorf("leaf NotAfter %s, now %s", leaf.NotAfter, now))
	}
	if leaf.IsCA {
		return result{}, protocol.InvalidGrant("The first x5c certificate is a CA certificate; send the enterprise certificate itself first").
			WithCause(errors.New("leaf is a CA"))
	}
	if err := checkKeyUsage(leaf); err != nil {
		return result{}, err
	}
	if err := v.checkPolicies(leaf); err != nil {
		return result{}, err
	}
	org, seid, err := orgOf(leaf)
	if err != nil {
		return result{}, err
	}

	inter, err := v.pool(certs[1:])
	if err != nil {
		return result{}, err
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:         v.roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return result{}, chainError(err)
	}

	// The first chain is the one we vouch for: its window bounds the cache
	// entry and its issuer signs the CRL. Another chain could live longer,
	// but re-verifying early is merely cautious.
	used := chains[0]
	notBefore, notAfter := leaf.NotBefore, leaf.NotAfter
	for _, c := range used {
		if c.NotBefore.After(notBefore) {
			notBefore = c.NotBefore
		}
		if c.NotAfter.Before(notAfter) {
			notAfter = c.NotAfter
		}
	}

	var revUntil time.Time
	if v.rev != nil {
		if len(used) < 2 {
			return result{}, protocol.InvalidGrant("The certificate's revocation status could not be checked").
				WithCause(errors.New("verified chain has no issuer"))
		}
		var err error
		if w, ok := v.rev.(revocationWindow); ok {
			revUntil, err = w.CheckUntil(ctx, leaf, used[1])
		} else {
			err = v.rev.Check(ctx, leaf, used[1])
		}
		if err != nil {
			var pe *protocol.Error
			if errors.As(err, &pe) && pe.Code == protocol.CodeInvalidGrant && !errors.Is(pe, errRevocationUnavailable) {
				return result{}, pe
			}
			// Unknown revocation status is not the chain's fault: the
			// next request may find the CRL, so it is remembered only
			// while the checker promises the same answer (its own memory
			// of a failed fetch), and not at all when it promises nothing.
			var u *unavailable
			if errors.As(err, &u) && u.until.After(now) {
				return result{negUntil: u.until}, errRevocationUnknown(err)
			}
			return result{transient: true}, errRevocationUnknown(err)
		}
	}

	return result{
		id:        Identity{Org: org, Leaf: leaf, PublicKey: leaf.PublicKey, Fingerprint: fp, SEID: seid},
		notBefore: notBefore, notAfter: notAfter, revUntil: revUntil,
	}, nil
}

// result is what verify found beside its error.
type result struct {
	id                  Identity
	notBefore, notAfter time.Time // the verified chain's window
	// revUntil is when the revocation answer ends; zero = CacheTTL alone.
	revUntil time.Time
	// transient marks a failure that says nothing about the chain (the
	// revocation status could not be had): it is not negatively cached.
	transient bool
	// negUntil, when set, ends a negative cache entry early (a leaf that
	// becomes valid then).
	negUntil time.Time
}

func chainError(err error) error {
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	switch {
	case errors.As(err, &ua):
		return protocol.InvalidGrant("The certificate does not chain to a trusted CA: send the full chain in x5c, or use an enterprise certificate from a trusted issuer").WithCause(err)
	case errors.As(err, &ci) && ci.Reason == x509.Expired:
		return protocol.InvalidGrant("A CA certificate in the chain has expired or is not yet valid").WithCause(err)
	}
	return protocol.InvalidGrant("The certificate chain could not be verified").WithCause(err)
}

var oidKeyUsage = asn1.ObjectIdentifier{2, 5, 29, 15}

func checkKeyUsage(leaf *x509.Certificate) error {
	for _, e := range leaf.Extensions {
		if !e.Id.Equal(oidKeyUsage) {
			continue
		}
		if !e.Critical {
			return protocol.InvalidGrant("The certificate's keyUsage extension must be marked critical").
				WithCause(errors.New("keyUsage not critical"))
		}
		if leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
			return protocol.InvalidGrant("The certificate's keyUsage must include digitalSignature").
				WithCause(fmt.Errorf("keyUsage %#x", leaf.KeyUsage))
		}
		return nil
	}
	return protocol.InvalidGrant("The certificate has no keyUsage extension; a critical keyUsage with digitalSignature is required").
		WithCause(errors.New("no keyUsage"))
}

func (v *Verifier) checkPolicies(leaf *x509.Certificate) error {
	if len(v.allowed) == 0 {
		return nil
	}
	for _, have := range leaf.PolicyIdentifiers {
		for _, want := range v.allowed {
			if have.Equal(want) {
				return nil
			}
		}
	}
	return protocol.InvalidGrant("The certificate carries none of the accepted certificate policies; use an enterprise certificate of an accepted type").
		WithCause(fmt.Errorf("leaf policies %v, allowed %v", leaf.PolicyIdentifiers, v.allowed))
}

// errRevocationUnavailable marks a revocation error as "status unknown"
// rather than "revoked"; it is the private cause's outermost wrapper.
var errRevocationUnavailable = errors.New("revocation status unavailable")

func errRevocationUnknown(cause error) error {
	return protocol.InvalidGrant("The certificate's revocation status could not be checked; try again later").
		WithCause(fmt.Errorf("%w: %w", errRevocationUnavailable, cause))
}
