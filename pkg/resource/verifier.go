package resource

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"
)

// allowedAlgs is the allow-list of token signature algorithms, unexported so
// no caller can widen it.
var allowedAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384"}

const (
	defaultLeeway             = 5 * time.Second
	defaultRefreshInterval    = 5 * time.Minute
	defaultMinRefreshInterval = 10 * time.Second
	httpTimeout               = 30 * time.Second
	maxBodyBytes              = 1 << 20
	maxTokenBytes             = 64 << 10
)

// VerifierConfig configures a Verifier. Every field but Issuer works at its
// zero value.
type VerifierConfig struct {
	// Issuer is the expected iss, compared as an exact string, and the base
	// of metadata discovery ({issuer}.well-known/oauth-authorization-server).
	Issuer string
	// JWKSURL skips discovery when set.
	JWKSURL string
	// Audience, when set, must be one of the token's aud values (the
	// resource indicator the consumer asked for).
	Audience string
	// HTTPClient fetches metadata and keys (default: a client with a 30 s
	// timeout).
	HTTPClient *http.Client
	// Leeway is the clock skew allowed on exp, nbf and iat (default 5 s).
	Leeway time.Duration
	// RefreshInterval is how old the key set may get before it is fetched
	// again (default 5 min).
	RefreshInterval time.Duration
	// MinRefreshInterval limits refreshes caused by unknown kids, and retries
	// after a failed refresh (default 10 s).
	MinRefreshInterval time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Verifier checks access tokens. It is safe for concurrent use.
type Verifier struct {
	cfg     VerifierConfig
	hc      *http.Client
	jwksURL string
	parser  *jwt.Parser
	limiter *rate.Limiter
	sf      singleflight.Group

	mu          sync.RWMutex
	keys        map[string]publicKey
	fetchedAt   time.Time
	lastAttempt time.Time
}

type publicKey struct {
	key any // *rsa.PublicKey or *ecdsa.PublicKey
	alg string
}

// NewVerifier validates cfg, discovers the JWKS URL unless given, and fetches
// the key set once, so a wrong issuer or an unreachable server shows at
// start-up.
func NewVerifier(ctx context.Context, cfg VerifierConfig) (*Verifier, error) {
	var errs []error
	if u, err := url.Parse(cfg.Issuer); cfg.Issuer == "" || err != nil || u.Scheme == "" || u.Host == "" {
		errs = append(errs, fmt.Errorf("Issuer %q is not an absolute URL", cfg.Issuer))
	}
	if cfg.JWKSURL != "" {
		if u, err := url.Parse(cfg.JWKSURL); err != nil || u.Scheme == "" || u.Host == "" {
			errs = append(errs, fmt.Errorf("JWKSURL %q is not an absolute URL", cfg.JWKSURL))
		}
	}
	if cfg.Leeway < 0 || cfg.RefreshInterval < 0 || cfg.MinRefreshInterval < 0 {
		errs = append(errs, errors.New("Leeway, RefreshInterval and MinRefreshInterval must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("resource: invalid config: %w", err)
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = defaultLeeway
	}
	if cfg.RefreshInterval == 0 {
		cfg.RefreshInterval = defaultRefreshInterval
	}
	if cfg.MinRefreshInterval == 0 {
		cfg.MinRefreshInterval = defaultMinRefreshInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	v := &Verifier{
		cfg:     cfg,
		hc:      cfg.HTTPClient,
		jwksURL: cfg.JWKSURL,
		limiter: rate.NewLimiter(rate.Every(cfg.MinRefreshInterval), 1),
	}
	if v.hc == nil {
		v.hc = &http.Client{Timeout: httpTimeout}
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(allowedAlgs),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	if v.jwksURL == "" {
		u, err := v.discover(ctx)
		if err != nil {
			return nil, err
		}
		v.jwksURL = u
	}
	if err := v.refresh(ctx); err != nil {
		return nil, err
	}
	return v, nil
}

// Verify checks token and returns its claims. A token that fails is a
// *TokenError (errors.Is(err, ErrInvalidToken) holds) whose Description can
// be shown to the caller.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	if token == "" {
		return nil, invalid("no token", nil)
	}
	if len(token) > maxTokenBytes {
		return nil, invalid("token too large", nil)
	}
	if err := checkAlg(token); err != nil {
		return nil, err
	}
	mc := jwt.MapClaims{}
	_, err := v.parser.ParseWithClaims(token, mc, func(t *jwt.Token) (any, error) {
		return v.keyFor(ctx, t)
	})
	if err != nil {
		return nil, describe(err)
	}
	c, err := claimsFrom(mc)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// checkAlg refuses a header whose alg is off the allow-list before anything
// else, so "none" and HMAC get a description that says so.
func checkAlg(token string) error {
	h, _, ok := strings.Cut(token, ".")
	if !ok {
		return invalid("malformed token", nil)
	}
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return invalid("malformed token", err)
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(b, &hdr); err != nil {
		return invalid("malformed token", err)
	}
	if !slices.Contains(allowedAlgs, hdr.Alg) {
		return invalid("signature algorithm not allowed", nil)
	}
	return nil
}

// keyFor checks the header and finds the key named by kid.
func (v *Verifier) keyFor(ctx context.Context, t *jwt.Token) (any, error) {
	typ, _ := t.Header["typ"].(string)
	typ = strings.ToLower(typ)
	if typ != "at+jwt" && typ != "application/at+jwt" {
		return nil, invalid(`header typ is not "at+jwt"`, nil)
	}
	kid, _ := t.Header["kid"].(string)
	if kid == "" {
		return nil, invalid("header has no kid", nil)
	}
	k, ok := v.lookup(ctx, kid)
	if !ok {
		return nil, invalid("unknown signing key (kid)", nil)
	}
	alg := t.Method.Alg()
	if k.alg != "" && k.alg != alg {
		return nil, invalid("algorithm does not match the key", nil)
	}
	if !keyFits(k.key, alg) {
		return nil, invalid("algorithm does not match the key", nil)
	}
	return k.key, nil
}

func keyFits(key any, alg string) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return (alg[0] == 'R' || alg[0] == 'P') && k.N.BitLen() >= 2048
	case *ecdsa.PublicKey:
		return alg == "ES256" && k.Curve == elliptic.P256() || alg == "ES384" && k.Curve == elliptic.P384()
	}
	return false
}

// lookup finds kid, refreshing a stale key set first and, for an unknown
// kid, once more under the rate limit.
func (v *Verifier) lookup(ctx context.Context, kid string) (publicKey, bool) {
	now := v.cfg.Now()
	v.mu.RLock()
	stale := !now.Before(v.fetchedAt.Add(v.cfg.RefreshInterval)) &&
		!now.Before(v.lastAttempt.Add(v.cfg.MinRefreshInterval))
	v.mu.RUnlock()
	refreshed := false
	if stale {
		// A failed refresh keeps the old keys: they are still the best we have.
		refreshed = v.shared(ctx, "periodic", func(ctx context.Context) error { return v.refresh(ctx) }) == nil
	}
	if k, ok := v.get(kid); ok {
		return k, true
	}
	if refreshed {
		return publicKey{}, false
	}
	err := v.shared(ctx, "unknown-kid", func(ctx context.Context) error {
		if !v.limiter.AllowN(v.cfg.Now(), 1) {
			return errRateLimited
		}
		return v.refresh(ctx)
	})
	if err != nil {
		return publicKey{}, false
	}
	return v.get(kid)
}

var errRateLimited = errors.New("resource: key refresh rate-limited")

func (v *Verifier) get(kid string) (publicKey, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	k, ok := v.keys[kid]
	return k, ok
}

// shared runs f once for all concurrent callers with the same name. f gets a
// context detached from any one caller, so one caller giving up does not fail
// the rest.
func (v *Verifier) shared(ctx context.Context, name string, f func(context.Context) error) error {
	ch := v.sf.DoChan(name, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), httpTimeout)
		defer cancel()
		return nil, f(fctx)
	})
	select {
	case r := <-ch:
		return r.Err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// refresh fetches the key set and replaces the cache.
func (v *Verifier) refresh(ctx context.Context) error {
	v.mu.Lock()
	v.lastAttempt = v.cfg.Now()
	v.mu.Unlock()
	body, err := v.get200(ctx, v.jwksURL)
	if err != nil {
		return fmt.Errorf("resource: JWKS: %w", err)
	}
	keys, err := parseJWKS(body)
	if err != nil {
		return fmt.Errorf("resource: JWKS %s: %w", v.jwksURL, err)
	}
	v.mu.Lock()
	v.keys, v.fetchedAt = keys, v.cfg.Now()
	v.mu.Unlock()
	return nil
}

// parseJWKS reads the signing keys. Each key is parsed on its own: one key of
// a type this package does not know must not hide the others. Keys with
// private material, symmetric keys and keys for encryption are skipped.
func parseJWKS(body []byte) (map[string]publicKey, error) {
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, err
	}
	keys := map[string]publicKey{}
	for _, r := range raw.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(r); err != nil {
			continue
		}
		if k.KeyID == "" || !k.IsPublic() || (k.Use != "" && k.Use != "sig") {
			continue
		}
		switch k.Key.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey:
		default:
			continue
		}
		keys[k.KeyID] = publicKey{key: k.Key, alg: k.Algorithm}
	}
	return keys, nil
}

func (v *Verifier) discover(ctx context.Context) (string, error) {
	mu := v.cfg.Issuer + ".well-known/oauth-authorization-server"
	if !strings.HasSuffix(v.cfg.Issuer, "/") {
		mu = v.cfg.Issuer + "/.well-known/oauth-authorization-server"
	}
	body, err := v.get200(ctx, mu)
	if err != nil {
		return "", fmt.Errorf("resource: discovery: %w", err)
	}
	var md struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &md); err != nil {
		return "", fmt.Errorf("resource: discovery: %s: %w", mu, err)
	}
	// RFC 8414 section 3.3.
	if md.Issuer != v.cfg.Issuer {
		return "", fmt.Errorf("resource: discovery: metadata issuer %q is not the configured %q", md.Issuer, v.cfg.Issuer)
	}
	if md.JWKSURI == "" {
		return "", fmt.Errorf("resource: discovery: %s has no jwks_uri", mu)
	}
	return md.JWKSURI, nil
}

func (v *Verifier) get200(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %d", u, resp.StatusCode)
	}
	return body, nil
}
