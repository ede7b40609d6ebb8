package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/portvakt/portvakt/internal/devmode"
	"github.com/portvakt/portvakt/pkg/client"
)

// churn makes one self-service change per interval while the load runs (a
// provider grants or removes one org's access to a demo scope through the
// API, as an admin would), and right after each change asks for one token
// as the consumer: how long that first token after a change takes shows
// what a change costs the token path.
type churn struct {
	every    time.Duration
	api      string // {issuer}api/v1/scopes/access/{org}?scope=...
	tokenURL string
	admin    *client.TokenSource
	consumer *client.TokenSource
	hc       *http.Client

	mu      sync.Mutex
	grant   bool
	changes []time.Duration // each change's round trip
	firsts  []time.Duration // each first token after a change
	errs    []string
	stop    context.CancelFunc
	done    chan struct{}
}

// churnOrg is the org whose access the churn flips: a seeded org number,
// valid and apart from the demo orgs, with no record of its own.
var churnOrg = seedOrgs(1)[0]

// newChurn prepares a churn against the dev server of devDir: its
// provider's certificate client flips the access, its consumer's kid client
// asks for tokens.
func newChurn(ctx context.Context, every time.Duration, issuer, tokenURL, devDir string) (*churn, error) {
	pki := filepath.Join(devDir, "pki")
	admin, err := clientSpec{Name: "churn-admin", ClientID: devmode.ProviderCertClient,
		Cert: filepath.Join(pki, "provider", "chain.pem"), Key: filepath.Join(pki, "provider", "key.pem"),
		Scopes: []string{"portvakt:scopes.write"}}.signer()
	if err != nil {
		return nil, fmt.Errorf("--churn: provider admin: %w", err)
	}
	consumer, err := clientSpec{ClientID: devmode.ConsumerKIDClient, Key: filepath.Join(pki, "kid-client.key.pem"), KID: devmode.KID}.signer()
	if err != nil {
		return nil, fmt.Errorf("--churn: consumer: %w", err)
	}
	c := &churn{every: every, hc: &http.Client{Timeout: requestTimeout}, tokenURL: tokenURL,
		api: issuer + "api/v1/scopes/access/" + churnOrg + "?scope=" + url.QueryEscape("demo:read")}
	if c.admin, err = client.NewTokenSource(ctx, client.Config{Issuer: issuer, TokenURL: tokenURL, ClientID: devmode.ProviderCertClient,
		Scopes: []string{"portvakt:scopes.write"}, Signer: admin}); err != nil {
		return nil, err
	}
	if c.consumer, err = client.NewTokenSource(ctx, client.Config{Issuer: issuer, TokenURL: tokenURL, ClientID: devmode.ConsumerKIDClient,
		Scopes: []string{"demo:read"}, Signer: consumer}); err != nil {
		return nil, err
	}
	// One change before the load: the admin's token is fetched and the
	// path is known to work.
	if err := c.change(ctx); err != nil {
		return nil, fmt.Errorf("--churn: the first change failed: %w", err)
	}
	c.changes = nil
	return c, nil
}

// change flips the access once.
func (c *churn) change(ctx context.Context) error {
	tok, err := c.admin.Token()
	if err != nil {
		return err
	}
	method := http.MethodDelete
	if c.grant = !c.grant; c.grant {
		method = http.MethodPut
	}
	req, err := http.NewRequestWithContext(ctx, method, c.api, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	t0 := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, c.api, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	c.changes = append(c.changes, time.Since(t0))
	return nil
}

// post sends one token request with assertion a.
func (c *churn) post(ctx context.Context, a string) error {
	form := url.Values{"grant_type": {client.GrantType}, "assertion": {a}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("token after a change: %d %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return nil
}

// start runs the churn until the returned stop is called.
func (c *churn) start(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(c.every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			// Sign first, so the first token's latency is the server's.
			a, err := c.consumer.Assertion(ctx)
			c.mu.Lock()
			if err == nil {
				err = c.change(ctx)
			}
			c.mu.Unlock()
			if err != nil {
				if ctx.Err() == nil {
					c.note(err)
				}
				continue
			}
			t0 := time.Now()
			err = c.post(ctx, a)
			took := time.Since(t0)
			c.mu.Lock()
			if err == nil {
				c.firsts = append(c.firsts, took)
			}
			c.mu.Unlock()
			if err != nil && ctx.Err() == nil {
				c.note(err)
			}
		}
	}()
	return func() { cancel(); <-done }
}

func (c *churn) note(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.errs) < 5 {
		c.errs = append(c.errs, err.Error())
	}
}

// report prints the churn's figures and returns the summary fields.
func (c *churn) report(out io.Writer) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	pct := func(d []time.Duration, q float64) time.Duration {
		st := stats{latencies: slices.Sorted(slices.Values(d))}
		return st.percentile(q)
	}
	fmt.Fprintf(out, "churn     %d changes (one per %s): change p50 %s p99 %s; first token after a change p50 %s p99 %s\n",
		len(c.changes), c.every, ms(pct(c.changes, .5)), ms(pct(c.changes, .99)), ms(pct(c.firsts, .5)), ms(pct(c.firsts, .99)))
	for _, e := range c.errs {
		fmt.Fprintf(out, "churn error: %s\n", e)
	}
	return fmt.Sprintf(" churn_changes=%d change_p50_ms=%.2f first_token_p50_ms=%.2f first_token_p99_ms=%.2f churn_errors=%d",
		len(c.changes), msf(pct(c.changes, .5)), msf(pct(c.firsts, .5)), msf(pct(c.firsts, .99)), len(c.errs))
}
