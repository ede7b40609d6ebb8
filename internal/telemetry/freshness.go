package telemetry

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/portvakt/portvakt/internal/signer"
)

// maxCRLSources bounds the CRL sources that get series of their own. The
// sources are the distribution points of leaves that chained to a trusted
// CA, and the configured files: a handful per issuer. Past the bound, a
// new source's fetches count under source="other" and it has no freshness
// series.
const maxCRLSources = 32

// otherSource is the source label past maxCRLSources.
const otherSource = "other"

// freshness is what the gauges of the CRLs and the signing keys read at
// each scrape: the times they were told, turned into ages on the clock of
// the scrape, so that a series never shows a value older than the scrape.
type freshness struct {
	now func() time.Time

	mu   sync.Mutex
	crls map[string]crlTimes // by source
	keys *signer.KeyState    // nil until a keeper reports
}

type crlTimes struct{ this, next time.Time }

// source is the label for src: src itself while the bound allows.
func (f *freshness) source(src string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.crls[src]; ok || len(f.crls) < maxCRLSources {
		if !ok {
			f.crls[src] = crlTimes{}
		}
		return src
	}
	return otherSource
}

func (f *freshness) crlInUse(src string, this, next time.Time) {
	if f.source(src) == otherSource {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.crls[src] = crlTimes{this: this, next: next}
}

func (f *freshness) keysLoaded(s signer.KeyState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys = &s
}

// freshnessMetrics are the observable gauges over a freshness.
type freshnessMetrics struct {
	crlFetches metric.Int64Counter
	fetchAttrs *attrSets // source, outcome
}

// registerFreshness creates the CRL and signing-key instruments of f.
func registerFreshness(m metric.Meter, f *freshness) (*freshnessMetrics, error) {
	var errs []error
	g := func(name, unit, desc string) metric.Float64ObservableGauge {
		x, err := m.Float64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return x
	}
	sinceThis := g("portvakt.crl.since_this_update", "s", "Seconds since the thisUpdate of the CRL a source last gave, by source (distribution point or file)")
	untilNext := g("portvakt.crl.until_next_update", "s", "Seconds until the nextUpdate of the CRL a source last gave, by source; negative past it (absent for a CRL without nextUpdate)")
	keyAge := g("portvakt.signing_key.current.age", "s", "Seconds since the CURRENT signing key was activated")
	keys := g("portvakt.signing_keys", "{key}", "Signing keys in the JWKS by state (current, next, retired)")
	retiredLeft := g("portvakt.signing_key.retired.remaining", "s", "Seconds until the first RETIRED signing key leaves the JWKS; 0 when none is published")
	interval := g("portvakt.signing_key.rotation.interval", "s", "The configured rotation interval: how long a key is CURRENT")
	prePublish := g("portvakt.signing_key.rotation.pre_publish", "s", "The configured pre-publish time: how long a NEXT key is published before it signs")
	fetches, err := m.Int64Counter("portvakt.crl.fetches", metric.WithUnit("{fetch}"),
		metric.WithDescription("CRL fetches (reads, for files) by source and outcome (ok, timeout, unreachable, too_large, invalid, bad_signature, stale)"))
	errs = append(errs, err)
	state := func(s string) metric.ObserveOption {
		return metric.WithAttributeSet(attribute.NewSet(attribute.String("state", s)))
	}
	current, next, retired := state("current"), state("next"), state("retired")
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		now := f.now()
		f.mu.Lock()
		defer f.mu.Unlock()
		for src, t := range f.crls {
			if t.this.IsZero() {
				continue // fetched, never valid
			}
			by := metric.WithAttributeSet(attribute.NewSet(attribute.String("source", src)))
			o.ObserveFloat64(sinceThis, now.Sub(t.this).Seconds(), by)
			if !t.next.IsZero() {
				o.ObserveFloat64(untilNext, t.next.Sub(now).Seconds(), by)
			}
		}
		if k := f.keys; k != nil {
			o.ObserveFloat64(keyAge, now.Sub(k.CurrentActivated).Seconds())
			o.ObserveFloat64(keys, 1, current)
			n := 0.0
			if !k.NextPublished.IsZero() {
				n = 1
			}
			o.ObserveFloat64(keys, n, next)
			o.ObserveFloat64(keys, float64(k.Retired), retired)
			left := 0.0
			if !k.RetiredLeaves.IsZero() {
				left = max(k.RetiredLeaves.Sub(now).Seconds(), 0)
			}
			o.ObserveFloat64(retiredLeft, left)
			o.ObserveFloat64(interval, k.Policy.Interval.Seconds())
			o.ObserveFloat64(prePublish, k.Policy.PrePublish.Seconds())
		}
		return nil
	}, sinceThis, untilNext, keyAge, keys, retiredLeft, interval, prePublish)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &freshnessMetrics{crlFetches: fetches, fetchAttrs: newAttrSets("source", "outcome")}, nil
}

// crlFetch counts one fetch of src.
func (t *Telemetry) crlFetch(src, outcome string) {
	t.fm.crlFetches.Add(context.Background(), 1, t.fm.fetchAttrs.get([3]string{t.fresh.source(src), outcome}))
}
