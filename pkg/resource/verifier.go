package resource

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portvakt/portvakt/pkg/jwa"
	"github.com/portvakt/portvakt/pkg/mtls"
)

const (
	defaultLeeway = 5 * time.Second
	maxTokenBytes = 64 << 10
)

// VerifierConfig configures a Verifier. Every field but Issuer works at its
// zero value.
type VerifierConfig struct {
	// Issuer is the expected iss, compared as an exact string, and the base
	// of metadata discovery ({issuer}.well-known/oauth-authorization-server).
	Issuer string
	// KeySet, when set, is where the keys come from: no discovery and no
	// fetching (JWKSURL, HTTPClient, RefreshInterval and MinRefreshInterval
	// must then be unset). By default the Verifier makes a RemoteKeySet of
	// the issuer's published keys.
	KeySet KeySet
	// JWKSURL skips discovery when set.
	JWKSURL string
	// Audience, when set, must be one of the token's aud values (the
	// resource indicator the consumer asked for).
	Audience string
	// HTTPClient fetches metadata and keys (default: a client with a 30 s
	// timeout).
	HTTPClient *http.Client
	// Leeway is the clock skew allowed on exp, nbf and iat. Zero means the
	// default, 5 s; for none at all, set NoLeeway instead.
	Leeway time.Duration
	// NoLeeway allows no clock skew: a token is refused from the instant its
	// exp names, and so is one whose nbf or iat is later than now. Leeway
	// must then be zero. It is for a verifier that shares its clock with the
	// issuer (portvakt checking its own tokens); across machines, clock skew
	// makes fresh tokens fail now and then.
	NoLeeway bool
	// RefreshInterval is how old the key set may get before it is fetched
	// again (default 5 min).
	RefreshInterval time.Duration
	// MinRefreshInterval limits refreshes caused by unknown kids, and retries
	// after a failed refresh (default 10 s).
	MinRefreshInterval time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// DPoP configures the checks of DPoP-bound tokens (see DPoPConfig).
	DPoP DPoPConfig
	// MTLS says where the client certificate of a certificate-bound token
	// is found (see MTLSConfig).
	MTLS MTLSConfig
	// Log, when set, gets one line per request the middleware refuses:
	// the status, the error code and the whole error, cause included
	// (TokenError.Cause), which the client never sees. Nil logs nothing.
	Log *slog.Logger
}

// Verifier checks access tokens. It is safe for concurrent use.
type Verifier struct {
	cfg    VerifierConfig
	keys   KeySet
	parser *jwt.Parser
	dpop   *dpopChecker
	certs  *mtls.Source
}

// NewVerifier validates cfg and, unless cfg.KeySet is given, discovers the
// JWKS URL (unless given) and fetches the key set once, so a wrong issuer or
// an unreachable server shows at start-up.
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
	if cfg.NoLeeway && cfg.Leeway != 0 {
		errs = append(errs, errors.New("NoLeeway and a Leeway contradict each other: set one"))
	}
	if cfg.KeySet != nil && (cfg.JWKSURL != "" || cfg.HTTPClient != nil || cfg.RefreshInterval != 0 || cfg.MinRefreshInterval != 0) {
		errs = append(errs, errors.New("KeySet replaces JWKSURL, HTTPClient, RefreshInterval and MinRefreshInterval: set one or the others"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("resource: invalid config: %w", err)
	}
	switch {
	case cfg.NoLeeway:
		cfg.Leeway = 0
	case cfg.Leeway == 0:
		cfg.Leeway = defaultLeeway
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	dc, err := newDPoPChecker(cfg.DPoP, cfg.Leeway, cfg.Now)
	if err != nil {
		return nil, fmt.Errorf("resource: invalid config: %w", err)
	}
	certs, err := mtls.NewSource(mtls.SourceConfig{ProxyHeader: cfg.MTLS.ProxyHeader, TrustedProxies: cfg.MTLS.TrustedProxies})
	if err != nil {
		return nil, fmt.Errorf("resource: invalid config: MTLS: %w", err)
	}
	v := &Verifier{cfg: cfg, keys: cfg.KeySet, dpop: dc, certs: certs}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(jwa.Algorithms()),
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
	if v.keys == nil {
		hc := cfg.HTTPClient
		if hc == nil {
			hc = &http.Client{Timeout: httpTimeout}
		}
		jwksURL := cfg.JWKSURL
		if jwksURL == "" {
			u, err := discover(ctx, hc, cfg.Issuer)
			if err != nil {
				return nil, err
			}
			jwksURL = u
		}
		keys, err := NewRemoteKeySet(ctx, RemoteKeySetConfig{
			JWKSURL: jwksURL, HTTPClient: hc, Now: cfg.Now,
			RefreshInterval: cfg.RefreshInterval, MinRefreshInterval: cfg.MinRefreshInterval,
		})
		if err != nil {
			return nil, err
		}
		v.keys = keys
	}
	return v, nil
}

// Verify checks a bearer token and returns its claims. A token that fails is
// a *TokenError (errors.Is(err, ErrInvalidToken) holds, and
// errors.Is(err, ErrTokenExpired) too when it has expired) whose Description
// can be shown to the caller. A token bound to a key (cnf) is refused: it is
// only good with proof of that key (VerifyDPoP for a DPoP key, VerifyBearer
// with the request for a client certificate).
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	return v.VerifyBearer(ctx, token, nil)
}

// VerifyBearer checks a token sent as "Authorization: Bearer" with r: a
// token as Verify does and, when the token is bound to a client
// certificate (cnf.x5t#S256, RFC 8705 section 3), that r came with that
// certificate, on its TLS connection or in a trusted proxy's header
// (VerifierConfig.MTLS); with no r (Verify) such a token is refused. A
// DPoP-bound token is refused: it needs its proof (VerifyDPoP). Errors are
// *TokenError.
func (v *Verifier) VerifyBearer(ctx context.Context, token string, r *http.Request) (*Claims, error) {
	c, err := v.verify(ctx, token)
	if err != nil {
		return nil, err
	}
	if c.JKT != "" {
		return nil, invalid("the token is bound to a key: send it with Authorization: DPoP and a DPoP proof", nil)
	}
	if c.X5T != "" {
		if r == nil {
			return nil, invalid("the token is bound to a client certificate: it is only good with the request that carries it", nil)
		}
		if err := v.checkCertificate(r, c.X5T); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// verify checks token, bound or not.
func (v *Verifier) verify(ctx context.Context, token string) (*Claims, error) {
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
	if !jwa.Allowed(hdr.Alg) {
		return invalid("signature algorithm not allowed", nil)
	}
	return nil
}

// keyFor checks the header and finds the key named by kid. The token's alg
// must be the key's own when the key set names one, and must fit the key.
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
	k, err := v.keys.LookupKey(ctx, kid)
	if err != nil {
		return nil, invalid("unknown signing key (kid)", err)
	}
	alg := t.Method.Alg()
	if (k.Alg != "" && k.Alg != alg) || !jwa.Fits(alg, k.Key) {
		return nil, invalid("algorithm does not match the key", nil)
	}
	return k.Key, nil
}

// discover reads the issuer's RFC 8414 metadata for its jwks_uri.
func discover(ctx context.Context, hc *http.Client, issuer string) (string, error) {
	mu := issuer + ".well-known/oauth-authorization-server"
	if !strings.HasSuffix(issuer, "/") {
		mu = issuer + "/.well-known/oauth-authorization-server"
	}
	body, err := get200(ctx, hc, mu)
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
	if md.Issuer != issuer {
		return "", fmt.Errorf("resource: discovery: metadata issuer %q is not the configured %q", md.Issuer, issuer)
	}
	if md.JWKSURI == "" {
		return "", fmt.Errorf("resource: discovery: %s has no jwks_uri", mu)
	}
	return md.JWKSURI, nil
}
