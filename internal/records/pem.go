package records

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"

	"github.com/go-jose/go-jose/v4"
)

// MaxPEM bounds an uploaded PEM text, as the self-service API bounds a
// request body (64 KiB): a certificate or a public key is a few KiB.
const MaxPEM = 64 << 10

// PublicJWK is pub as a client key to upload: a JWK with kid and use sig,
// nothing else (no alg: the key's type says it). The CLI's key upload and
// the console's PEM upload both turn a public key into a JWK this way.
func PublicJWK(pub crypto.PublicKey, kid string) (json.RawMessage, error) {
	return json.Marshal(jose.JSONWebKey{Key: pub, KeyID: kid, Use: "sig"})
}

// PEMKey reads an uploaded PEM text holding one certificate (its subject
// public key is the key) or one public key (PKIX "PUBLIC KEY" or PKCS#1
// "RSA PUBLIC KEY") and returns it as a JWK (PublicJWK) under kid, or, with
// kid "", under its RFC 7638 thumbprint. The JWK still goes through
// ValidateClientKeys, which checks key types and sizes; field names the
// form field in the problems.
//
// Bounded before it works: a text over MaxPEM is refused by its length.
// A text that names a private key anywhere is refused before any block is
// decoded, so a private key pasted by mistake is never parsed, stored,
// echoed or logged; the message says so.
func PEMKey(field string, b []byte, kid string) (json.RawMessage, []FieldError) {
	if len(b) > MaxPEM {
		return nil, fieldError(field, "is %d bytes; a certificate or public key in PEM is at most %d bytes (64 KiB)", len(b), MaxPEM)
	}
	if bytes.Contains(b, []byte("PRIVATE KEY")) {
		return nil, fieldError(field, "holds a private key, which was not stored: upload only the certificate or the public key (openssl pkey -in key.pem -pubout), and keep the private key on your own machine")
	}
	var blocks []*pem.Block
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blocks = append(blocks, blk); len(blocks) > 1 {
			return nil, fieldError(field, "holds more than one PEM block; upload one certificate (the client's own, not its chain) or one public key")
		}
	}
	if len(blocks) == 0 {
		return nil, fieldError(field, "holds no PEM block; paste a text starting with -----BEGIN CERTIFICATE----- or -----BEGIN PUBLIC KEY-----")
	}
	var pub crypto.PublicKey
	var err error
	switch blk := blocks[0]; blk.Type {
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(blk.Bytes); err == nil {
			pub = cert.PublicKey
		}
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(blk.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(blk.Bytes)
	default:
		return nil, fieldError(field, "holds a PEM block of type %q; upload a CERTIFICATE or a PUBLIC KEY", Clip(blk.Type))
	}
	if err != nil {
		return nil, fieldError(field, "holds a %s that cannot be read: %s", blocks[0].Type, Clip(err.Error()))
	}
	if kid == "" {
		k := jose.JSONWebKey{Key: pub}
		tp, err := k.Thumbprint(crypto.SHA256)
		if err != nil {
			return nil, unsupportedKey(field)
		}
		kid = base64.RawURLEncoding.EncodeToString(tp)
	}
	jwk, err := PublicJWK(pub, kid)
	if err != nil {
		return nil, unsupportedKey(field)
	}
	return jwk, nil
}

func unsupportedKey(field string) []FieldError {
	return fieldError(field, "holds a key of a type that is not allowed; use RSA (%d to %d bits) or EC P-256/P-384", MinRSABits, MaxRSABits)
}
