package scaleout_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/pgtest"
	"github.com/portvakt/portvakt/internal/testserver"
)

// The rate limits of the tests: low enough that the load is light on a
// loaded 2-core machine, a burst small against rate x duration so the
// bounds of docs/protocol.md are measurable.
const (
	limitRate  = 20.0
	limitBurst = 8
)

func limitedConfig() map[string]any {
	return map[string]any{"rate_limit": map[string]any{
		"enabled":       true,
		"client":        map[string]any{"per_second": limitRate, "burst": limitBurst},
		"org":           map[string]any{"per_second": 1000, "burst": 1000},
		"sync_interval": "100ms",
	}}
}

// tally is what one client got.
type tally struct {
	mu            sync.Mutex
	ok, limited   int
	other         []string
	first, last   time.Time // sends
	retryAfterBad int
}

// load sends perSecond requests a second for d with pre-signed assertions,
// round robin over the replicas, on a fixed schedule (sends do not wait
// for answers, at most 64 in flight).
func load(t *testing.T, hc *http.Client, c testserver.Client, replicas []*testserver.Server, perSecond float64, d time.Duration) *tally {
	t.Helper()
	n := int(perSecond * d.Seconds())
	ts := replicas[0].TokenSource(t, c, "demo:read")
	assertions := make([]string, n)
	for i := range assertions {
		a, err := ts.Assertion(t.Context())
		if err != nil {
			t.Fatalf("assertion: %v", err)
		}
		assertions[i] = a
	}
	res := &tally{}
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	start := time.Now()
	every := time.Duration(float64(time.Second) / perSecond)
	for i, a := range assertions {
		time.Sleep(time.Until(start.Add(time.Duration(i) * every)))
		sem <- struct{}{}
		sent := time.Now()
		url := replicas[i%len(replicas)].TokenURL
		wg.Go(func() {
			defer func() { <-sem }()
			r := postFull(t, hc, url, a)
			res.mu.Lock()
			defer res.mu.Unlock()
			if res.first.IsZero() || sent.Before(res.first) {
				res.first = sent
			}
			if sent.After(res.last) {
				res.last = sent
			}
			switch {
			case r.err != nil:
				res.other = append(res.other, r.err.Error())
			case r.status == http.StatusOK:
				res.ok++
			case r.status == http.StatusTooManyRequests && r.code == "temporarily_unavailable":
				res.limited++
				if r.retryAfter == "" || r.retryAfter == "0" {
					res.retryAfterBad++
				}
			default:
				res.other = append(res.other, http.StatusText(r.status)+" "+r.code)
			}
		})
	}
	wg.Wait()
	return res
}

type fullResult struct {
	result
	retryAfter string
}

// postFull is post that also keeps Retry-After.
func postFull(t *testing.T, hc *http.Client, tokenURL, assertion string) fullResult {
	t.Helper()
	var retry string
	hc2 := *hc
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	hc2.Transport = roundTripFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := base.RoundTrip(req)
		if err == nil {
			retry = resp.Header.Get("Retry-After")
		}
		return resp, err
	})
	r := post(t.Context(), &hc2, tokenURL, assertion)
	return fullResult{r, retry}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// docs/protocol.md with real `portvakt serve` processes on PostgreSQL: a client
// sending three times its rate gets 0.9 to 1.2 times its rate in tokens,
// on one replica and spread over two sharing the limit; a client at half
// its rate, at the same time, is never refused.
func TestRateLimitReplicas(t *testing.T) {
	base := postgresDSN(t)
	cases := []struct {
		name     string
		replicas int
		d        time.Duration
	}{
		{"ok/one-replica", 1, 4 * time.Second},
		{"ok/two-replicas-share-the-limit", 2, 8 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dsn := pgtest.FreshSchema(t, base)
			a := testserver.Start(t, testserver.Options{Driver: "postgres", DSN: dsn, Config: limitedConfig()})
			servers := []*testserver.Server{a}
			for range tc.replicas - 1 {
				servers = append(servers, testserver.Start(t, testserver.Options{Replica: a, Config: limitedConfig()}))
			}
			hc := newHTTPClient()
			var over, under *tally
			var wg sync.WaitGroup
			wg.Go(func() { over = load(t, hc, a.PKI.ConsumerKID, servers, 3*limitRate, tc.d) })
			wg.Go(func() { under = load(t, hc, a.PKI.ConsumerCert, servers, limitRate/2, tc.d) })
			wg.Wait()

			window := over.last.Sub(over.first).Seconds() + 1/(3*limitRate)
			ratio := float64(over.ok) / (limitRate * window)
			t.Logf("%d replica(s), rate %.0f/s burst %d: at 3x the rate for %.2f s: %d tokens, %d refused (429): %.3f x the rate",
				tc.replicas, limitRate, limitBurst, window, over.ok, over.limited, ratio)
			t.Logf("%d replica(s): at 0.5x the rate for %.2f s: %d tokens, %d refused",
				tc.replicas, under.last.Sub(under.first).Seconds(), under.ok, under.limited)
			if len(over.other) > 0 || len(under.other) > 0 {
				t.Errorf("answers other than 200 and 429: %v %v", over.other, under.other)
			}
			if ratio < 0.9 || ratio > 1.2 {
				t.Errorf("3x the rate got %.3f x the rate in tokens, want 0.9..1.2", ratio)
			}
			if under.limited > 0 {
				t.Errorf("the client under its rate was refused %d times", under.limited)
			}
			if over.retryAfterBad > 0 {
				t.Errorf("%d 429 answers without a Retry-After of at least 1", over.retryAfterBad)
			}
			var counted float64
			for _, s := range servers {
				counted += metric(t, hc, s, `portvakt_token_rate_limited_total{kind="client"}`)
			}
			if want := float64(over.limited + under.limited); counted != want {
				t.Errorf("the metric counted %v requests limited by client, want %v", counted, want)
			}
			if tc.replicas > 1 {
				if n := sqlInt(t, dsn, "SELECT count(DISTINCT replica) FROM rate_limit_counts"); n != int64(tc.replicas) {
					t.Errorf("%d replicas wrote counters, want %d", n, tc.replicas)
				}
			}
		})
	}
}

// metric is one sample of srv's /metrics (0 when absent).
func metric(t *testing.T, hc *http.Client, srv *testserver.Server, name string) float64 {
	t.Helper()
	resp, err := hc.Get(srv.OpsURL + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", name, err)
			}
			return f
		}
	}
	return 0
}

// A flood of idle keep-alive connections, and of connections that never
// send a byte, over a small cap: a fresh token request is still answered
// promptly, and the cap is logged.
func TestConnectionFlood(t *testing.T) {
	const max = 64
	s := testserver.Start(t, testserver.Options{Config: map[string]any{"server": map[string]any{"max_connections": max}}})
	addr := strings.TrimSuffix(strings.TrimPrefix(s.URL, "http://"), "/")
	ts := s.TokenSource(t, s.PKI.ConsumerKID, "demo:read")
	assertion, err := ts.Assertion(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	dial := func() net.Conn {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		conns = append(conns, c)
		return c
	}
	for range 4 * max {
		c := dial()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, "GET /jwk HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("request on an idle-to-be connection: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	for range 4 * max {
		dial()
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	r := post(t.Context(), hc, s.TokenURL, assertion)
	took := time.Since(start)
	t.Logf("fresh token request with %d idle connections over a cap of %d: %d in %v", 8*max, max, r.status, took.Round(time.Millisecond))
	if r.err != nil || r.status != http.StatusOK {
		t.Fatalf("fresh token request: %d %s %v", r.status, r.code, r.err)
	}
	if took > 2*time.Second {
		t.Errorf("the fresh request took %v, want under 2s", took)
	}
	found := false
	for _, rec := range s.LogRecords() {
		if msg, _ := rec["msg"].(string); strings.HasPrefix(msg, "connection cap reached") {
			found = true
		}
	}
	if !found {
		t.Errorf("no cap log line")
	}
}
