package main

import (
	"time"

	"github.com/portvakt/portvakt/internal/config"
	"github.com/portvakt/portvakt/pkg/dpop"
)

// dpopParts builds the token endpoint's DPoP proof verifier and, when the
// config requires nonces, the nonces it checks and hands out.
func dpopParts(cfg *config.Config, now func() time.Time) (*dpop.Verifier, *dpop.Nonces, error) {
	var nonces *dpop.Nonces
	if d := cfg.DPoP; d.RequireNonce {
		var secret []byte
		if d.NonceSecret != "" {
			secret = []byte(d.NonceSecret)
		}
		var err error
		if nonces, err = dpop.NewNonces(secret, d.NonceLifetime, now); err != nil {
			return nil, nil, err
		}
	}
	v, err := dpop.NewVerifier(dpop.VerifierConfig{
		MaxAge: cfg.DPoP.ProofMaxAge, Leeway: cfg.Token.ClockSkew, Nonces: nonces, Now: now,
	})
	if err != nil {
		return nil, nil, err
	}
	return v, nonces, nil
}
