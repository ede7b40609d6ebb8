package tokenendpoint_test

import (
	"bufio"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/entcert"
	"github.com/portvakt/portvakt/internal/signer"
	"github.com/portvakt/portvakt/internal/telemetry"
	"github.com/portvakt/portvakt/internal/testpki"
)

// TestCRLDistributionPoints is revocation against CRL servers through the
// token endpoint, on both engines: enterprise certificates name loopback
// distribution points that serve CRLs signed by the issuing CA, the clock
// is pinned and moved by hand, and the servers count their requests. The
// story ends with a scrape of /metrics for the CRL and signing-key series.
func TestCRLDistributionPoints(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) { testCRLDistributionPoints(t, engine) })
	}
}

func testCRLDistributionPoints(t *testing.T, engine string) {
	pki, _, _ := fixtures(t)
	inter := pki.Intermediate
	dp := testpki.NewCRLServer() // the issuer's distribution point
	t.Cleanup(dp.Close)
	busy := testpki.NewCRLServer() // another point, for concurrent first use
	t.Cleanup(busy.Close)
	slow := testpki.NewCRLServer() // a point that trickles its bytes
	t.Cleanup(slow.Close)

	var tel *telemetry.Telemetry
	e := newCertEnv(t, certEnvOptions{engine: engine, policy: func(p *entcert.Policy) {
		var err error
		if tel, err = telemetry.New(t.Context(), telemetry.Config{Now: p.Now}); err != nil {
			t.Fatal(err)
		}
		rc, err := entcert.NewCRLChecker(entcert.CRLOptions{Now: p.Now, Observer: tel.Certificates(),
			FetchTimeout: 500 * time.Millisecond, FailureTTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		p.Revocation, p.Observer = rc, tel.Certificates()
	}})
	t0 := e.clock.Now()
	metrics := httptest.NewServer(tel.Handler())
	t.Cleanup(metrics.Close)
	// The signing keys kept in this store, observed by the same telemetry.
	kekBytes := make([]byte, signer.KEKSize)
	_, _ = rand.Read(kekBytes)
	kek, err := signer.NewKEK(kekBytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signer.NewKeeper(t.Context(), signer.KeeperConfig{Store: e.db, Vault: kek, Algorithm: "ES256", Now: e.clock.Now,
		Policy: signer.Policy{Interval: 30 * 24 * time.Hour, PrePublish: 24 * time.Hour}, Observer: tel.SigningKeys()}); err != nil {
		t.Fatal(err)
	}

	client := func(url string) *identity {
		key, err := testpki.ECKey(elliptic.P256())
		if err != nil {
			t.Fatal(err)
		}
		l, err := pki.Leaf(testpki.LeafOptions{Org: consumerOrg, Key: key, CRLURLs: []string{url}})
		if err != nil {
			t.Fatal(err)
		}
		id := certIdentity(e, key, l.Cert.Raw)
		id.serial = l.Cert.SerialNumber
		return id
	}
	grant := func(id *identity) response { return e.grant(e.sign(id, e.claims(id, "demo:read"), nil)) }
	ok := func(what string, id *identity) {
		t.Helper()
		if r := grant(id); r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", what, r.status, r.raw)
		}
	}
	refused := func(what string, id *identity, desc string) {
		t.Helper()
		r := grant(id)
		if r.status != http.StatusBadRequest || r.code() != "invalid_grant" || !strings.Contains(r.desc(), desc) {
			t.Fatalf("%s: %d %s, want 400 invalid_grant with %q", what, r.status, r.raw, desc)
		}
		if strings.Contains(r.desc(), id.serial.String()) {
			t.Fatalf("%s: the description names the serial: %s", what, r.desc())
		}
	}
	hits := func(what string, s *testpki.CRLServer, want int) {
		t.Helper()
		if n := s.Hits(); n != want {
			t.Fatalf("%s: %d CRL requests, want %d", what, n, want)
		}
	}
	crl := func(this, next time.Time, revoked ...*identity) []byte {
		spec := testpki.CRLSpec{ThisUpdate: this, NextUpdate: next, Revoked: []testpki.Revoked{{Serial: big.NewInt(42)}}}
		for _, id := range revoked {
			spec.Revoked = append(spec.Revoked, testpki.Revoked{Serial: id.serial, Reason: 1})
		}
		b, err := inter.CRLOf(spec)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	good, later, revoked := client(dp.URL), client(dp.URL), client(dp.URL)
	dp.Serve(crl(t0.Add(-time.Minute), t0.Add(time.Hour), revoked), "application/pkix-crl")

	// ok/good-certificate and fail/revoked: one fetch for both.
	ok("good certificate", good)
	refused("revoked certificate", revoked, "The certificate has been revoked by its issuer")
	hits("first use", dp, 1)

	// Before nextUpdate the cached CRL serves, whatever the server has now.
	dp.Serve(crl(t0.Add(59*time.Minute), t0.Add(2*time.Hour), revoked, good), "application/pkix-crl")
	e.clock.Set(t0.Add(30 * time.Minute))
	ok("good certificate before nextUpdate", good)
	hits("before nextUpdate", dp, 1)

	// ok/refreshed-after-next-update: the first use past nextUpdate fetches
	// the new CRL, which revokes the certificate that was good.
	e.clock.Set(t0.Add(61 * time.Minute))
	refused("revoked by the refreshed CRL", good, "has been revoked")
	ok("another certificate under the refreshed CRL", later)
	hits("after nextUpdate", dp, 2)

	// ok/down-with-current-crl: the server down changes nothing while the
	// cached CRL is current.
	dp.Down(true)
	e.clock.Set(t0.Add(90 * time.Minute))
	ok("server down, current CRL cached", later)
	hits("down, current CRL", dp, 2)

	// fail/down-without-current-crl: no token, a clear description, the
	// cause in the log; the dead server is asked once per failure TTL.
	e.clock.Set(t0.Add(2*time.Hour + time.Minute))
	refused("server down, CRL past nextUpdate", later, "revocation status could not be checked")
	refused("again within the failure TTL", later, "revocation status could not be checked")
	hits("down, no current CRL", dp, 3)
	if logs := e.logs.String(); !strings.Contains(logs, dp.URL+": CRL fetch: HTTP 503") {
		t.Fatalf("the log does not carry the cause:\n%s", logs)
	}

	// ok/one-fetch-for-many: concurrent first uses of a point share one fetch.
	busy.Handle(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(200 * time.Millisecond) // long enough for every request to be waiting
		_, _ = w.Write(crl(e.clock.Now().Add(-time.Minute), e.clock.Now().Add(time.Hour)))
	})
	var wg sync.WaitGroup
	many := client(busy.URL)
	for range 10 {
		wg.Go(func() {
			if r := grant(many); r.status != http.StatusOK {
				t.Errorf("concurrent grant: %d %s", r.status, r.raw)
			}
		})
	}
	wg.Wait()
	hits("10 concurrent first uses", busy, 1)

	// fail/trickling-server: the fetch ends at its budget. The server
	// trickles until the test ends, so an answer at all shows the bound.
	slow.Handle(func(w http.ResponseWriter, r *http.Request) {
		for {
			if _, err := w.Write([]byte{0x30}); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	})
	refused("trickling CRL server", client(slow.URL), "revocation status could not be checked")

	// The metrics, on the pinned clock: the point's CRL is the one of
	// t0+59m, due at t0+2h, and the scrape is at t0+2h1m. The trickling
	// fetch ends at the same deadline as the request that waited for it,
	// and may report a moment after the refusal: wait for it, boundedly.
	src := func(s *testpki.CRLServer) string { return fmt.Sprintf(`source=%q`, s.URL) }
	got := scrapeMetrics(t, metrics.URL)
	for deadline := time.Now().Add(5 * time.Second); got[`portvakt_crl_fetches_total{outcome="timeout",`+src(slow)+`}`] == 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		got = scrapeMetrics(t, metrics.URL)
	}
	for k, v := range map[string]float64{
		`portvakt_crl_fetches_total{outcome="ok",` + src(dp) + `}`:          2,
		`portvakt_crl_fetches_total{outcome="unreachable",` + src(dp) + `}`: 1,
		`portvakt_crl_fetches_total{outcome="ok",` + src(busy) + `}`:        1,
		`portvakt_crl_fetches_total{outcome="timeout",` + src(slow) + `}`:   1,
		`portvakt_crl_since_this_update_seconds{` + src(dp) + `}`:           62 * 60,
		`portvakt_crl_until_next_update_seconds{` + src(dp) + `}`:           -60,
		`portvakt_signing_key_current_age_seconds`:                          (2*60 + 1) * 60,
		`portvakt_signing_keys{state="current"}`:                            1,
		`portvakt_signing_keys{state="next"}`:                               0,
		`portvakt_signing_key_rotation_interval_seconds`:                    30 * 24 * 3600,
	} {
		if g, found := got[k]; !found || g != v {
			t.Errorf("%s = %v (exported: %v), want %v", k, g, found, v)
		}
	}
	if t.Failed() {
		for k, v := range got {
			if strings.HasPrefix(k, "portvakt_crl") || strings.HasPrefix(k, "portvakt_signing") {
				t.Logf("%s %v", k, v)
			}
		}
	}
}

// scrapeMetrics reads a /metrics into "name{labels}" -> value.
func scrapeMetrics(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}
