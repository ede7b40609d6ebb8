package client

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"golang.org/x/oauth2"

	"github.com/portvakt/portvakt/pkg/dpop"
)

// DPoP asks for tokens bound to a key the client holds (RFC 9449), so a
// token that leaks is worthless without the key. With Config.DPoP set, every
// token request carries a proof made by Key, the server's answer must be
// token_type DPoP, and the *http.Client of TokenSource.HTTPClient sends
// each request with "Authorization: DPoP <token>" and a fresh proof for
// that request (with ath, the token's hash). When the token endpoint or a
// resource server answers use_dpop_nonce, the request is sent once more
// with the nonce from its DPoP-Nonce header; nonces are remembered per
// server for the next proofs.
type DPoP struct {
	// Key makes the proofs; nil generates a P-256 key when the Client is
	// made (it lives as long as the Client: its tokens are bound to it).
	Key *dpop.Key
}

// prepareDPoP returns d with a key, generating one when it has none; nil
// stays nil. The caller's value is not changed.
func prepareDPoP(d *DPoP) (*DPoP, error) {
	if d == nil || d.Key != nil {
		return d, nil
	}
	k, err := dpop.GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	c := *d
	c.Key = k
	return &c, nil
}

// maxNonceServers bounds the servers whose nonce a Client remembers.
const maxNonceServers = 1024

// nonceBook remembers the last DPoP-Nonce of each server (by origin).
type nonceBook struct {
	mu sync.Mutex
	m  map[string]string
}

func (c *Client) nonces() *nonceBook { return &c.dpopNonces }

func origin(u *url.URL) string { return strings.ToLower(u.Scheme + "://" + u.Host) }

func (b *nonceBook) get(u *url.URL) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.m[origin(u)]
}

// remember keeps the nonce of a response, if it has one.
func (b *nonceBook) remember(u *url.URL, h http.Header) bool {
	n := h.Get(dpop.NonceHeader)
	if n == "" || len(n) > 1024 {
		return false
	}
	b.mu.Lock()
	if b.m == nil || len(b.m) >= maxNonceServers {
		// Bounded: past that many servers, start over (a forgotten nonce
		// costs one retry).
		b.m = map[string]string{}
	}
	b.m[origin(u)] = n
	b.mu.Unlock()
	return true
}

// addProof sets the DPoP header of a request to the token endpoint, when
// the Client binds its tokens.
func (c *Client) addProof(req *http.Request, accessToken string) error {
	d := c.cfg.DPoP
	if d == nil {
		return nil
	}
	p, err := d.Key.Proof(req.Method, req.URL.String(), accessToken, c.nonces().get(req.URL), c.cfg.Now())
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	req.Header.Set(dpop.HeaderName, p)
	return nil
}

// HTTPClient returns an *http.Client that authenticates every request with
// this source's token: "Authorization: Bearer <token>", or for a DPoP-bound
// token "Authorization: DPoP <token>" and a fresh proof for the request. It
// uses the Client's HTTP client (its transport and timeout). A request
// answered 401 use_dpop_nonce is sent once more with the server's nonce
// when its body can be sent again (none, or GetBody set, as
// http.NewRequest does for in-memory bodies).
func (ts *TokenSource) HTTPClient() *http.Client {
	base := ts.c.httpClient.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	return &http.Client{Transport: &Transport{Source: ts, Base: base}, Timeout: ts.c.httpClient.Timeout}
}

// Transport is the http.RoundTripper of TokenSource.HTTPClient.
type Transport struct {
	Source *TokenSource
	// Base sends the requests (default http.DefaultTransport).
	Base http.RoundTripper
}

// RoundTrip authenticates req with the source's token (and a proof for a
// DPoP token) and sends it, retrying once with the server's nonce when the
// answer is use_dpop_nonce.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	tok, err := t.Source.TokenContext(req.Context())
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	resp, err := t.send(base, req, tok)
	if err != nil || !t.needsNonce(req, resp) {
		return resp, err
	}
	retry := req
	if req.Body != nil && req.Body != http.NoBody {
		if req.GetBody == nil {
			return resp, nil
		}
		body, err := req.GetBody()
		if err != nil {
			return resp, nil
		}
		retry = req.Clone(req.Context())
		retry.Body = body
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	return t.send(base, retry, tok)
}

// send authenticates one attempt of req (a clone: RoundTrip must not change
// the caller's request).
func (t *Transport) send(base http.RoundTripper, req *http.Request, tok *oauth2.Token) (*http.Response, error) {
	r := req.Clone(req.Context())
	c := t.Source.c
	if strings.EqualFold(tok.TokenType, "DPoP") {
		if c.cfg.DPoP == nil {
			return nil, errors.New("client: a DPoP token needs Config.DPoP")
		}
		p, err := c.cfg.DPoP.Key.Proof(r.Method, r.URL.String(), tok.AccessToken, c.nonces().get(r.URL), c.cfg.Now())
		if err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
		r.Header.Set("Authorization", "DPoP "+tok.AccessToken)
		r.Header.Set(dpop.HeaderName, p)
	} else {
		r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	}
	resp, err := base.RoundTrip(r)
	if err == nil && c.cfg.DPoP != nil {
		c.nonces().remember(r.URL, resp.Header)
	}
	return resp, err
}

// needsNonce reports whether resp asks for a DPoP nonce it has given.
func (t *Transport) needsNonce(req *http.Request, resp *http.Response) bool {
	if t.Source.c.cfg.DPoP == nil || resp.StatusCode != http.StatusUnauthorized || resp.Header.Get(dpop.NonceHeader) == "" {
		return false
	}
	for _, ch := range resp.Header.Values("WWW-Authenticate") {
		if strings.Contains(ch, `error="`+dpop.CodeUseNonce+`"`) {
			return true
		}
	}
	return false
}

// isUseNonce reports whether err is the token endpoint's use_dpop_nonce.
func isUseNonce(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == dpop.CodeUseNonce
}
