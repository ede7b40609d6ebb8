package client

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"software.sslmate.com/src/go-pkcs12"
)

// LoadPEM reads an enterprise certificate and its key from PEM. certPEM may
// hold the leaf alone or the chain in any order; the certificate that matches
// the key is put first and the rest follow from issuer to issuer (certificates
// not on the leaf's path are dropped). The key is PKCS#8, PKCS#1 or SEC1 and
// must not be encrypted.
func LoadPEM(certPEM, keyPEM []byte) (crypto.Signer, []*x509.Certificate, error) {
	key, err := LoadPrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, nil, err
	}
	var certs []*x509.Certificate
	rest := certPEM
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("client: certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, nil, errors.New("client: no CERTIFICATE block in the certificate PEM")
	}
	chain, err := orderChain(key, certs)
	if err != nil {
		return nil, nil, err
	}
	return key, chain, nil
}

// LoadPKCS12 reads a .p12/.pfx file: both the modern profile (AES-256,
// PBKDF2, SHA-256 MAC) and the legacy ones (RC2-40 or 3DES with a SHA-1 MAC)
// that Buypass and Commfides enterprise certificates are still issued in.
// The chain comes back leaf first.
func LoadPKCS12(data []byte, password string) (crypto.Signer, []*x509.Certificate, error) {
	k, leaf, cas, err := pkcs12.DecodeChain(data, password)
	if err != nil {
		if errors.Is(err, pkcs12.ErrIncorrectPassword) {
			return nil, nil, errors.New("client: PKCS#12: wrong password")
		}
		return nil, nil, fmt.Errorf("client: PKCS#12: %w", err)
	}
	key, ok := k.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("client: PKCS#12: key type %T cannot sign", k)
	}
	chain, err := orderChain(key, append([]*x509.Certificate{leaf}, cas...))
	if err != nil {
		return nil, nil, fmt.Errorf("client: PKCS#12: %w", err)
	}
	return key, chain, nil
}

// LoadPrivateKeyPEM reads the first private key in keyPEM: PKCS#8
// ("PRIVATE KEY"), PKCS#1 ("RSA PRIVATE KEY") or SEC1 ("EC PRIVATE KEY").
// Other blocks (such as "EC PARAMETERS") are skipped. Encrypted keys are
// refused with an error saying so.
func LoadPrivateKeyPEM(keyPEM []byte) (crypto.Signer, error) {
	rest := keyPEM
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("client: no private key block in the key PEM")
		}
		if b.Type == "ENCRYPTED PRIVATE KEY" || b.Headers["Proc-Type"] != "" {
			return nil, errors.New("client: the private key is encrypted; decrypt it first (openssl pkey -in key.pem -out plain.pem)")
		}
		var (
			k   any
			err error
		)
		switch b.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(b.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("client: %s: %w", b.Type, err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("client: key type %T cannot sign", k)
		}
		return s, nil
	}
}

// orderChain puts the certificate of key first and follows issuers from
// there. Files list their chains in every order, and servers want leaf first.
func orderChain(key crypto.Signer, certs []*x509.Certificate) ([]*x509.Certificate, error) {
	leafAt := -1
	for i, c := range certs {
		if c != nil && publicKeysEqual(key.Public(), c.PublicKey) {
			leafAt = i
			break
		}
	}
	if leafAt < 0 {
		return nil, errors.New("client: no certificate matches the private key")
	}
	chain := []*x509.Certificate{certs[leafAt]}
	used := map[int]bool{leafAt: true}
	for cur := certs[leafAt]; !bytes.Equal(cur.RawIssuer, cur.RawSubject); {
		next := -1
		for i, c := range certs {
			if !used[i] && c != nil && bytes.Equal(c.RawSubject, cur.RawIssuer) && cur.CheckSignatureFrom(c) == nil {
				next = i
				break
			}
		}
		if next < 0 {
			break
		}
		used[next] = true
		cur = certs[next]
		chain = append(chain, cur)
	}
	return chain, nil
}
