package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"
)

// GrantType is the RFC 7523 JWT bearer grant, the only one the server serves.
const GrantType = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// MaxAssertionLifetime is the longest exp - iat the server accepts.
const MaxAssertionLifetime = 120 * time.Second

const (
	defaultHTTPTimeout = 30 * time.Second
	maxResponseBytes   = 1 << 20
)

// Config describes a client of the token endpoint. Every field but Issuer,
// ClientID and the signing key (Signer, or the files) works at its zero
// value; TokenSource, Client and NewTokenSource also need Scopes.
type Config struct {
	// Issuer is the server's issuer URL, e.g. "https://auth.example.no/". It is
	// the grant's aud, byte for byte, and the base of metadata discovery
	// ({issuer}.well-known/oauth-authorization-server) when TokenURL is empty.
	Issuer string
	// TokenURL skips discovery when set.
	TokenURL string
	// ClientID is the grant's iss.
	ClientID string
	// Scopes are asked for in this order. NewClient ignores them.
	Scopes []string
	// Resources are RFC 8707 resource indicators: they become the token's aud.
	// NewClient ignores them.
	Resources []string
	// ConsumerOrg is the 9-digit org a vendor acts for (claim consumer_org).
	// NewClient ignores it.
	ConsumerOrg string
	// PID is an optional national identity number copied to the token.
	PID string
	// Signer signs every grant; see CertificateSigner and KeySigner. Leave it
	// unset to sign with the files below instead.
	Signer Signer

	// The signing key from files, one of three ways (each read once, when
	// the TokenSource or Client is made):
	//   - CertFile and KeyFile: an enterprise certificate, PEM (the chain in
	//     any order, or the leaf alone), and its unencrypted private key;
	//   - PKCS12File and PKCS12Password: the certificate, chain and key in a
	//     .p12/.pfx file, as Buypass and Commfides issue them;
	//   - KeyFile and KeyID: a key registered with the client, and its kid.
	CertFile       string
	KeyFile        string
	PKCS12File     string
	PKCS12Password string
	KeyID          string

	// HTTPClient is used for discovery and the token endpoint. When nil, the
	// client from oauth2.HTTPClient in the constructor's context is used, or
	// a client with a 30 s timeout.
	HTTPClient *http.Client
	// RenewBefore is how long before expiry a cached token is replaced. Zero
	// means min(30s, lifetime/4). It is capped at half the token's lifetime so
	// a short-lived token is not fetched on every call.
	RenewBefore time.Duration
	// AssertionLifetime is exp - iat of each grant: default and maximum 120 s.
	AssertionLifetime time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// DPoP, when set, binds every token to a key (see DPoP).
	DPoP *DPoP
	// MTLS, when set, presents a TLS client certificate, which binds every
	// token to it (see MTLS).
	MTLS *MTLS
}

// Client holds what every grant shares (signing material, endpoint, HTTP
// client) and hands out one cached TokenSource per (scopes, resources,
// consumer_org). It is safe for concurrent use.
type Client struct {
	cfg        Config
	ctx        context.Context
	httpClient *http.Client

	discovery singleflight.Group
	mu        sync.Mutex
	tokenURL  string
	sources   map[sourceKey]*TokenSource

	dpopNonces nonceBook // the servers' DPoP nonces
}

type sourceKey struct{ scope, resources, consumerOrg string }

// NewClient validates cfg (reporting every problem at once) and returns a
// Client. No request is made: the token endpoint is discovered on the first
// exchange. ctx is the context of Token calls that do not pass their own, and
// may carry an oauth2.HTTPClient.
func NewClient(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.validate(false); err != nil {
		return nil, err
	}
	if !cfg.Signer.valid() {
		s, err := cfg.loadSigner()
		if err != nil {
			return nil, err
		}
		cfg.Signer = s
	}
	if cfg.AssertionLifetime == 0 {
		cfg.AssertionLifetime = MaxAssertionLifetime
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	d, err := prepareDPoP(cfg.DPoP)
	if err != nil {
		return nil, err
	}
	cfg.DPoP = d
	hc := cfg.HTTPClient
	if hc == nil {
		if c, ok := ctx.Value(oauth2.HTTPClient).(*http.Client); ok && c != nil {
			hc = c
		} else {
			hc = &http.Client{Timeout: defaultHTTPTimeout}
		}
	}
	if cfg.MTLS != nil {
		cert, err := cfg.MTLS.certificate(cfg.Signer)
		if err != nil {
			return nil, err
		}
		if hc, err = withClientCertificate(hc, cert); err != nil {
			return nil, err
		}
	}
	return &Client{
		cfg:        cfg,
		ctx:        ctx,
		httpClient: hc,
		tokenURL:   cfg.TokenURL,
		sources:    map[sourceKey]*TokenSource{},
	}, nil
}

// NewTokenSource validates cfg and returns the TokenSource for cfg.Scopes,
// cfg.Resources and cfg.ConsumerOrg. ctx is used by Token, which has none of
// its own; TokenContext takes the caller's.
func NewTokenSource(ctx context.Context, cfg Config) (*TokenSource, error) {
	if err := cfg.validate(true); err != nil {
		return nil, err
	}
	c, err := NewClient(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return c.Source(cfg.Scopes, cfg.Resources, cfg.ConsumerOrg)
}

// Source returns the cached TokenSource for this combination, making it on
// first use. Scopes are kept in the given order, and order counts in the key
// (the token's scope claim keeps it too).
func (c *Client) Source(scopes, resources []string, consumerOrg string) (*TokenSource, error) {
	if err := errors.Join(validateGrant(scopes, resources, consumerOrg)...); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	k := sourceKey{
		scope:       strings.Join(scopes, " "),
		resources:   strings.Join(resources, "\n"),
		consumerOrg: consumerOrg,
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ts, ok := c.sources[k]; ok {
		return ts, nil
	}
	ts := &TokenSource{
		c:           c,
		scopes:      append([]string(nil), scopes...),
		resources:   append([]string(nil), resources...),
		consumerOrg: consumerOrg,
	}
	c.sources[k] = ts
	return ts, nil
}

func (cfg *Config) validate(needScopes bool) error {
	var errs []error
	if cfg.Issuer == "" {
		errs = append(errs, errors.New("Issuer is empty"))
	} else if u, err := url.Parse(cfg.Issuer); err != nil || u.Scheme == "" || u.Host == "" {
		errs = append(errs, fmt.Errorf("Issuer %q is not an absolute URL", cfg.Issuer))
	} else if !strings.HasSuffix(cfg.Issuer, "/") {
		// The issuer is the grant's aud, compared byte for byte.
		errs = append(errs, fmt.Errorf("Issuer %q has no trailing slash: add one (%s/)", cfg.Issuer, cfg.Issuer))
	}
	if cfg.TokenURL != "" {
		if u, err := url.Parse(cfg.TokenURL); err != nil || u.Scheme == "" || u.Host == "" {
			errs = append(errs, fmt.Errorf("TokenURL %q is not an absolute URL", cfg.TokenURL))
		}
	}
	if cfg.ClientID == "" {
		errs = append(errs, errors.New("ClientID is empty"))
	}
	errs = append(errs, cfg.validateFiles()...)
	errs = append(errs, cfg.MTLS.validate()...)
	if cfg.PID != "" && !allDigits(cfg.PID, 11) {
		errs = append(errs, errors.New("PID must be 11 digits"))
	}
	if cfg.RenewBefore < 0 {
		errs = append(errs, errors.New("RenewBefore is negative"))
	}
	if cfg.AssertionLifetime < 0 || cfg.AssertionLifetime > MaxAssertionLifetime {
		errs = append(errs, fmt.Errorf("AssertionLifetime %s is outside 0..%s", cfg.AssertionLifetime, MaxAssertionLifetime))
	}
	if needScopes {
		errs = append(errs, validateGrant(cfg.Scopes, cfg.Resources, cfg.ConsumerOrg)...)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("client: invalid config: %w", err)
	}
	return nil
}

func validateGrant(scopes, resources []string, consumerOrg string) []error {
	var errs []error
	if len(scopes) == 0 {
		errs = append(errs, errors.New("no scopes"))
	}
	for _, s := range scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n") {
			errs = append(errs, fmt.Errorf("scope %q is empty or holds whitespace", s))
		}
	}
	for _, r := range resources {
		if u, err := url.Parse(r); err != nil || u.Scheme == "" || u.Fragment != "" {
			errs = append(errs, fmt.Errorf("resource %q is not an absolute URI without a fragment", r))
		}
	}
	if consumerOrg != "" && !allDigits(consumerOrg, 9) {
		errs = append(errs, fmt.Errorf("consumer_org %q is not 9 digits", consumerOrg))
	}
	return errs
}

func allDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// tokenEndpoint returns TokenURL, or discovers it once (RFC 8414).
func (c *Client) tokenEndpoint(ctx context.Context) (string, error) {
	c.mu.Lock()
	u := c.tokenURL
	c.mu.Unlock()
	if u != "" {
		return u, nil
	}
	v, err, _ := c.discovery.Do("", func() (any, error) {
		u, err := c.discover(ctx)
		if err != nil {
			return "", err
		}
		c.mu.Lock()
		c.tokenURL = u
		c.mu.Unlock()
		return u, nil
	})
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

// MetadataURL is where the server's RFC 8414 metadata lives for issuer.
func MetadataURL(issuer string) string {
	if strings.HasSuffix(issuer, "/") {
		return issuer + ".well-known/oauth-authorization-server"
	}
	return issuer + "/.well-known/oauth-authorization-server"
}

func (c *Client) discover(ctx context.Context) (string, error) {
	mu := MetadataURL(c.cfg.Issuer)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, mu, nil)
	if err != nil {
		return "", fmt.Errorf("client: discovery: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.httpClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("client: discovery: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return "", fmt.Errorf("client: discovery: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("client: discovery: GET %s: HTTP %d", mu, resp.StatusCode)
	}
	var md struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
	}
	if err := json.Unmarshal(body, &md); err != nil {
		return "", fmt.Errorf("client: discovery: %s: %w", mu, err)
	}
	// RFC 8414 section 3.3: a document naming another issuer must not be used.
	if md.Issuer != c.cfg.Issuer {
		return "", fmt.Errorf("client: discovery: metadata issuer %q is not the configured %q", md.Issuer, c.cfg.Issuer)
	}
	if md.TokenEndpoint == "" {
		return "", fmt.Errorf("client: discovery: %s has no token_endpoint", mu)
	}
	return md.TokenEndpoint, nil
}
