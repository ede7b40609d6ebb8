package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"
)

// TokenSource gets access tokens for one (scopes, resources, consumer_org)
// and caches the latest. It is an oauth2.TokenSource and safe for concurrent
// use: callers that find the cache stale share one request.
type TokenSource struct {
	c           *Client
	scopes      []string
	resources   []string
	consumerOrg string

	fetch   singleflight.Group
	mu      sync.Mutex
	tok     *oauth2.Token
	renewAt time.Time
}

var _ oauth2.TokenSource = (*TokenSource)(nil)

// Response is the token endpoint's answer.
type Response struct {
	AccessToken string
	TokenType   string
	// ExpiresIn is expires_in in seconds (0 when the server sent none).
	ExpiresIn int64
	// Scope is the granted scope, space-separated.
	Scope string
	// Expiry is the request's start plus ExpiresIn (zero without ExpiresIn).
	Expiry time.Time
	// Raw holds every field of the JSON body.
	Raw map[string]any
}

// Token returns the cached token, or a new one when the cache is empty or
// within RenewBefore of expiry. It uses the context given to the constructor.
func (ts *TokenSource) Token() (*oauth2.Token, error) { return ts.TokenContext(ts.c.ctx) }

// TokenContext is Token with the caller's context. Cancelling ctx stops the
// wait, not a request other callers share.
func (ts *TokenSource) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	now := ts.c.cfg.Now()
	ts.mu.Lock()
	if ts.tok != nil && now.Before(ts.renewAt) {
		t := ts.tok
		ts.mu.Unlock()
		return t, nil
	}
	ts.mu.Unlock()

	ch := ts.fetch.DoChan("", func() (any, error) {
		// Detached from the first caller: the result is shared, so one
		// caller giving up must not fail the others.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ts.fetchTimeout())
		defer cancel()
		r, err := ts.Fetch(fctx)
		if err != nil {
			return nil, err
		}
		t := r.Token()
		ts.mu.Lock()
		ts.tok, ts.renewAt = t, ts.renewTime(r)
		ts.mu.Unlock()
		return t, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*oauth2.Token), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (ts *TokenSource) fetchTimeout() time.Duration {
	if t := ts.c.httpClient.Timeout; t > 0 {
		return t
	}
	return defaultHTTPTimeout
}

// renewTime is when a token from r stops being served from the cache.
func (ts *TokenSource) renewTime(r *Response) time.Time {
	if r.ExpiresIn <= 0 {
		// Without a lifetime nothing can be cached safely.
		return time.Time{}
	}
	life := time.Duration(r.ExpiresIn) * time.Second
	before := ts.c.cfg.RenewBefore
	if before == 0 {
		before = min(30*time.Second, life/4)
	}
	before = min(before, life/2)
	return r.Expiry.Add(-before)
}

// Invalidate drops the cached token, e.g. after a resource server refused it.
func (ts *TokenSource) Invalidate() {
	ts.mu.Lock()
	ts.tok, ts.renewAt = nil, time.Time{}
	ts.mu.Unlock()
}

// Token converts the response to an oauth2.Token. Extra("scope") and
// Extra("expires_in") read the body's fields.
func (r *Response) Token() *oauth2.Token {
	t := &oauth2.Token{
		AccessToken: r.AccessToken,
		TokenType:   r.TokenType,
		Expiry:      r.Expiry,
		ExpiresIn:   r.ExpiresIn,
	}
	return t.WithExtra(r.Raw)
}

// Assertion builds and signs one grant: fresh jti, iat now, exp now +
// AssertionLifetime. Each call gives a new single-use assertion.
func (ts *TokenSource) Assertion(ctx context.Context) (string, error) {
	_ = ctx // reserved for signers that will take a context
	cfg := &ts.c.cfg
	now := cfg.Now()
	claims := jwt.MapClaims{
		"aud":   cfg.Issuer,
		"iss":   cfg.ClientID,
		"iat":   now.Unix(),
		"exp":   now.Add(cfg.AssertionLifetime).Unix(),
		"jti":   uuid.NewString(),
		"scope": strings.Join(ts.scopes, " "),
	}
	switch len(ts.resources) {
	case 0:
	case 1:
		claims["resource"] = ts.resources[0]
	default:
		claims["resource"] = ts.resources
	}
	if ts.consumerOrg != "" {
		claims["consumer_org"] = ts.consumerOrg
	}
	if cfg.PID != "" {
		claims["pid"] = cfg.PID
	}
	t := jwt.NewWithClaims(cfg.Signer.method, claims)
	for k, v := range cfg.Signer.header {
		t.Header[k] = v
	}
	s, err := t.SignedString(cfg.Signer.key)
	if err != nil {
		return "", fmt.Errorf("client: sign grant: %w", err)
	}
	return s, nil
}

// Fetch exchanges a fresh grant for a token, bypassing the cache. Errors from
// the server are *Error.
func (ts *TokenSource) Fetch(ctx context.Context) (*Response, error) {
	endpoint, err := ts.c.tokenEndpoint(ctx)
	if err != nil {
		return nil, err
	}
	r, err := ts.fetchOnce(ctx, endpoint)
	if ts.c.cfg.DPoP != nil && isUseNonce(err) {
		// Once more, with the nonce the answer carried (RFC 9449 section 8).
		r, err = ts.fetchOnce(ctx, endpoint)
	}
	return r, err
}

// fetchOnce is one token request, with a fresh grant.
func (ts *TokenSource) fetchOnce(ctx context.Context, endpoint string) (*Response, error) {
	assertion, err := ts.Assertion(ctx)
	if err != nil {
		return nil, err
	}
	form := url.Values{"grant_type": {GrantType}, "assertion": {assertion}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("client: token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if err := ts.c.addProof(req, ""); err != nil {
		return nil, err
	}
	start := ts.c.cfg.Now()
	resp, err := ts.c.httpClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: token request: %w", err)
	}
	defer resp.Body.Close()
	if ts.c.cfg.DPoP != nil {
		ts.c.nonces().remember(req.URL, resp.Header)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("client: token response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, parseError(resp.StatusCode, body)
	}
	r, err := parseResponse(body, start)
	if err != nil {
		return nil, err
	}
	switch bound := ts.c.cfg.DPoP != nil; {
	case bound && r.TokenType != "DPoP":
		return nil, fmt.Errorf("client: token_type %q is not DPoP: the token endpoint did not bind the token to the DPoP key", r.TokenType)
	case !bound && r.TokenType != "Bearer":
		return nil, fmt.Errorf("client: token_type %q is not Bearer (the request had no DPoP proof)", r.TokenType)
	}
	return r, nil
}

func parseResponse(body []byte, start time.Time) (*Response, error) {
	var raw map[string]any
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if err := d.Decode(&raw); err != nil {
		return nil, fmt.Errorf("client: token response is not a JSON object: %w", err)
	}
	r := &Response{Raw: raw}
	r.AccessToken, _ = raw["access_token"].(string)
	if r.AccessToken == "" {
		return nil, fmt.Errorf("client: token response has no access_token")
	}
	r.TokenType, _ = raw["token_type"].(string)
	switch {
	case r.TokenType == "":
		r.TokenType = "Bearer"
	case strings.EqualFold(r.TokenType, "bearer"):
		r.TokenType = "Bearer"
	case strings.EqualFold(r.TokenType, "dpop"):
		r.TokenType = "DPoP"
	default:
		return nil, fmt.Errorf("client: token_type %q is not Bearer or DPoP", r.TokenType)
	}
	r.Scope, _ = raw["scope"].(string)
	switch v := raw["expires_in"].(type) {
	case nil:
	case json.Number:
		n, err := v.Int64()
		if err != nil {
			f, ferr := v.Float64()
			if ferr != nil {
				return nil, fmt.Errorf("client: expires_in %q is not a number", v)
			}
			n = int64(f)
		}
		r.ExpiresIn = n
	default:
		return nil, fmt.Errorf("client: expires_in is not a number")
	}
	if r.ExpiresIn > 0 {
		r.Expiry = start.Add(time.Duration(r.ExpiresIn) * time.Second)
	}
	return r, nil
}
