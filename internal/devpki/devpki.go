package devpki

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

// OIDOrganizationIdentifier is X.520 organizationIdentifier (2.5.4.97), where
// SEID 2 certificates carry "NTRNO-<org>".
var OIDOrganizationIdentifier = asn1.ObjectIdentifier{2, 5, 4, 97}

// Validity of what this package makes. Every certificate starts Backdate
// before the time it is made, so that a machine whose clock is a little
// behind accepts it at once.
const (
	Backdate        = time.Hour
	RootValidity    = 10 * 365 * 24 * time.Hour
	IssuingValidity = 5 * 365 * 24 * time.Hour
	LeafValidity    = 365 * 24 * time.Hour
	// KeyBits is the size of every RSA key made here: what the issued
	// enterprise certificates use, and the least the token endpoint
	// accepts for a leaf.
	KeyBits = 2048
)

// Style selects where an enterprise certificate carries the organisation
// number.
type Style int

const (
	// SEID1: the subject serialNumber holds the 9-digit org number.
	SEID1 Style = iota + 1
	// SEID2: organizationIdentifier holds NTRNO-<org>.
	SEID2
)

// String names the style as the SEID specifications do.
func (s Style) String() string {
	switch s {
	case SEID1:
		return "SEID 1"
	case SEID2:
		return "SEID 2"
	}
	return fmt.Sprintf("Style(%d)", int(s))
}

// Enterprise is the holder of an enterprise certificate.
type Enterprise struct {
	// Org is the organisation number.
	Org string
	// Name is the organisation's name, the subject's CN and O.
	Name  string
	Style Style
}

// Subject is the holder's distinguished name in its style.
func (e Enterprise) Subject() (pkix.Name, error) {
	if e.Org == "" || e.Name == "" {
		return pkix.Name{}, errors.New("devpki: an enterprise certificate needs an org number and a name")
	}
	subj := pkix.Name{CommonName: e.Name, Organization: []string{e.Name}, Country: []string{"NO"}}
	switch e.Style {
	case SEID1:
		subj.SerialNumber = e.Org
	case SEID2:
		subj.ExtraNames = []pkix.AttributeTypeAndValue{{Type: OIDOrganizationIdentifier, Value: "NTRNO-" + e.Org}}
	default:
		return pkix.Name{}, fmt.Errorf("devpki: unknown certificate style %v", e.Style)
	}
	return subj, nil
}

// SerialNumber is a random positive serial of 127 bits: unique without any
// state, and within the 20 octets RFC 5280 allows.
func SerialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("devpki: serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// RootTemplate is the template of a self-signed root CA named name made at
// now.
func RootTemplate(name string, now time.Time) (*x509.Certificate, error) {
	serial, err := SerialNumber()
	if err != nil {
		return nil, err
	}
	return &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name + " Root CA", Organization: []string{name}, Country: []string{"NO"}},
		NotBefore:             now.Add(-Backdate),
		NotAfter:              now.Add(RootValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}, nil
}

// IssuingTemplate is the template of an issuing CA with common name cn made
// at now: it may sign leaves and CRLs, not further CAs (path length 0), the
// shape of Buypass's and Commfides's issuing CAs.
func IssuingTemplate(cn string, now time.Time) (*x509.Certificate, error) {
	serial, err := SerialNumber()
	if err != nil {
		return nil, err
	}
	return &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Country: []string{"NO"}},
		NotBefore:             now.Add(-Backdate),
		NotAfter:              now.Add(IssuingValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}, nil
}

// LeafTemplate is the template of e's enterprise certificate made at now: an
// end-entity certificate with a critical keyUsage of digitalSignature only,
// which is what the token endpoint requires of a leaf.
func LeafTemplate(e Enterprise, now time.Time) (*x509.Certificate, error) {
	subj, err := e.Subject()
	if err != nil {
		return nil, err
	}
	serial, err := SerialNumber()
	if err != nil {
		return nil, err
	}
	return &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subj,
		NotBefore:             now.Add(-Backdate),
		NotAfter:              now.Add(LeafValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}, nil
}

// Sign makes the certificate tmpl for pub, signed by parent's key, and parses
// it back. For a self-signed certificate parent is tmpl.
func Sign(tmpl, parent *x509.Certificate, pub crypto.PublicKey, parentKey crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		return nil, fmt.Errorf("devpki: create certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	return x509.ParseCertificate(der)
}

// NewKey makes an RSA key of KeyBits.
func NewKey() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, KeyBits) }

// CA is a certificate authority with its key.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// PKI is a root CA and one issuing CA below it.
type PKI struct {
	Root    CA
	Issuing CA
}

// New makes a PKI named name at now: "<name> Root CA" and "<name> Issuing
// CA", each with a fresh key.
func New(name string, now time.Time) (*PKI, error) {
	rootKey, err := NewKey()
	if err != nil {
		return nil, err
	}
	rootTmpl, err := RootTemplate(name, now)
	if err != nil {
		return nil, err
	}
	root, err := Sign(rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	if err != nil {
		return nil, err
	}
	p := &PKI{Root: CA{Cert: root, Key: rootKey}}
	if p.Issuing, err = p.Root.SubCA(name+" Issuing CA", now); err != nil {
		return nil, err
	}
	return p, nil
}

// SubCA makes an issuing CA with a fresh key, signed by ca.
func (ca CA) SubCA(cn string, now time.Time) (CA, error) {
	key, err := NewKey()
	if err != nil {
		return CA{}, err
	}
	tmpl, err := IssuingTemplate(cn, now)
	if err != nil {
		return CA{}, err
	}
	cert, err := Sign(tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return CA{}, err
	}
	return CA{Cert: cert, Key: key}, nil
}

// Credential is an enterprise certificate with its key and the chain a
// client sends (leaf first, then the issuing CA; without the root).
type Credential struct {
	Cert  *x509.Certificate
	Key   crypto.Signer
	Chain []*x509.Certificate
}

// Issue makes e's enterprise certificate with a fresh key, signed by the
// issuing CA.
func (p *PKI) Issue(e Enterprise, now time.Time) (*Credential, error) {
	tmpl, err := LeafTemplate(e, now)
	if err != nil {
		return nil, err
	}
	key, err := NewKey()
	if err != nil {
		return nil, err
	}
	cert, err := Sign(tmpl, p.Issuing.Cert, key.Public(), p.Issuing.Key)
	if err != nil {
		return nil, err
	}
	return &Credential{Cert: cert, Key: key, Chain: []*x509.Certificate{cert, p.Issuing.Cert}}, nil
}

// PKCS12 is the credential as a .p12 file protected by password, in the
// older 3DES profile that many issued enterprise certificates still use, so
// that the demo files exercise the same decoder as real ones.
func (c *Credential) PKCS12(password string) ([]byte, error) {
	return pkcs12.LegacyDES.Encode(c.Key, c.Cert, c.Chain[1:], password)
}

// CertPEM encodes certificates as PEM, in order.
func CertPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// KeyPEM encodes a private key as PKCS#8 PEM.
func KeyPEM(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("devpki: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
