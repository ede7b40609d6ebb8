package tokenendpoint_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/exchange"
	"github.com/portvakt/portvakt/internal/protocol"
	"github.com/portvakt/portvakt/internal/tokenendpoint"
)

// stepKey marks a context with the step it belongs to.
type stepKey struct{}

// recorder is the exchange's and the endpoint's Observer: it writes down
// every step as it starts and ends, and every request's outcome.
type recorder struct {
	mu       sync.Mutex
	steps    []string
	requests []string
}

func (r *recorder) add(to *[]string, s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	*to = append(*to, s)
}

func (r *recorder) Step(ctx context.Context, name string) (context.Context, func(error)) {
	parent, _ := ctx.Value(stepKey{}).(string)
	r.add(&r.steps, fmt.Sprintf("start %s (in %q)", name, parent))
	return context.WithValue(ctx, stepKey{}, name), func(err error) {
		r.add(&r.steps, fmt.Sprintf("end %s: %s", name, protocolCode(err)))
	}
}

func (r *recorder) TokenRequest(_ context.Context, res *exchange.Result, err *protocol.Error, took time.Duration) {
	code := "issued"
	if err != nil {
		code = err.Code
	}
	r.add(&r.requests, fmt.Sprintf("%s %s %s %v", res.ClientID, res.ClientAMR, code, took))
}

func protocolCode(err error) string {
	if err == nil {
		return "ok"
	}
	return protocol.AsError(err).Code
}

var (
	_ exchange.Observer      = (*recorder)(nil)
	_ tokenendpoint.Observer = (*recorder)(nil)
)

// The exchange tells its Observer of every step in order, each step's
// context the parent of the steps within it; the endpoint tells its
// Observer of every request, timed on its own clock. (Every other test
// runs with nil Observers, which observe nothing.)
func TestObserversAreToldOfEveryStep(t *testing.T) {
	rec := &recorder{}
	var ticks int64
	var mu sync.Mutex
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// Each reading of the endpoint's clock moves it 250 ms on.
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		ticks++
		return start.Add(time.Duration(ticks) * 250 * time.Millisecond)
	}
	e := newObservedEnv(t, observers{exchange: rec, endpoint: rec, endpointNow: now})
	i := e.ids["consumer-seid1"]

	cases := []struct {
		name, scope string
		status      int
		steps       []string
		request     string
	}{
		{name: "ok/certificate-client", scope: "demo:read", status: 200, steps: []string{
			`start assertion.verify (in "")`,
			`start certificate.verify (in "assertion.verify")`,
			`end certificate.verify: ok`,
			`end assertion.verify: ok`,
			`start access.decide (in "")`,
			`end access.decide: ok`,
			`start store.insert_issued_token (in "")`,
			`start token.sign (in "")`,
			`end token.sign: ok`,
			`end store.insert_issued_token: ok`,
		}, request: i.clientID + " virksomhetssertifikat issued 250ms"},
		{name: "fail/scope-denied", scope: "demo:denied", status: 400, steps: []string{
			`start assertion.verify (in "")`,
			`start certificate.verify (in "assertion.verify")`,
			`end certificate.verify: ok`,
			`end assertion.verify: ok`,
			`start access.decide (in "")`,
			`end access.decide: invalid_scope`,
		}, request: i.clientID + " virksomhetssertifikat invalid_scope 250ms"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec.mu.Lock()
			rec.steps, rec.requests = nil, nil
			rec.mu.Unlock()
			r := e.grant(e.sign(i, e.claims(i, tc.scope), nil))
			if r.status != tc.status {
				t.Fatalf("%d %s", r.status, r.raw)
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if got, want := strings.Join(rec.steps, "\n"), strings.Join(tc.steps, "\n"); got != want {
				t.Errorf("steps:\n%s\nwant:\n%s", got, want)
			}
			if len(rec.requests) != 1 || rec.requests[0] != tc.request {
				t.Errorf("requests %q, want [%q]", rec.requests, tc.request)
			}
		})
	}
}
