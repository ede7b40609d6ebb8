package telemetry_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/entcert"
	"github.com/portvakt/portvakt/internal/signer"
	"github.com/portvakt/portvakt/internal/telemetry"
)

// pinned is a clock the test moves by hand.
type pinned struct{ t time.Time }

func (p *pinned) Now() time.Time { return p.t }

// The CRL and signing-key gauges are ages on the clock of the scrape, not
// of the event: a CRL nobody asked about since grows older at every scrape.
func TestFreshnessGauges(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clk := &pinned{t: t0}
	tel := newTelemetry(t, telemetry.Config{Now: clk.Now})
	const dp = "http://crl.example/issuing.crl"

	got := scrape(t, tel)
	for k := range got {
		if strings.HasPrefix(k, "portvakt_crl_") || strings.HasPrefix(k, "portvakt_signing_key") {
			t.Errorf("%s exported before anything was told", k)
		}
	}

	obs := tel.Certificates()
	obs.CRLFetch(dp, entcert.CRLFetchOK)
	obs.CRLInUse(dp, t0.Add(-time.Hour), t0.Add(2*time.Hour))
	obs.CRLFetch(dp, entcert.CRLFetchTimeout)
	tel.SigningKeys().KeysLoaded(signer.KeyState{
		CurrentActivated: t0.Add(-24 * time.Hour), NextPublished: t0,
		Retired: 2, RetiredLeaves: t0.Add(30 * time.Minute),
		Policy: signer.Policy{Interval: 30 * 24 * time.Hour, PrePublish: 24 * time.Hour},
	})
	clk.t = t0.Add(10 * time.Minute)
	got = scrape(t, tel)
	src := fmt.Sprintf(`source=%q`, dp)
	for k, v := range map[string]float64{
		`portvakt_crl_fetches_total{outcome="ok",` + src + `}`:      1,
		`portvakt_crl_fetches_total{outcome="timeout",` + src + `}`: 1,
		`portvakt_crl_since_this_update_seconds{` + src + `}`:       70 * 60,
		`portvakt_crl_until_next_update_seconds{` + src + `}`:       110 * 60,
		`portvakt_signing_key_current_age_seconds`:                  24*3600 + 600,
		`portvakt_signing_keys{state="current"}`:                    1,
		`portvakt_signing_keys{state="next"}`:                       1,
		`portvakt_signing_keys{state="retired"}`:                    2,
		`portvakt_signing_key_retired_remaining_seconds`:            20 * 60,
		`portvakt_signing_key_rotation_interval_seconds`:            30 * 24 * 3600,
		`portvakt_signing_key_rotation_pre_publish_seconds`:         24 * 3600,
	} {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (exported %v), want %v", k, g, ok, v)
		}
	}
	// Past nextUpdate the gauge goes negative; with no retired key left
	// the remaining time is 0.
	clk.t = t0.Add(3 * time.Hour)
	tel.SigningKeys().KeysLoaded(signer.KeyState{CurrentActivated: t0, Policy: signer.Policy{Interval: time.Hour}})
	got = scrape(t, tel)
	for k, v := range map[string]float64{
		`portvakt_crl_until_next_update_seconds{` + src + `}`: -3600,
		`portvakt_signing_keys{state="next"}`:                 0,
		`portvakt_signing_key_retired_remaining_seconds`:      0,
		`portvakt_signing_key_current_age_seconds`:            3 * 3600,
	} {
		if g := got[k]; g != v {
			t.Errorf("%s = %v, want %v", k, g, v)
		}
	}
	if t.Failed() {
		for k, v := range got {
			t.Logf("%s %v", k, v)
		}
	}
}

// Sources past the bound share the label "other" and get no gauges.
func TestCRLSourcesBounded(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tel := newTelemetry(t, telemetry.Config{Now: func() time.Time { return t0 }})
	obs := tel.Certificates()
	for i := range 100 {
		src := fmt.Sprintf("http://crl%d.example/c.crl", i)
		obs.CRLFetch(src, entcert.CRLFetchOK)
		obs.CRLInUse(src, t0, t0.Add(time.Hour))
	}
	got := scrape(t, tel)
	fetchSeries, gauges := 0, 0
	for k := range got {
		switch {
		case strings.HasPrefix(k, "portvakt_crl_fetches_total{"):
			fetchSeries++
		case strings.HasPrefix(k, "portvakt_crl_until_next_update_seconds{"):
			gauges++
		}
	}
	if fetchSeries != 33 || gauges != 32 || got[`portvakt_crl_fetches_total{outcome="ok",source="other"}`] != 68 {
		t.Fatalf("%d fetch series, %d gauges, %v fetches of other; want 33, 32, 68", fetchSeries, gauges, got[`portvakt_crl_fetches_total{outcome="ok",source="other"}`])
	}
}
