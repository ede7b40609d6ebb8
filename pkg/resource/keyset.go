package resource

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/portvakt/portvakt/pkg/jwa"
)

// KeySet is where a Verifier finds the public key a token's kid names.
//
// It is go-oidc's KeySet cut one step shorter: a KeySet only finds keys. The
// Verifier checks the signature, the header and the claims itself, so the
// algorithm rules (the allow-list, the key's own algorithm) are applied in
// one place whatever the keys come from.
//
// RemoteKeySet fetches the issuer's published JWKS over HTTP; StaticKeySet
// holds keys already in memory (portvakt itself verifies its own tokens
// against its signing keys that way).
type KeySet interface {
	// LookupKey returns the key whose kid is kid. An error means the token
	// cannot be verified; errors.Is(err, ErrKeyNotFound) holds when the set
	// does not know kid.
	LookupKey(ctx context.Context, kid string) (PublicKey, error)
}

// ErrKeyNotFound is a KeySet's answer for a kid it does not know.
var ErrKeyNotFound = errors.New("resource: no key with that kid")

// PublicKey is one key of a KeySet.
type PublicKey struct {
	// KID is the key's id, the kid a token names in its header.
	KID string
	// Alg is the one algorithm the key signs with. When empty, any
	// algorithm of the allow-list (package jwa) that fits the key is
	// accepted.
	Alg string
	// Key is an *rsa.PublicKey or an *ecdsa.PublicKey.
	Key crypto.PublicKey
}

// StaticKeySet is a KeySet of keys held in memory: no fetching, no
// refreshing. It is safe for concurrent use.
type StaticKeySet struct {
	keys map[string]PublicKey
}

// NewStaticKeySet checks keys and returns them as a KeySet. Every key needs a
// kid of its own, and an algorithm on the allow-list that fits it: its Alg,
// or, with no Alg, at least one.
func NewStaticKeySet(keys ...PublicKey) (*StaticKeySet, error) {
	s := &StaticKeySet{keys: make(map[string]PublicKey, len(keys))}
	var errs []error
	for i, k := range keys {
		_, taken := s.keys[k.KID]
		switch {
		case k.KID == "":
			errs = append(errs, fmt.Errorf("key %d has no kid", i))
		case taken:
			errs = append(errs, fmt.Errorf("key %d: kid %q is taken", i, k.KID))
		case k.Alg != "" && !jwa.Allowed(k.Alg):
			errs = append(errs, fmt.Errorf("key %q: algorithm %q is not allowed", k.KID, k.Alg))
		case k.Alg != "" && !jwa.Fits(k.Alg, k.Key):
			errs = append(errs, fmt.Errorf("key %q: a %T does not fit %s", k.KID, k.Key, k.Alg))
		case len(jwa.ForKey(k.Key)) == 0:
			errs = append(errs, fmt.Errorf("key %q: %T fits no allowed algorithm", k.KID, k.Key))
		default:
			s.keys[k.KID] = k
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("resource: static key set: %w", err)
	}
	return s, nil
}

// LookupKey implements KeySet.
func (s *StaticKeySet) LookupKey(_ context.Context, kid string) (PublicKey, error) {
	k, ok := s.keys[kid]
	if !ok {
		return PublicKey{}, fmt.Errorf("%w: %q", ErrKeyNotFound, kid)
	}
	return k, nil
}

const (
	defaultRefreshInterval    = 5 * time.Minute
	defaultMinRefreshInterval = 10 * time.Second
	httpTimeout               = 30 * time.Second
	maxBodyBytes              = 1 << 20
)

// RemoteKeySetConfig configures a RemoteKeySet. Every field but JWKSURL
// works at its zero value.
type RemoteKeySetConfig struct {
	// JWKSURL is where the key set is published (the jwks_uri of the
	// issuer's metadata).
	JWKSURL string
	// HTTPClient fetches the keys (default: a client with a 30 s timeout).
	HTTPClient *http.Client
	// RefreshInterval is how old the key set may get before it is fetched
	// again (default 5 min).
	RefreshInterval time.Duration
	// MinRefreshInterval limits refreshes caused by unknown kids, and
	// retries after a failed refresh (default 10 s).
	MinRefreshInterval time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// RemoteKeySet is a KeySet fetched from a JWKS URL and cached. It refreshes
// the set every RefreshInterval and on an unknown kid, at most once per
// MinRefreshInterval, so junk tokens cannot make it hammer the server; a
// failed refresh keeps the keys it had. It is safe for concurrent use.
type RemoteKeySet struct {
	cfg     RemoteKeySetConfig
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

// NewRemoteKeySet validates cfg and fetches the key set once, so a wrong
// URL or an unreachable server shows at start-up.
func NewRemoteKeySet(ctx context.Context, cfg RemoteKeySetConfig) (*RemoteKeySet, error) {
	var errs []error
	if u, err := url.Parse(cfg.JWKSURL); cfg.JWKSURL == "" || err != nil || u.Scheme == "" || u.Host == "" {
		errs = append(errs, fmt.Errorf("JWKSURL %q is not an absolute URL", cfg.JWKSURL))
	}
	if cfg.RefreshInterval < 0 || cfg.MinRefreshInterval < 0 {
		errs = append(errs, errors.New("RefreshInterval and MinRefreshInterval must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("resource: invalid config: %w", err)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: httpTimeout}
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
	s := &RemoteKeySet{cfg: cfg, limiter: rate.NewLimiter(rate.Every(cfg.MinRefreshInterval), 1)}
	if err := s.refresh(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// LookupKey implements KeySet: it finds kid, refreshing a stale key set
// first and, for an unknown kid, once more under the rate limit.
func (s *RemoteKeySet) LookupKey(ctx context.Context, kid string) (PublicKey, error) {
	now := s.cfg.Now()
	s.mu.RLock()
	stale := !now.Before(s.fetchedAt.Add(s.cfg.RefreshInterval)) &&
		!now.Before(s.lastAttempt.Add(s.cfg.MinRefreshInterval))
	s.mu.RUnlock()
	refreshed := false
	if stale {
		// A failed refresh keeps the old keys: they are still the best we have.
		refreshed = s.shared(ctx, "periodic", s.refresh) == nil
	}
	if k, ok := s.get(kid); ok {
		return k, nil
	}
	if refreshed {
		return PublicKey{}, fmt.Errorf("%w: %q", ErrKeyNotFound, kid)
	}
	err := s.shared(ctx, "unknown-kid", func(ctx context.Context) error {
		if !s.limiter.AllowN(s.cfg.Now(), 1) {
			return errRateLimited
		}
		return s.refresh(ctx)
	})
	if err != nil {
		return PublicKey{}, fmt.Errorf("%w: %q (%w)", ErrKeyNotFound, kid, err)
	}
	if k, ok := s.get(kid); ok {
		return k, nil
	}
	return PublicKey{}, fmt.Errorf("%w: %q", ErrKeyNotFound, kid)
}

var errRateLimited = errors.New("resource: key refresh rate-limited")

func (s *RemoteKeySet) get(kid string) (PublicKey, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	k, ok := s.keys[kid]
	return PublicKey{KID: kid, Alg: k.alg, Key: k.key}, ok
}

// shared runs f once for all concurrent callers with the same name. f gets a
// context detached from any one caller, so one caller giving up does not fail
// the rest.
func (s *RemoteKeySet) shared(ctx context.Context, name string, f func(context.Context) error) error {
	ch := s.sf.DoChan(name, func() (any, error) {
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
func (s *RemoteKeySet) refresh(ctx context.Context) error {
	s.mu.Lock()
	s.lastAttempt = s.cfg.Now()
	s.mu.Unlock()
	body, err := get200(ctx, s.cfg.HTTPClient, s.cfg.JWKSURL)
	if err != nil {
		return fmt.Errorf("resource: JWKS: %w", err)
	}
	keys, err := parseJWKS(body)
	if err != nil {
		return fmt.Errorf("resource: JWKS %s: %w", s.cfg.JWKSURL, err)
	}
	s.mu.Lock()
	s.keys, s.fetchedAt = keys, s.cfg.Now()
	s.mu.Unlock()
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

// get200 fetches u and returns its body, bounded, when the answer is 200.
func get200(ctx context.Context, hc *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
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
