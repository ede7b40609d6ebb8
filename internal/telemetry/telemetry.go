package telemetry

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/portvakt/portvakt/internal/protocol"
)

// Config selects the exporters. Every field works at its zero value
// (metrics on, tracing off).
type Config struct {
	ServiceVersion string
	// OTLPEndpoint (host:port) turns tracing on; empty = off.
	OTLPEndpoint string
	OTLPInsecure bool
	SampleRatio  float64
	// SpanExporter, when set, receives spans instead of OTLP (tests, benchmarks).
	SpanExporter sdktrace.SpanExporter
	// SyncExport exports each span as it ends instead of in batches (tests).
	SyncExport bool
	// Now is the clock that times what the observers time themselves (the
	// store calls, the signing step); default time.Now.
	Now func() time.Time
}

// Telemetry holds the providers and the instruments, and hands out each
// package's Observer (observers.go).
type Telemetry struct {
	tracer  trace.Tracer
	tracing bool
	m       *metrics
	fresh   *freshness
	fm      *freshnessMetrics
	now     func() time.Time
	handler http.Handler
	tp      *sdktrace.TracerProvider
	mp      *sdkmetric.MeterProvider
}

// New sets up metrics (always) and tracing (when configured).
func New(ctx context.Context, cfg Config) (*Telemetry, error) {
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		semconv.ServiceName("portvakt"), semconv.ServiceVersion(cfg.ServiceVersion)))
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, err
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res),
		sdkmetric.WithView(sdkmetric.NewView(sdkmetric.Instrument{Kind: sdkmetric.InstrumentKindHistogram, Unit: "s"},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{
				Boundaries: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5},
			}})))
	m, err := newMetrics(mp.Meter("github.com/portvakt/portvakt"))
	if err != nil {
		return nil, err
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	fresh := &freshness{now: now, crls: map[string]crlTimes{}}
	fm, err := registerFreshness(mp.Meter("github.com/portvakt/portvakt"), fresh)
	if err != nil {
		return nil, err
	}
	t := &Telemetry{m: m, fresh: fresh, fm: fm, now: now, mp: mp, handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})}
	exporter := cfg.SpanExporter
	if exporter == nil && cfg.OTLPEndpoint != "" {
		opts := []otlptracehttp.Option{otlptracehttp.WithEndpoint(cfg.OTLPEndpoint)}
		if cfg.OTLPInsecure {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
		exporter, err = otlptracehttp.New(ctx, opts...)
		if err != nil {
			return nil, err
		}
	}
	if exporter == nil {
		t.tracer = noop.NewTracerProvider().Tracer("")
		return t, nil
	}
	ratio := cfg.SampleRatio
	if ratio == 0 {
		ratio = 1
	}
	export := sdktrace.WithBatcher(exporter)
	if cfg.SyncExport {
		export = sdktrace.WithSyncer(exporter)
	}
	t.tp = sdktrace.NewTracerProvider(sdktrace.WithResource(res), export,
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))))
	t.tracer = t.tp.Tracer("github.com/portvakt/portvakt")
	t.tracing = true
	return t, nil
}

// Handler serves /metrics.
func (t *Telemetry) Handler() http.Handler { return t.handler }

// Shutdown flushes spans and stops the providers.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	if t.tp != nil {
		errs = append(errs, t.tp.Shutdown(ctx))
	}
	errs = append(errs, t.mp.Shutdown(ctx))
	return errors.Join(errs...)
}

// metrics are the named instruments.
type metrics struct {
	tokenRequests   metric.Int64Counter
	tokenErrors     metric.Int64Counter
	tokenDuration   metric.Float64Histogram
	httpDuration    metric.Float64Histogram
	storeDuration   metric.Float64Histogram
	signDuration    metric.Float64Histogram
	batchRows       metric.Int64Histogram
	batchDuration   metric.Float64Histogram
	certCache       metric.Int64Counter
	rulesCache      metric.Int64Counter
	rulesReloads    metric.Int64Counter
	purged          metric.Int64Counter
	purgeErrors     metric.Int64Counter
	rateLimited     metric.Int64Counter
	rateAttrs       *attrSets // kind
	tokenAttrs      *attrSets // client_amr, delegated, outcome
	tokenOutcome    *attrSets // outcome
	tokenError      *attrSets // error
	httpAttrs       *attrSets // route, method, status_class
	storeAttrs      *attrSets // op, outcome
	hit, miss       metric.MeasurementOption
	reloadOK, relKO metric.MeasurementOption
}

func newMetrics(m metric.Meter) (*metrics, error) {
	var errs []error
	c := func(name, unit, desc string) metric.Int64Counter {
		x, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return x
	}
	h := func(name, desc string) metric.Float64Histogram {
		x, err := m.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc))
		errs = append(errs, err)
		return x
	}
	out := &metrics{
		tokenRequests: c("portvakt.token.requests", "{request}", "Token requests by client_amr, delegated and outcome (issued, rejected, failed)"),
		tokenErrors:   c("portvakt.token.errors", "{request}", "Token endpoint errors by OAuth error code"),
		tokenDuration: h("portvakt.token.duration", "Time to answer a token request"),
		httpDuration:  h("portvakt.http.request.duration", "HTTP request duration by route, method and status class"),
		storeDuration: h("portvakt.store.call.duration", "Store call duration by operation and outcome"),
		signDuration:  h("portvakt.token.signing.duration", "Time to sign one access token"),
		batchDuration: h("portvakt.store.batch.duration", "Group commit of issued-token rows: one statement's duration, by outcome"),
		certCache:     c("portvakt.certificate.cache.lookups", "{lookup}", "Verified certificate-chain cache lookups by result (hit, miss)"),
		rulesCache:    c("portvakt.rules.cache.lookups", "{lookup}", "Access-rule snapshot lookups by result (hit, miss = reload)"),
		rulesReloads:  c("portvakt.rules.reloads", "{reload}", "Access-rule snapshot reloads by outcome"),
		purged:        c("portvakt.issued_tokens.purged", "{row}", "Issued-token rows purged past retention"),
		purgeErrors:   c("portvakt.issued_tokens.purge.errors", "{error}", "Failed purge batches"),
		rateLimited:   c("portvakt.token.rate_limited", "{request}", "Token requests refused by a rate limit, by kind (client, org, address)"),
	}
	// Batches hold 1 to 64 rows (sqlstore's maxBatch): powers of two.
	var err error
	out.batchRows, err = m.Int64Histogram("portvakt.store.batch.rows", metric.WithUnit("{row}"),
		metric.WithDescription("Group commit of issued-token rows: rows per statement"),
		metric.WithExplicitBucketBoundaries(1, 2, 4, 8, 16, 32, 64))
	errs = append(errs, err)
	out.tokenAttrs = newAttrSets("client_amr", "delegated", "outcome")
	out.tokenOutcome = newAttrSets("outcome")
	out.tokenError = newAttrSets("error")
	out.httpAttrs = newAttrSets("route", "method", "status_class")
	out.storeAttrs = newAttrSets("op", "outcome")
	out.rateAttrs = newAttrSets("kind")
	out.hit = metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "hit")))
	out.miss = metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "miss")))
	out.reloadOK = metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", "ok")))
	out.relKO = metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", "error")))
	return out, errors.Join(errs...)
}

// tokenRequest counts one token request. code is the OAuth error code ("" on
// success); status decides between rejected (4xx) and failed (5xx).
func (m *metrics) tokenRequest(ctx context.Context, amr string, delegated bool, code string, status int, took time.Duration) {
	oc := "issued"
	switch {
	case status >= 500:
		oc = "failed"
	case code != "":
		oc = "rejected"
	}
	del := "false"
	if delegated {
		del = "true"
	}
	switch amr {
	case protocol.AMRCertificate, protocol.AMRPrivateKeyJWT:
	default:
		amr = "" // before the client was known, or a value no label is kept for
	}
	m.tokenRequests.Add(ctx, 1, m.tokenAttrs.get([3]string{amr, del, oc}))
	m.tokenDuration.Record(ctx, took.Seconds(), m.tokenOutcome.get([3]string{oc}))
	if code != "" {
		m.tokenErrors.Add(ctx, 1, m.tokenError.get([3]string{code}))
	}
}

// httpRequest records one request's duration.
func (m *metrics) httpRequest(ctx context.Context, route, method string, status int, took time.Duration) {
	class := [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}[min(max(status/100, 1), 5)-1]
	m.httpDuration.Record(ctx, took.Seconds(), m.httpAttrs.get([3]string{route, method, class}))
}

// storeCall records one store call.
func (m *metrics) storeCall(ctx context.Context, op string, err error, took time.Duration) {
	m.storeDuration.Record(ctx, took.Seconds(), m.storeAttrs.get([3]string{op, outcome(err)}))
}

// outcome is a store operation's outcome label.
func outcome(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

// storeBatch records one group commit of issued-token rows.
func (m *metrics) storeBatch(rows int, took time.Duration, err error) {
	ctx := context.Background()
	m.batchRows.Record(ctx, int64(rows))
	m.batchDuration.Record(ctx, took.Seconds(), m.storeAttrs.get([3]string{"insert_issued_tokens", outcome(err)}))
}

// signing records one token signature.
func (m *metrics) signing(ctx context.Context, took time.Duration) {
	m.signDuration.Record(ctx, took.Seconds())
}

// certCacheLookup counts a verified-chain cache lookup.
func (m *metrics) certCacheLookup(hit bool) {
	if hit {
		m.certCache.Add(context.Background(), 1, m.hit)
	} else {
		m.certCache.Add(context.Background(), 1, m.miss)
	}
}

// rulesCacheLookup counts an access-rule snapshot lookup.
func (m *metrics) rulesCacheLookup(hit bool) {
	if hit {
		m.rulesCache.Add(context.Background(), 1, m.hit)
	} else {
		m.rulesCache.Add(context.Background(), 1, m.miss)
	}
}

// rulesReload counts a snapshot reload.
func (m *metrics) rulesReload(_ int64, _ time.Duration, err error) {
	if err != nil {
		m.rulesReloads.Add(context.Background(), 1, m.relKO)
	} else {
		m.rulesReloads.Add(context.Background(), 1, m.reloadOK)
	}
}

// rateLimitedBy counts a token request refused by a rate limit of kind
// (client, org, address).
func (m *metrics) rateLimitedBy(kind string) {
	m.rateLimited.Add(context.Background(), 1, m.rateAttrs.get([3]string{kind}))
}

// purge counts purged rows.
func (m *metrics) purge(n int, err error) {
	m.purged.Add(context.Background(), int64(n))
	if err != nil {
		m.purgeErrors.Add(context.Background(), 1)
	}
}
