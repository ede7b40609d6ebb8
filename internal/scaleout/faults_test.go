package scaleout_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/testserver"
)

const (
	requestTimeout   = 2 * time.Second
	statementTimeout = time.Second
	// timeoutMargin covers what the server does not time: the client's
	// RSA signing is outside took, but TCP and scheduling on a busy
	// 2-core CI machine are not.
	timeoutMargin = time.Second
)

// PostgreSQL stopped mid-load: only 503 temporarily_unavailable, nothing
// past the request timeout, /readyz unready; after the restart tokens and
// /readyz come back by themselves, with the same portvakt process.
func TestDatabaseKilledMidLoad(t *testing.T) {
	pg := startCluster(t)
	srv := testserver.Start(t, testserver.Options{Driver: "postgres", DSN: pg.DSN, Config: map[string]any{
		"server":   map[string]any{"request_timeout": requestTimeout.String()},
		"database": map[string]any{"statement_timeout": statementTimeout.String()},
	}})
	pid := srv.PID()
	hc := newHTTPClient()
	c := srv.PKI.ConsumerKID

	type sample struct {
		result
		at time.Time
	}
	var (
		mu      sync.Mutex
		samples []sample
	)
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			ts := srv.TokenSource(t, c, "demo:read")
			for ctx.Err() == nil {
				a, err := ts.Assertion(ctx)
				if err != nil {
					t.Errorf("assertion: %v", err)
					return
				}
				r := post(context.Background(), hc, srv.TokenURL, a)
				mu.Lock()
				samples = append(samples, sample{r, time.Now()})
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	var once sync.Once
	stopLoad := func() { once.Do(func() { stop(); wg.Wait() }) }
	t.Cleanup(stopLoad)

	time.Sleep(1500 * time.Millisecond)
	killedAt := time.Now()
	pg.kill(t)
	t.Logf("PostgreSQL killed")

	// /readyz turns unready.
	deadline := time.Now().Add(10 * time.Second)
	for readyz(hc, srv) != http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Fatal("/readyz still not 503 10s after the database died")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("/readyz 503 after %v", time.Since(killedAt).Round(time.Millisecond))
	time.Sleep(2 * time.Second) // load against the dead database

	pg.start(t)
	restartedAt := time.Now()
	t.Logf("PostgreSQL restarted")
	var tokenBack, readyBack time.Duration
	deadline = time.Now().Add(30 * time.Second)
	for tokenBack == 0 || readyBack == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("not recovered 30s after the database restarted (token %v, readyz %v)", tokenBack, readyBack)
		}
		if readyBack == 0 && readyz(hc, srv) == http.StatusOK {
			readyBack = time.Since(restartedAt)
		}
		mu.Lock()
		for _, s := range samples {
			if tokenBack == 0 && s.at.After(restartedAt) && s.status == http.StatusOK {
				tokenBack = s.at.Sub(restartedAt)
			}
		}
		mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	stopLoad()
	t.Logf("recovered without a restart: first token %v and /readyz 200 %v after the database restarted",
		tokenBack.Round(time.Millisecond), readyBack.Round(time.Millisecond))

	if srv.Exited() || srv.PID() != pid {
		t.Fatal("portvakt did not survive the outage")
	}
	var ok, unavailable int
	var slowest time.Duration
	for _, s := range samples {
		slowest = max(slowest, s.took)
		switch {
		case s.err != nil:
			t.Errorf("transport error: %v", s.err)
		case s.status == http.StatusOK:
			ok++
		case s.status == http.StatusServiceUnavailable && s.code == "temporarily_unavailable":
			unavailable++
		default:
			t.Errorf("%d %q at %v after the kill: want 200 or 503 temporarily_unavailable", s.status, s.code, s.at.Sub(killedAt))
		}
		if s.took > requestTimeout+timeoutMargin {
			t.Errorf("a request took %v, past the request timeout %v (+%v margin)", s.took, requestTimeout, timeoutMargin)
		}
	}
	t.Logf("%d requests: %d tokens, %d 503 temporarily_unavailable; slowest %v (request timeout %v)",
		len(samples), ok, unavailable, slowest.Round(time.Millisecond), requestTimeout)
	if unavailable == 0 {
		t.Error("no 503 while the database was down: did the kill bite?")
	}
}
