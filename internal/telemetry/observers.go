package telemetry

import (
	"context"
	"net/http"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/codes"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"

	"github.com/portvakt/portvakt/internal/entcert"
	"github.com/portvakt/portvakt/internal/exchange"
	"github.com/portvakt/portvakt/internal/protocol"
	"github.com/portvakt/portvakt/internal/purge"
	"github.com/portvakt/portvakt/internal/ratelimit"
	"github.com/portvakt/portvakt/internal/rules"
	"github.com/portvakt/portvakt/internal/server"
	"github.com/portvakt/portvakt/internal/signer"
	"github.com/portvakt/portvakt/internal/store/sqlstore"
	"github.com/portvakt/portvakt/internal/tokenendpoint"
)

// Each package that reports declares its own Observer; these are the
// implementations, one per package, handed out by the methods below and
// wired in main.
var (
	_ exchange.Observer      = exchangeObserver{}
	_ tokenendpoint.Observer = tokenObserver{}
	_ server.Observer        = listenerObserver{}
	_ entcert.Observer       = certObserver{}
	_ rules.Observer         = rulesObserver{}
	_ sqlstore.Observer      = sqlObserver{}
	_ purge.Observer         = purgeObserver{}
	_ ratelimit.Observer     = limitObserver{}
	_ signer.Observer        = keysObserver{}
)

// Exchange observes the token exchange: each step of the grant is a span
// of the step's name, and the signing step's duration is
// portvakt.token.signing.duration.
func (t *Telemetry) Exchange() exchange.Observer { return exchangeObserver{t} }

type exchangeObserver struct{ t *Telemetry }

func (o exchangeObserver) Step(ctx context.Context, name string) (context.Context, func(error)) {
	timed := name == exchange.StepSign
	if !o.t.tracing && !timed {
		return ctx, endNothing
	}
	var span trace.Span
	if o.t.tracing {
		ctx, span = o.t.tracer.Start(ctx, name)
	}
	var start time.Time
	if timed {
		start = o.t.now()
	}
	return ctx, func(err error) {
		if timed {
			o.t.m.signing(ctx, o.t.now().Sub(start))
		}
		if span != nil {
			endSpan(span, err)
		}
	}
}

func endNothing(error) {}

// endSpan records err (its public code, never its text) and ends span.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, protocol.AsError(err).Code)
	}
	span.End()
}

// TokenEndpoint observes the token endpoint: portvakt.token.requests,
// portvakt.token.errors and portvakt.token.duration.
func (t *Telemetry) TokenEndpoint() tokenendpoint.Observer { return tokenObserver{t} }

type tokenObserver struct{ t *Telemetry }

func (o tokenObserver) TokenRequest(ctx context.Context, res *exchange.Result, perr *protocol.Error, took time.Duration) {
	code, status := "", http.StatusOK
	if perr != nil {
		code, status = perr.Code, perr.Status
	}
	o.t.m.tokenRequest(ctx, res.ClientAMR, res.Delegated(), code, status, took)
}

// Listener observes one listener (named "public" or "ops" in its spans):
// portvakt.http.request.duration for every request, a server span per
// route when tracing is on (off, a route's handler is left as it is), and
// the trace id as the request id.
func (t *Telemetry) Listener(name string) server.Observer { return listenerObserver{t, name} }

type listenerObserver struct {
	t    *Telemetry
	name string
}

func (o listenerObserver) TraceID(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		return sc.TraceID().String()
	}
	return ""
}

func (o listenerObserver) Request(ctx context.Context, route, method string, status int, took time.Duration) {
	o.t.m.httpRequest(ctx, route, method, status, took)
}

func (o listenerObserver) Route(route string, h http.Handler) http.Handler {
	if !o.t.tracing {
		return h
	}
	return otelhttp.NewHandler(h, route,
		otelhttp.WithTracerProvider(o.t.tp),
		// The request metrics are portvakt's own (Request above).
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelhttp.WithSpanNameFormatter(func(string, *http.Request) string { return route }),
		otelhttp.WithServerName(o.name))
}

// Certificates observes the enterprise-certificate verifier and its CRL
// checker: portvakt.certificate.cache.lookups, portvakt.crl.fetches, and
// the gauges portvakt.crl.since_this_update and
// portvakt.crl.until_next_update (at most maxCRLSources sources). The
// failed-chain cache has no metric of its own (its lookups follow a miss of
// the verified-chain cache).
func (t *Telemetry) Certificates() entcert.Observer { return certObserver{t} }

type certObserver struct{ t *Telemetry }

func (o certObserver) CacheLookup(hit bool) { o.t.m.certCacheLookup(hit) }
func (o certObserver) NegativeLookup(bool)  {}
func (o certObserver) CRLFetch(src string, oc entcert.CRLOutcome) {
	o.t.crlFetch(src, string(oc))
}
func (o certObserver) CRLInUse(src string, this, next time.Time) {
	o.t.fresh.crlInUse(src, this, next)
}

// SigningKeys observes the signing-key keeper: the gauges
// portvakt.signing_key.current.age, portvakt.signing_keys (by state),
// portvakt.signing_key.retired.remaining and the schedule's
// portvakt.signing_key.rotation.interval and .pre_publish. Ages are taken
// at each scrape on Config.Now. Without a keeper (keys from files, no
// rotation) there are no such series.
func (t *Telemetry) SigningKeys() signer.Observer { return keysObserver{t} }

type keysObserver struct{ t *Telemetry }

func (o keysObserver) KeysLoaded(s signer.KeyState) { o.t.fresh.keysLoaded(s) }

// Rules observes the access-rules cache: portvakt.rules.cache.lookups and
// portvakt.rules.reloads.
func (t *Telemetry) Rules() rules.Observer { return rulesObserver{t} }

type rulesObserver struct{ t *Telemetry }

func (o rulesObserver) Reload(gen int64, took time.Duration, err error) {
	o.t.m.rulesReload(gen, took, err)
}
func (o rulesObserver) Lookup(hit bool) { o.t.m.rulesCacheLookup(hit) }

// Database observes the SQL store's group commit: portvakt.store.batch.rows
// and portvakt.store.batch.duration. The calls made to the store are
// observed around its interface (InstrumentStore).
func (t *Telemetry) Database() sqlstore.Observer { return sqlObserver{t} }

type sqlObserver struct{ t *Telemetry }

func (o sqlObserver) Batch(rows int, took time.Duration, err error) {
	o.t.m.storeBatch(rows, took, err)
}

// Purge observes the purger: portvakt.issued_tokens.purged and
// portvakt.issued_tokens.purge.errors.
func (t *Telemetry) Purge() purge.Observer { return purgeObserver{t} }

type purgeObserver struct{ t *Telemetry }

func (o purgeObserver) Purged(n int, err error) { o.t.m.purge(n, err) }

// RateLimit observes the rate limits: portvakt.token.rate_limited.
func (t *Telemetry) RateLimit() ratelimit.Observer { return limitObserver{t} }

type limitObserver struct{ t *Telemetry }

func (o limitObserver) Limited(k ratelimit.Kind) { o.t.m.rateLimitedBy(string(k)) }
