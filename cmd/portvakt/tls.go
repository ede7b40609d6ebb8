package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/portvakt/portvakt/internal/config"
	"github.com/portvakt/portvakt/internal/entcert"
	"github.com/portvakt/portvakt/internal/server"
	"github.com/portvakt/portvakt/pkg/mtls"
)

// certificateParts builds what certificate-bound tokens need: the public
// listener's tls.Config (nil for plain HTTP) and the Source the token
// endpoint finds a request's client certificate with.
func certificateParts(cfg *config.Config, now func() time.Time) (*tls.Config, *mtls.Source, error) {
	src, err := mtls.NewSource(mtls.SourceConfig{ProxyHeader: cfg.TLS.Proxy.Header, TrustedProxies: cfg.TLS.Proxy.Trusted})
	if err != nil {
		return nil, nil, err
	}
	if !cfg.TLS.Served() {
		return nil, src, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.Path(cfg.TLS.CertFile), cfg.Path(cfg.TLS.KeyFile))
	if err != nil {
		return nil, nil, fmt.Errorf("tls.cert_file, tls.key_file: %w", err)
	}
	t := server.TLS{Certificate: cert, ClientAuth: cfg.TLS.ClientAuth, Now: now}
	if t.ClientAuth != server.ClientAuthNone {
		// The client CAs, or by default the enterprise trust roots with
		// their intermediates: the certificate a client signs its grant
		// with binds its tokens too.
		var errs []error
		if len(cfg.TLS.ClientCAFiles) > 0 {
			t.ClientCAs, err = entcert.ReadCertificateFiles(absPaths(cfg, cfg.TLS.ClientCAFiles))
			errs = append(errs, err)
		} else {
			t.ClientCAs, err = entcert.ReadCertificateFiles(absPaths(cfg, cfg.Trust.Roots))
			errs = append(errs, err)
		}
		t.ClientIntermediates, err = entcert.ReadCertificateFiles(absPaths(cfg, cfg.Trust.Intermediates))
		errs = append(errs, err)
		if err := errors.Join(errs...); err != nil {
			return nil, nil, fmt.Errorf("tls: client CAs:\n%w", err)
		}
	}
	tc, err := t.Config()
	if err != nil {
		return nil, nil, err
	}
	return tc, src, nil
}
