package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/valyala/fasthttp"
)

// tokenClient posts pre-signed token requests over keep-alive connections.
//
// It is fasthttp, not net/http: the tool shares the machine with the server
// it measures, and net/http's client (a read and a write goroutine per
// connection, channel hand-offs and wake-ups between them, allocation per
// request) cost about 200 µs of CPU per request, some 12 % of two cores taken
// from the server. fasthttp does the round trip on the calling goroutine and
// reuses one request and one response per worker.
type tokenClient struct {
	hc  *fasthttp.HostClient
	url string
}

// requestTimeout bounds one token request; a token endpoint that takes longer
// has failed for the purpose of a benchmark.
const requestTimeout = 10 * time.Second

// newTokenClient makes a client for tokenURL (http, or https with the
// system's roots) with up to conns connections.
func newTokenClient(tokenURL string, conns int) (*tokenClient, error) {
	u, err := url.Parse(tokenURL)
	if err != nil {
		return nil, fmt.Errorf("token endpoint %q: %w", tokenURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("token endpoint %q: want an http:// or https:// URL", tokenURL)
	}
	tls := u.Scheme == "https"
	return &tokenClient{url: tokenURL, hc: &fasthttp.HostClient{
		Addr:                     fasthttp.AddMissingPort(u.Host, tls),
		IsTLS:                    tls,
		MaxConns:                 conns,
		MaxConnWaitTimeout:       requestTimeout,
		MaxIdleConnDuration:      90 * time.Second, // idle across the bound samples
		ReadTimeout:              requestTimeout,
		WriteTimeout:             requestTimeout,
		MaxResponseBodySize:      64 << 10,
		NoDefaultUserAgentHeader: true,
		// An assertion is single use: sending it again is a replay the
		// server must refuse. (fasthttp retries only idempotent methods
		// by default; this says so.)
		RetryIf: func(*fasthttp.Request) bool { return false },
	}}, nil
}

// poster sends one worker's requests, reusing its request and response.
// It is not safe for concurrent use.
type poster struct {
	c    *tokenClient
	req  *fasthttp.Request
	resp *fasthttp.Response
}

func (c *tokenClient) poster() *poster {
	req := fasthttp.AcquireRequest()
	req.SetRequestURI(c.url)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/x-www-form-urlencoded")
	return &poster{c: c, req: req, resp: fasthttp.AcquireResponse()}
}

// release hands the request and response back to fasthttp's pools.
func (p *poster) release() {
	fasthttp.ReleaseRequest(p.req)
	fasthttp.ReleaseResponse(p.resp)
}

// accessToken is what a successful token response holds.
var accessToken = []byte(`"access_token"`)

// send posts one form body (not copied: it must not change until send
// returns) and says how it went. Only a failure is parsed.
func (p *poster) send(body []byte) outcome {
	p.req.SetBodyRaw(body)
	if err := p.c.hc.Do(p.req, p.resp); err != nil {
		if errors.Is(err, fasthttp.ErrBodyTooLarge) {
			return outcome{key: "transport error (body)"}
		}
		return outcome{key: "transport error"}
	}
	b := p.resp.Body()
	status := p.resp.StatusCode()
	if status == fasthttp.StatusOK && bytes.Contains(b, accessToken) {
		return outcome{ok: true}
	}
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	_ = json.Unmarshal(b, &e)
	if e.Error == "" {
		e.Error = "(no oauth error)"
	}
	return outcome{key: fmt.Sprintf("%d %s", status, e.Error)}
}
