package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"

	"golang.org/x/oauth2"
)

// maxFileBytes bounds a key, certificate or PKCS#12 file read from disk.
const maxFileBytes = 1 << 20

// hasFiles reports whether any signing-file field is set.
func (cfg *Config) hasFiles() bool {
	return cfg.CertFile != "" || cfg.KeyFile != "" || cfg.PKCS12File != "" || cfg.PKCS12Password != "" || cfg.KeyID != ""
}

// validateFiles checks that Signer or exactly one kind of signing file is
// set: CertFile and KeyFile, PKCS12File (and PKCS12Password), or KeyFile and
// KeyID.
func (cfg *Config) validateFiles() []error {
	if cfg.Signer.valid() {
		if cfg.hasFiles() {
			return []error{errors.New("Signer and the file fields (CertFile, KeyFile, PKCS12File, KeyID) are both set: use one")}
		}
		return nil
	}
	if !cfg.hasFiles() {
		return []error{errors.New("no signing key: set CertFile and KeyFile (PEM), PKCS12File and PKCS12Password, KeyFile and KeyID, or Signer")}
	}
	var errs []error
	switch {
	case cfg.PKCS12File != "":
		if cfg.CertFile != "" || cfg.KeyFile != "" {
			errs = append(errs, errors.New("PKCS12File holds the certificate and key: leave CertFile and KeyFile empty"))
		}
		if cfg.KeyID != "" {
			errs = append(errs, errors.New("KeyID is for a registered key (KeyFile), not a certificate in PKCS12File"))
		}
	case cfg.CertFile != "":
		if cfg.KeyFile == "" {
			errs = append(errs, errors.New("CertFile needs KeyFile, the certificate's private key"))
		}
		if cfg.KeyID != "" {
			errs = append(errs, errors.New("CertFile and KeyID are both set: a certificate client sends its chain (x5c), a registered key its KeyID (kid); set one"))
		}
	case cfg.KeyFile != "":
		if cfg.KeyID == "" {
			errs = append(errs, errors.New("KeyFile needs CertFile (an enterprise certificate) or KeyID (the kid of a registered key)"))
		}
	default:
		errs = append(errs, errors.New("KeyID needs KeyFile, the registered key's private half"))
	}
	if cfg.PKCS12Password != "" && cfg.PKCS12File == "" {
		errs = append(errs, errors.New("PKCS12Password is set without PKCS12File"))
	}
	return errs
}

// loadSigner reads the signing files into a Signer (validateFiles passed).
func (cfg *Config) loadSigner() (Signer, error) {
	switch {
	case cfg.PKCS12File != "":
		b, err := readFile("PKCS12File", cfg.PKCS12File)
		if err != nil {
			return Signer{}, err
		}
		key, chain, err := LoadPKCS12(b, cfg.PKCS12Password)
		if err != nil {
			return Signer{}, fmt.Errorf("%w (PKCS12File %s)", err, cfg.PKCS12File)
		}
		return CertificateSigner(key, chain)
	case cfg.CertFile != "":
		cert, err := readFile("CertFile", cfg.CertFile)
		if err != nil {
			return Signer{}, err
		}
		keyPEM, err := readFile("KeyFile", cfg.KeyFile)
		if err != nil {
			return Signer{}, err
		}
		key, chain, err := LoadPEM(cert, keyPEM)
		if err != nil {
			return Signer{}, fmt.Errorf("%w (CertFile %s, KeyFile %s)", err, cfg.CertFile, cfg.KeyFile)
		}
		return CertificateSigner(key, chain)
	default:
		keyPEM, err := readFile("KeyFile", cfg.KeyFile)
		if err != nil {
			return Signer{}, err
		}
		key, err := LoadPrivateKeyPEM(keyPEM)
		if err != nil {
			return Signer{}, fmt.Errorf("%w (KeyFile %s)", err, cfg.KeyFile)
		}
		return KeySigner(key, cfg.KeyID)
	}
}

func readFile(field, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("client: %s: %w", field, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("client: %s: %w", field, err)
	}
	if len(b) > maxFileBytes {
		return nil, fmt.Errorf("client: %s: %s is larger than %d bytes", field, path, maxFileBytes)
	}
	return b, nil
}

// TokenSource returns an oauth2.TokenSource for this Config: the signing
// files are read, the token endpoint is discovered from Issuer, and tokens
// are cached until shortly before they expire. It never fails itself, as in
// golang.org/x/oauth2: a problem with the Config or its files is returned by
// every Token call. ctx is the context of those calls and may carry an
// oauth2.HTTPClient.
func (cfg *Config) TokenSource(ctx context.Context) oauth2.TokenSource {
	ts, err := NewTokenSource(ctx, *cfg)
	if err != nil {
		return errorSource{err}
	}
	return ts
}

// Client returns an *http.Client that adds a token from cfg.TokenSource to
// every request. Its transport wraps that of the oauth2.HTTPClient in ctx,
// else that of HTTPClient, else http.DefaultTransport; its timeout is
// HTTPClient's.
func (cfg *Config) Client(ctx context.Context) *http.Client {
	var base http.RoundTripper
	hc := cfg.HTTPClient
	if c, ok := ctx.Value(oauth2.HTTPClient).(*http.Client); ok && c != nil {
		base = c.Transport
	} else if hc != nil {
		base = hc.Transport
	}
	var rt http.RoundTripper
	switch src := cfg.TokenSource(ctx).(type) {
	case *TokenSource:
		// Ours: it adds a fresh DPoP proof per request when cfg.DPoP is set,
		// and is a plain Bearer transport otherwise.
		if cfg.MTLS != nil {
			// The transport that presents the client certificate.
			base = src.c.httpClient.Transport
		}
		rt = &Transport{Source: src, Base: base}
	default:
		rt = &oauth2.Transport{Source: src, Base: base}
	}
	out := &http.Client{Transport: rt}
	if hc != nil {
		out.Timeout = hc.Timeout
	}
	return out
}

// errorSource is a TokenSource whose Config could not be used.
type errorSource struct{ err error }

func (e errorSource) Token() (*oauth2.Token, error) { return nil, e.err }
