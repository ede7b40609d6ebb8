package entcert

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
)

// Bounds of one trust file (roots or intermediates), checked before it is
// parsed. A national set of enterprise CAs is a dozen certificates and tens
// of KiB; even a whole web PKI bundle (which does not belong here) stays
// under both.
const (
	MaxTrustFileBytes        = 1 << 20
	MaxTrustFileCertificates = 500
)

// TrustFileError is a trust file that cannot be used: missing, too large, or
// holding something other than PEM certificates. Error names the file and,
// when one is at fault, the PEM block.
type TrustFileError struct {
	File string
	// Block is the 1-based number of the PEM block at fault; 0 when the
	// fault is the file's as a whole.
	Block int
	// Problem says what is wrong, for the operator.
	Problem string
	// Err is the underlying error, if any (os, x509).
	Err error
}

func (e *TrustFileError) Error() string {
	msg := "trust file " + e.File
	if e.Block > 0 {
		msg += fmt.Sprintf(": PEM block %d", e.Block)
	}
	msg += ": " + e.Problem
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *TrustFileError) Unwrap() error { return e.Err }

// ReadCertificateFiles reads every certificate of every file, in order. It
// reads all files even after a bad one, so that the error lists each
// missing or bad file (errors.Join of *TrustFileError).
func ReadCertificateFiles(paths []string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	var errs []error
	for _, p := range paths {
		certs, err := ReadCertificateFile(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, certs...)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// ReadCertificateFile reads a PEM file of certificates of at most
// MaxTrustFileBytes (see ParseCertificatesPEM).
func ReadCertificateFile(path string) ([]*x509.Certificate, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &TrustFileError{File: path, Problem: "cannot be read", Err: errors.Unwrap(err)}
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > MaxTrustFileBytes {
		return nil, &TrustFileError{File: path, Problem: fmt.Sprintf("is %d bytes, over the limit of %d", fi.Size(), MaxTrustFileBytes)}
	}
	// The limit holds for what is read, whatever Stat said (a file that
	// grows, a device).
	b, err := io.ReadAll(io.LimitReader(f, MaxTrustFileBytes+1))
	if err != nil {
		return nil, &TrustFileError{File: path, Problem: "cannot be read", Err: err}
	}
	if len(b) > MaxTrustFileBytes {
		return nil, &TrustFileError{File: path, Problem: fmt.Sprintf("is over the limit of %d bytes", MaxTrustFileBytes)}
	}
	return ParseCertificatesPEM(path, b)
}

var pemBegin = []byte("-----BEGIN")

// ParseCertificatesPEM parses the certificates of a PEM trust file; name is
// the file's name for errors. Text between blocks is allowed (bundles carry
// comments); every block must be a CERTIFICATE without PEM headers that
// parses, a damaged or unterminated block is an error rather than skipped,
// and there must be between one and MaxTrustFileCertificates certificates.
// A private key sent by mistake is refused by its type, and never quoted.
func ParseCertificatesPEM(name string, data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := data
	for n := 1; ; n++ {
		i := bytes.Index(rest, pemBegin)
		if i < 0 {
			break
		}
		if n > MaxTrustFileCertificates {
			return nil, &TrustFileError{File: name, Problem: fmt.Sprintf("holds more than %d PEM blocks", MaxTrustFileCertificates)}
		}
		block, after := pem.Decode(rest[i:])
		// pem.Decode skips a damaged block and returns the next one: the
		// part it consumed must hold exactly one BEGIN line.
		if block == nil || bytes.Count(rest[i:len(rest)-len(after)], pemBegin) != 1 {
			return nil, &TrustFileError{File: name, Block: n, Problem: "is not valid PEM (no matching END line, or damaged base64)"}
		}
		rest = after
		if block.Type != "CERTIFICATE" {
			return nil, &TrustFileError{File: name, Block: n, Problem: fmt.Sprintf("is a %q block; a trust file holds only CERTIFICATE blocks", block.Type)}
		}
		if len(block.Headers) > 0 {
			return nil, &TrustFileError{File: name, Block: n, Problem: "has PEM headers; a CERTIFICATE block has none"}
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, &TrustFileError{File: name, Block: n, Problem: "is not a valid X.509 certificate", Err: err}
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, &TrustFileError{File: name, Problem: "holds no PEM certificate"}
	}
	return out, nil
}
