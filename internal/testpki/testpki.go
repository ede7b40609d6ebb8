package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"net"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/portvakt/portvakt/internal/devpki"
)

// OIDOrganizationIdentifier is X.520 organizationIdentifier (2.5.4.97), where
// SEID 2 certificates carry "NTRNO-<org>".
var OIDOrganizationIdentifier = devpki.OIDOrganizationIdentifier

// CA is a certificate authority with its key.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// Issuer is the CA that signed this one; nil for a root.
	Issuer *CA
}

// PKI is a root and one intermediate, the shape of Buypass and Commfides.
type PKI struct {
	Root         *CA
	Intermediate *CA
	// Now is the clock certificates are made against (default time.Now).
	Now func() time.Time
}

// New makes a root CA and an intermediate (devpki's hierarchy), valid from
// an hour ago for ten and five years.
func New(name string) (*PKI, error) {
	p := &PKI{Now: time.Now}
	dp, err := devpki.New(name, p.Now())
	if err != nil {
		return nil, err
	}
	p.Root = &CA{Cert: dp.Root.Cert, Key: dp.Root.Key}
	p.Intermediate = &CA{Cert: dp.Issuing.Cert, Key: dp.Issuing.Key, Issuer: p.Root}
	return p, nil
}

// SubCA makes a CA signed by ca.
func (ca *CA) SubCA(cn string, now time.Time) (*CA, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	return ca.SubCAWithKey(cn, now, key, nil)
}

// SubCAWithKey makes a CA signed by ca for key, or, when pub is set, for pub
// (a CA that cannot sign: its Key is nil).
func (ca *CA) SubCAWithKey(cn string, now time.Time, key crypto.Signer, pub crypto.PublicKey) (*CA, error) {
	if pub == nil {
		pub = key.Public()
	} else {
		key = nil
	}
	tmpl, err := devpki.IssuingTemplate(cn, now)
	if err != nil {
		return nil, err
	}
	cert, err := devpki.Sign(tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, Issuer: ca}, nil
}

// SubCAFor makes a CA certificate signed by ca for any public key, such as
// one from FakeRSAKey. Nobody holds its private key: it signs nothing, it
// only stands in a chain. maxPathLen < 0 leaves the path length unbounded.
func (ca *CA) SubCAFor(cn string, pub crypto.PublicKey, now time.Time, maxPathLen int) (*x509.Certificate, error) {
	tmpl, err := devpki.IssuingTemplate(cn, now)
	if err != nil {
		return nil, err
	}
	tmpl.MaxPathLen, tmpl.MaxPathLenZero = maxPathLen, maxPathLen == 0
	return devpki.Sign(tmpl, ca.Cert, pub, ca.Key)
}

// FakeRSAKey is an RSA public key of exactly bits bits with exponent e that
// is not a real key: its modulus is random, with the top bit set, and odd
// unless evenModulus. Generating a real RSA key of a hundred thousand bits
// takes hours; a certificate for this one takes a millisecond, and a
// verifier that bounds keys before using them must refuse it the same way.
func FakeRSAKey(bits, e int, evenModulus bool) (*rsa.PublicKey, error) {
	if bits < 16 {
		return nil, fmt.Errorf("testpki: FakeRSAKey of %d bits", bits)
	}
	b := make([]byte, (bits+7)/8)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	n := new(big.Int).SetBytes(b)
	// Exactly bits bits: clear what is above, set the top bit.
	n.SetBit(n, bits-1, 1)
	for i := bits; i < len(b)*8; i++ {
		n.SetBit(n, i, 0)
	}
	if evenModulus {
		n.SetBit(n, 0, 0)
	} else {
		n.SetBit(n, 0, 1)
	}
	return &rsa.PublicKey{N: n, E: e}, nil
}

// Style selects where the org number sits in a leaf's subject: devpki's
// SEID 1 and SEID 2 profiles, and OrgInO, which only tests make.
type Style = devpki.Style

const (
	// SEID1: subject serialNumber holds the 9-digit org number.
	SEID1 = devpki.SEID1
	// SEID2: organizationIdentifier holds NTRNO-<org>.
	SEID2 = devpki.SEID2
	// OrgInO: only O = "<name> - <org>" carries the number. The dev PKI
	// does not make it; the verifier must still read it.
	OrgInO Style = 100
)

// LeafOptions shape an enterprise certificate. Zero values give a valid
// SEID 2 RSA-2048 certificate with a critical digitalSignature key usage,
// valid from an hour ago for a year.
type LeafOptions struct {
	Org       string
	Name      string // organisation name, default "Test Org"
	Style     Style
	Key       crypto.Signer // default: a fresh RSA-2048 key
	NotBefore time.Time
	NotAfter  time.Time
	// KeyUsage defaults to digitalSignature; NoKeyUsage omits the extension.
	KeyUsage   x509.KeyUsage
	NoKeyUsage bool
	// NonCriticalKeyUsage writes keyUsage without the critical flag.
	NonCriticalKeyUsage bool
	Policies            []asn1.ObjectIdentifier
	CRLURLs             []string
	SelfSigned          bool
	// PublicKey, when set, is certified instead of Key's public key: a key
	// no private key belongs to (see FakeRSAKey). The leaf cannot sign then.
	PublicKey crypto.PublicKey
}

// Leaf is an enterprise certificate with its key and chain (leaf first,
// without the root).
type Leaf struct {
	Cert  *x509.Certificate
	Key   crypto.Signer
	Chain []*x509.Certificate
}

// Leaf issues an enterprise certificate from the intermediate.
func (p *PKI) Leaf(o LeafOptions) (*Leaf, error) { return p.Intermediate.Leaf(o, p.Now()) }

// Leaf issues an enterprise certificate signed by ca.
func (ca *CA) Leaf(o LeafOptions, now time.Time) (*Leaf, error) {
	if o.Name == "" {
		o.Name = "Test Org"
	}
	if o.Style == 0 {
		o.Style = SEID2
	}
	if o.Key == nil && o.PublicKey == nil {
		k, err := devpki.NewKey()
		if err != nil {
			return nil, err
		}
		o.Key = k
	}
	// The SEID profiles are devpki's; what only tests need is laid over them.
	e := devpki.Enterprise{Org: o.Org, Name: o.Name, Style: o.Style}
	if o.Style == OrgInO || o.Org == "" {
		e.Org, e.Style = "000000000", SEID2 // a placeholder: the subject is replaced below
	}
	tmpl, err := devpki.LeafTemplate(e, now)
	if err != nil {
		return nil, fmt.Errorf("testpki: %w", err)
	}
	switch {
	case o.Style == OrgInO:
		tmpl.Subject = pkix.Name{CommonName: o.Name, Organization: []string{o.Name + " - " + o.Org}, Country: []string{"NO"}}
	case o.Org == "":
		tmpl.Subject = pkix.Name{CommonName: o.Name, Organization: []string{o.Name}, Country: []string{"NO"}}
	}
	if !o.NotBefore.IsZero() {
		tmpl.NotBefore = o.NotBefore
	}
	if !o.NotAfter.IsZero() {
		tmpl.NotAfter = o.NotAfter
	}
	tmpl.KeyUsage = 0
	tmpl.PolicyIdentifiers = o.Policies
	tmpl.CRLDistributionPoints = o.CRLURLs
	// Since Go 1.24 (x509usepolicies=1) CreateCertificate writes Policies and
	// ignores PolicyIdentifiers; fill both so the option works either way.
	for _, id := range o.Policies {
		ints := make([]uint64, len(id))
		for i, n := range id {
			ints[i] = uint64(n)
		}
		oid, err := x509.OIDFromInts(ints)
		if err != nil {
			return nil, fmt.Errorf("testpki: policy %v: %w", id, err)
		}
		tmpl.Policies = append(tmpl.Policies, oid)
	}
	ku := o.KeyUsage
	if ku == 0 {
		ku = x509.KeyUsageDigitalSignature
	}
	if !o.NoKeyUsage && !o.NonCriticalKeyUsage {
		tmpl.KeyUsage = ku
	}
	if o.NonCriticalKeyUsage {
		// crypto/x509 always marks keyUsage critical; write the extension by hand.
		ext, err := keyUsageExtension(ku, false)
		if err != nil {
			return nil, err
		}
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, ext)
	}
	parent, signer := ca.Cert, ca.Key
	if o.SelfSigned {
		parent, signer = tmpl, o.Key
	}
	pub := o.PublicKey
	if pub == nil {
		pub = o.Key.Public()
	}
	cert, err := devpki.Sign(tmpl, parent, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("testpki: leaf: %w", err)
	}
	l := &Leaf{Cert: cert, Key: o.Key, Chain: []*x509.Certificate{cert}}
	if !o.SelfSigned {
		for c := ca; c != nil && c.Issuer != nil; c = c.Issuer {
			l.Chain = append(l.Chain, c.Cert)
		}
	}
	return l, nil
}

func keyUsageExtension(ku x509.KeyUsage, critical bool) (pkix.Extension, error) {
	var a [2]byte
	a[0] = reverseBits(byte(ku))
	a[1] = reverseBits(byte(ku >> 8))
	l := 1
	if a[1] != 0 {
		l = 2
	}
	bs := asn1.BitString{Bytes: a[:l], BitLength: l * 8}
	for bs.BitLength > 0 && bs.At(bs.BitLength-1) == 0 {
		bs.BitLength--
	}
	v, err := asn1.Marshal(bs)
	if err != nil {
		return pkix.Extension{}, err
	}
	return pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 15}, Critical: critical, Value: v}, nil
}

func reverseBits(b byte) byte {
	var r byte
	for i := 0; i < 8; i++ {
		r = r<<1 | b&1
		b >>= 1
	}
	return r
}

// CRL makes a CRL signed by ca listing the revoked serial numbers, valid from
// now for a day.
func (ca *CA) CRL(now time.Time, revoked ...*big.Int) ([]byte, error) {
	return ca.CRLUntil(now, now.Add(24*time.Hour), revoked...)
}

// CRLUntil is CRL with an explicit NextUpdate, for tests of CRL refresh.
func (ca *CA) CRLUntil(now, nextUpdate time.Time, revoked ...*big.Int) ([]byte, error) {
	entries := make([]x509.RevocationListEntry, 0, len(revoked))
	for _, s := range revoked {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: now.Add(-time.Minute)})
	}
	number, err := devpki.SerialNumber()
	if err != nil {
		return nil, err
	}
	return x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    number,
		ThisUpdate:                now.Add(-time.Minute),
		NextUpdate:                nextUpdate,
		RevokedCertificateEntries: entries,
	}, ca.Cert, ca.Key)
}

// X5C is the leaf's chain as a JWS x5c header value (standard base64 DER,
// leaf first).
func (l *Leaf) X5C() []string {
	out := make([]string, len(l.Chain))
	for i, c := range l.Chain {
		out[i] = b64(c.Raw)
	}
	return out
}

// CertPEM encodes certificates as PEM.
func CertPEM(certs ...*x509.Certificate) []byte { return devpki.CertPEM(certs...) }

// KeyPEM encodes a private key as PKCS#8 PEM.
func KeyPEM(k crypto.Signer) ([]byte, error) { return devpki.KeyPEM(k) }

// PKCS12 encodes the leaf, its key and its CA certificates as a .p12 with the
// given password, using the modern (AES-256, PBKDF2, SHA-256 MAC) profile.
func (l *Leaf) PKCS12(password string) ([]byte, error) {
	return pkcs12.Modern.Encode(l.Key, l.Cert, l.Chain[1:], password)
}

// PKCS12Legacy encodes as the older RC2/3DES profile that many issued
// enterprise certificates still use.
func (l *Leaf) PKCS12Legacy(password string) ([]byte, error) {
	return (&devpki.Credential{Cert: l.Cert, Key: l.Key, Chain: l.Chain}).PKCS12(password)
}

// RSAKey makes an RSA key of the given size.
func RSAKey(bits int) (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, bits) }

// RSAKeyFast makes an RSA key of the given size from several primes of at
// most 1024 bits each, for tests that need a real large key: an 8192-bit
// key takes a second this way instead of many. Its public half is an
// ordinary RSA public key.
func RSAKeyFast(bits int) (*rsa.PrivateKey, error) {
	n := max(2, bits/1024)
	if n == 2 {
		return rsa.GenerateKey(rand.Reader, bits)
	}
	// Deprecated for real keys, fine for throwaway test keys.
	return rsa.GenerateMultiPrimeKey(rand.Reader, n, bits)
}

// WithSignature returns the certificate der with its signature value
// replaced by sig (the signed part and the algorithm are kept): a
// certificate that claims an issuer whose key never signed it.
func WithSignature(der, sig []byte) ([]byte, error) {
	var c struct {
		TBS    asn1.RawValue
		Alg    asn1.RawValue
		Signed asn1.BitString
	}
	rest, err := asn1.Unmarshal(der, &c)
	if err != nil {
		return nil, fmt.Errorf("testpki: certificate: %w", err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("testpki: %d trailing bytes after the certificate", len(rest))
	}
	c.Signed = asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)}
	return asn1.Marshal(c)
}

// ECKey makes an EC key on the given curve.
func ECKey(c elliptic.Curve) (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(c, rand.Reader) }

// TLSServer issues a TLS server certificate for hosts (DNS names or IP
// addresses) signed by ca, valid from an hour ago for a day, with a fresh
// P-256 key, ready for a tls.Config.
func (ca *CA) TLSServer(now time.Time, hosts ...string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := devpki.SerialNumber()
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: hosts[0]},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	cert, err := devpki.Sign(tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("testpki: TLS server: %w", err)
	}
	chain := [][]byte{cert.Raw}
	for c := ca; c != nil && c.Issuer != nil; c = c.Issuer {
		chain = append(chain, c.Cert.Raw)
	}
	return tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: cert}, nil
}

// TLSClient is the leaf as a TLS client certificate (its chain without the
// root).
func (l *Leaf) TLSClient() tls.Certificate {
	c := tls.Certificate{PrivateKey: l.Key, Leaf: l.Cert}
	for _, x := range l.Chain {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	return c
}
