package config

import "time"

// DPoP tunes DPoP (RFC 9449) at the token endpoint, under dpop. Every
// field works at its zero value: proofs accepted without nonces, iat at
// most 60 s old.
type DPoP struct {
	// RequireNonce makes every proof carry a nonce from this server
	// (DPoP-Nonce, use_dpop_nonce). Nonces are stateless: an HMAC of a
	// time window under NonceSecret, valid in their window and the next.
	RequireNonce bool `mapstructure:"require_nonce"`
	// NonceSecret is the HMAC key of the nonces, at least 32 characters;
	// replicas that share it accept each other's nonces. Empty: a random
	// secret per process, fine for one replica (with several, a client
	// retries once per replica it meets). Prefer the environment:
	// PORTVAKT_DPOP_NONCE_SECRET.
	NonceSecret string `mapstructure:"nonce_secret"`
	// NonceLifetime is the nonce window (default 5m).
	NonceLifetime time.Duration `mapstructure:"nonce_lifetime"`
	// ProofMaxAge is how old a proof's iat may be, on top of
	// token.clock_skew (default 60s); its jti is remembered that long.
	ProofMaxAge time.Duration `mapstructure:"proof_max_age"`
}

func (d *DPoP) defaults() {
	if d.NonceLifetime == 0 {
		d.NonceLifetime = 5 * time.Minute
	}
	if d.ProofMaxAge == 0 {
		d.ProofMaxAge = 60 * time.Second
	}
}

func (d DPoP) validate(bad func(key, format string, args ...any)) {
	if d.NonceSecret != "" && len(d.NonceSecret) < 32 {
		bad("dpop.nonce_secret", "must have at least 32 characters, got %d", len(d.NonceSecret))
	}
	if d.NonceLifetime < 10*time.Second || d.NonceLifetime > time.Hour {
		bad("dpop.nonce_lifetime", "must be between 10s and 1h, got %s", d.NonceLifetime)
	}
	if d.ProofMaxAge < time.Second || d.ProofMaxAge > 5*time.Minute {
		bad("dpop.proof_max_age", "must be between 1s and 5m, got %s", d.ProofMaxAge)
	}
}
