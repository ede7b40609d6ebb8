package entcert

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
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
	// OnCacheLookup, when set, is told whether each lookup of the
	// verified-chain cache hit (metrics). It must be cheap and not block.
	OnCacheLookup func(hit bool)
}

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
type RevocationChecker interface {
	Check(ctx context.Context, leaf, issuer *x509.Certificate) error
}

const (
	defaultCacheSize = 10000
	defaultCacheTTL  = 5 * time.Minute
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
	cache         *cache // nil when disabled
	onLookup      func(hit bool)
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
		onLookup:      p.OnCacheLookup,
	}
	for i, c := range p.Roots {
		if c == nil {
			errs = append(errs, fmt.Errorf("entcert: root %d is nil", i))
			continue
		}
		v.roots.AddCert(c)
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
	}
	if p.CacheTTL < 0 {
		errs = append(errs, errors.New("entcert: CacheTTL must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if v.now == nil {
		v.now = time.Now
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
	return v, nil
}

// Verify checks the x5c chain (DER certificates, leaf first, as DecodeX5C
// returns them) and returns the leaf's identity. It never panics on any input
// and every failure is a *protocol.Error with code invalid_grant.
//
// The result is cached by the SHA-256 of the leaf DER, so a repeat costs a
// hash and a map lookup. Only the leaf is part of the key, on purpose: the
// verdict depends only on the leaf bytes and the trust configuration (which
// is fixed for the life of the Verifier). A leaf that verified once was signed
// by some CA that chains to a configured root, and that stays true whatever
// certificates the client sends next to it next time; a header can add
// intermediates but never remove the proof already checked. What can change
// with time is bounded instead: the entry lapses at the earliest NotAfter of
// the chain that was used, and, with revocation on, after CacheTTL. Failures
// are never cached, so a fixed configuration or CRL takes effect at once.
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
		if v.onLookup != nil {
			v.onLookup(ok)
		}
		if ok {
			return id, nil
		}
	}
	id, notBefore, notAfter, err := v.verify(ctx, chain, fp, now)
	if err != nil {
		return Identity{}, err
	}
	if v.cache != nil {
		var deadline time.Time
		if v.rev != nil {
			deadline = now.Add(v.ttl)
		}
		v.cache.put(fp, entry{id: id, notBefore: notBefore, notAfter: notAfter, deadline: deadline})
	}
	return id, nil
}

// verify does the full, uncached check. It returns the identity and the
// window (latest NotBefore, earliest NotAfter) of the chain it verified.
func (v *Verifier) verify(ctx context.Context, chain [][]byte, fp [32]byte, now time.Time) (Identity, time.Time, time.Time, error) {
	var zero time.Time
	fail := func(err error) (Identity, time.Time, time.Time, error) { return Identity{}, zero, zero, err }

	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return fail(protocol.InvalidGrant("The first certificate of the x5c header (the leaf) is not a valid DER X.509 certificate").WithCause(err))
	}
	inter := v.intermediates
	if len(chain) > 1 {
		inter = v.intermediates.Clone()
		for i, der := range chain[1:] {
			c, err := x509.ParseCertificate(der)
			if err != nil {
				return fail(protocol.InvalidGrant("Certificate %d of the x5c header is not a valid DER X.509 certificate", i+1).WithCause(err))
			}
			inter.AddCert(c)
		}
	}

	// Before the chain: a self-signed leaf would otherwise only show up as an
	// untrusted chain, which tells the developer less.
	if bytes.Equal(leaf.RawIssuer, leaf.RawSubject) &&
		leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature) == nil {
		return fail(protocol.InvalidGrant("The certificate is self-signed; use an enterprise certificate issued by a trusted CA").
			WithCause(errors.New("self-signed leaf")))
	}
	if now.Before(leaf.NotBefore) {
		return fail(protocol.InvalidGrant("The certificate is not valid yet: it is valid from %s", leaf.NotBefore.UTC().Format(time.RFC3339)).
			WithCause(fmt.Errorf("leaf NotBefore %s, now %s", leaf.NotBefore, now)))
	}
	if now.After(leaf.NotAfter) {
		return fail(protocol.InvalidGrant("The certificate expired at %s", leaf.NotAfter.UTC().Format(time.RFC3339)).
			WithCause(fmt.Errorf("leaf NotAfter %s, now %s", leaf.NotAfter, now)))
	}
	if leaf.IsCA {
		return fail(protocol.InvalidGrant("The first x5c certificate is a CA certificate; send the enterprise certificate itself first").
			WithCause(errors.New("leaf is a CA")))
	}

	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:         v.roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return fail(chainError(err))
	}

	if err := checkKeyUsage(leaf); err != nil {
		return fail(err)
	}
	pub, err := checkKey(leaf)
	if err != nil {
		return fail(err)
	}
	if err := v.checkPolicies(leaf); err != nil {
		return fail(err)
	}
	org, seid, err := orgOf(leaf)
	if err != nil {
		return fail(err)
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

	if v.rev != nil {
		if len(used) < 2 {
			return fail(protocol.InvalidGrant("The certificate's revocation status could not be checked").
				WithCause(errors.New("verified chain has no issuer")))
		}
		if err := v.rev.Check(ctx, leaf, used[1]); err != nil {
			var pe *protocol.Error
			if errors.As(err, &pe) && pe.Code == protocol.CodeInvalidGrant {
				return fail(pe)
			}
			return fail(errRevocationUnknown(err))
		}
	}

	return Identity{Org: org, Leaf: leaf, PublicKey: pub, Fingerprint: fp, SEID: seid}, notBefore, notAfter, nil
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

func checkKey(leaf *x509.Certificate) (crypto.PublicKey, error) {
	switch k := leaf.PublicKey.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, protocol.InvalidGrant("The certificate's RSA key has %d bits; at least 2048 are required", k.N.BitLen()).
				WithCause(errors.New("short RSA key"))
		}
		return k, nil
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() || k.Curve == elliptic.P384() {
			return k, nil
		}
	}
	return nil, protocol.InvalidGrant("The certificate's key must be RSA (at least 2048 bits) or EC on P-256 or P-384").
		WithCause(fmt.Errorf("key type %T", leaf.PublicKey))
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

func errRevocationUnknown(cause error) error {
	return protocol.InvalidGrant("The certificate's revocation status could not be checked; try again later").WithCause(cause)
}
