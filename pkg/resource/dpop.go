package resource

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/portvakt/portvakt/pkg/dpop"
)

// DPoPConfig configures the checks of DPoP-bound tokens (RFC 9449). A token
// whose cnf names a DPoP key (jkt) is accepted only with "Authorization:
// DPoP <token>" and one DPoP proof made by that key for this request. Every
// field works at its zero value, but PublicURL (or URLFromForwardedHeaders)
// is needed to accept DPoP at all: without it, bound tokens are refused.
type DPoPConfig struct {
	// PublicURL is the scheme, host and optional path prefix by which
	// clients reach this server, e.g. "https://api.example.no". A proof's
	// htu must be PublicURL followed by the request's path. It is never
	// read from the request: a proof made for another server must not
	// pass here because a client sent that server's Host.
	PublicURL string
	// URLFromForwardedHeaders builds the URL from X-Forwarded-Proto and
	// X-Forwarded-Host (falling back to the Host header) when PublicURL is
	// empty. Only set it behind a proxy that always overwrites both
	// headers; otherwise any client chooses what htu must match.
	URLFromForwardedHeaders bool
	// Algorithms narrows the proof algorithms (default: package jwa's
	// list); they are the algs of the DPoP challenge.
	Algorithms []string
	// MaxAge is how old a proof's iat may be, on top of the Verifier's
	// Leeway (default 60 s).
	MaxAge time.Duration
	// Nonces, when set, makes every proof carry one of these nonces
	// (DPoP-Nonce, use_dpop_nonce).
	Nonces *dpop.Nonces
	// ReplayCacheSize bounds the proofs remembered for their single-use
	// check (default 100000). The cache is in memory, per Verifier: a proof
	// is good for one request URL, carries the hash of its token and lives
	// about a minute, so a replay to another replica would need the stolen
	// token and proof within that minute; a deployment that needs more
	// requires nonces or shares no replicas. When full, new proofs are
	// refused until old ones expire.
	ReplayCacheSize int
}

// dpopChecker is the Verifier's DPoP part.
type dpopChecker struct {
	cfg    DPoPConfig
	proofs *dpop.Verifier
	replay *dpop.ReplayCache
	algs   string
}

func newDPoPChecker(cfg DPoPConfig, leeway time.Duration, now func() time.Time) (*dpopChecker, error) {
	if cfg.PublicURL != "" {
		u, err := url.Parse(cfg.PublicURL)
		if err != nil || !u.IsAbs() || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("DPoP.PublicURL %q is not an absolute URL without query and fragment", cfg.PublicURL)
		}
		cfg.PublicURL = strings.TrimSuffix(cfg.PublicURL, "/")
	}
	if cfg.ReplayCacheSize < 0 {
		return nil, errors.New("DPoP.ReplayCacheSize must not be negative")
	}
	v, err := dpop.NewVerifier(dpop.VerifierConfig{Algorithms: cfg.Algorithms, MaxAge: cfg.MaxAge, Leeway: max(leeway, time.Second), Nonces: cfg.Nonces, Now: now})
	if err != nil {
		return nil, err
	}
	return &dpopChecker{cfg: cfg, proofs: v, replay: dpop.NewReplayCache(cfg.ReplayCacheSize, now), algs: strings.Join(v.Algorithms(), " ")}, nil
}

// enabled reports whether DPoP requests can be checked at all.
func (d *dpopChecker) enabled() bool { return d.cfg.PublicURL != "" || d.cfg.URLFromForwardedHeaders }

// requestURL is the htu a proof for r must carry.
func (d *dpopChecker) requestURL(r *http.Request) (string, error) {
	path := r.URL.EscapedPath()
	if d.cfg.PublicURL != "" {
		return d.cfg.PublicURL + path, nil
	}
	if !d.cfg.URLFromForwardedHeaders {
		return "", errors.New("resource: DPoP is not configured (DPoPConfig.PublicURL)")
	}
	proto := firstValue(r.Header.Get("X-Forwarded-Proto"))
	host := firstValue(r.Header.Get("X-Forwarded-Host"))
	if host == "" {
		host = r.Host
	}
	if proto == "" {
		proto = "http"
		if r.TLS != nil {
			proto = "https"
		}
	}
	return proto + "://" + host + path, nil
}

func firstValue(h string) string {
	v, _, _ := strings.Cut(h, ",")
	return strings.TrimSpace(v)
}

// VerifyDPoP checks a token presented with "Authorization: DPoP" and the
// request's one DPoP proof: the token as Verify does, then that it is bound
// to a DPoP key (cnf.jkt), then the proof (RFC 9449 section 4.3, with htm
// the request's method, htu the request's URL under DPoPConfig.PublicURL
// and ath the token's hash), made by that key and not seen before, and,
// for a token bound to a client certificate as well, that certificate
// (see VerifyBearer). A token
// that fails is a *TokenError; a proof that fails is a *dpop.Error
// (errors.Is(err, dpop.ErrUseNonce) when only the nonce was wrong).
func (v *Verifier) VerifyDPoP(ctx context.Context, token, proof string, r *http.Request) (*Claims, error) {
	if !v.dpop.enabled() {
		return nil, invalid("this server does not accept DPoP-bound tokens", errors.New("resource: DPoPConfig.PublicURL is not set"))
	}
	c, err := v.verify(ctx, token)
	if err != nil {
		return nil, err
	}
	if c.JKT == "" {
		return nil, invalid("the token is not DPoP-bound: send it as a Bearer token", nil)
	}
	u, err := v.dpop.requestURL(r)
	if err != nil {
		return nil, err
	}
	p, err := v.dpop.proofs.Verify(proof, dpop.Request{Method: r.Method, URL: u, AccessToken: token})
	if err != nil {
		return nil, err
	}
	if p.JKT != c.JKT {
		return nil, &dpop.Error{Description: "The DPoP proof is made by another key than the one the token is bound to"}
	}
	if err := v.dpop.replay.Use(p); err != nil {
		return nil, err
	}
	if c.X5T != "" {
		// Bound to a certificate too: both must be shown.
		if err := v.checkCertificate(r, c.X5T); err != nil {
			return nil, err
		}
	}
	return c, nil
}
