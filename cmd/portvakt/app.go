package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portvakt/portvakt/configs"
	"github.com/portvakt/portvakt/internal/access"
	"github.com/portvakt/portvakt/internal/config"
	"github.com/portvakt/portvakt/internal/devmode"
	"github.com/portvakt/portvakt/internal/entcert"
	"github.com/portvakt/portvakt/internal/exchange"
	"github.com/portvakt/portvakt/internal/protocol"
	"github.com/portvakt/portvakt/internal/purge"
	"github.com/portvakt/portvakt/internal/ratelimit"
	"github.com/portvakt/portvakt/internal/rules"
	"github.com/portvakt/portvakt/internal/selfservice"
	"github.com/portvakt/portvakt/internal/server"
	"github.com/portvakt/portvakt/internal/signer"
	"github.com/portvakt/portvakt/internal/store"
	"github.com/portvakt/portvakt/internal/store/sqlstore"
	"github.com/portvakt/portvakt/internal/telemetry"
	"github.com/portvakt/portvakt/internal/tokenendpoint"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
)

// loadConfig reads the config for serve: the file, or in dev mode the
// embedded dev config (a --config file replaces it), with dev files prepared.
func loadConfig(file string, dev bool) (*config.Config, error) {
	var cfg *config.Config
	var err error
	if dev && file == "" {
		cfg, err = config.Parse(configs.Dev, "", true)
	} else {
		cfg, err = config.Read(file, dev)
	}
	if cfg == nil { // not YAML; a config with bad keys comes back, and Check lists them with the rest
		return nil, err
	}
	if dev {
		if err := devmode.Prepare(cfg.DataDir); err != nil {
			return nil, fmt.Errorf("dev mode: %w", err)
		}
		if file == "" {
			// The dev config's relative paths point into the data directory.
			abs, err := filepath.Abs(cfg.DataDir)
			if err != nil {
				return nil, err
			}
			cfg.Dir = abs
		}
	}
	if err := cfg.Check(); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, nil
}

func newLogger(cfg *config.Config) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.Log.Format == "text" {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}

// app is a wired server.
type app struct {
	cfg    *config.Config
	log    *slog.Logger
	tel    *telemetry.Telemetry
	db     *sqlstore.Store
	store  store.Store
	rules  *rules.Cache
	keys   *signer.Set
	limits *ratelimit.Limiter // nil when rate limits are off
	public http.Handler
	ops    http.Handler
}

// openStore opens the configured database. onBatch, when set, is told of
// every group commit of issued-token rows (metrics).
func openStore(ctx context.Context, cfg *config.Config, onBatch func(rows int, took time.Duration, err error)) (*sqlstore.Store, error) {
	if cfg.Database.Driver == sqlstore.DriverSQLite {
		if err := os.MkdirAll(filepath.Dir(cfg.Database.DSN), 0o700); err != nil {
			return nil, err
		}
	}
	return sqlstore.Open(ctx, sqlstore.Config{
		Driver: cfg.Database.Driver, DSN: cfg.Database.DSN,
		MaxOpenConns: cfg.Database.MaxOpenConns, MaxIdleConns: cfg.Database.MaxIdleConns,
		StatementTimeout: cfg.Database.StatementTimeout, OnBatch: onBatch,
	})
}

// build wires every part of the server from cfg. The caller runs and closes it.
//
// tune adjusts the telemetry config (tests send spans to memory).
func build(ctx context.Context, cfg *config.Config, log *slog.Logger, tune ...func(*telemetry.Config)) (_ *app, err error) {
	now := time.Now
	tcfg := telemetry.Config{
		ServiceVersion: version, OTLPEndpoint: cfg.Tracing.Endpoint,
		OTLPInsecure: cfg.Tracing.Insecure, SampleRatio: cfg.Tracing.SampleRatio,
	}
	for _, f := range tune {
		f(&tcfg)
	}
	tel, err := telemetry.New(ctx, tcfg)
	if err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	metrics := tel.Metrics
	db, err := openStore(ctx, cfg, metrics.StoreBatch)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	defer func() {
		if err != nil {
			db.Close()
		}
	}()
	if err := db.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	if err := db.SchemaCheck(ctx); err != nil {
		return nil, err
	}
	static, err := cfg.Static(now())
	if err != nil {
		return nil, err
	}
	st := telemetry.InstrumentStore(store.WithStatic(db, static), metrics, tel.Tracer)
	cache := rules.NewCache(st, rules.CacheConfig{
		PollInterval: cfg.Rules.PollInterval, OnReload: metrics.RulesReload, OnLookup: metrics.RulesCache,
	})
	snap, err := cache.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("load access rules: %w", err)
	}
	if err := checkDeclaredClients(static, snap); err != nil {
		return nil, err
	}

	certs, err := trustPolicy(cfg, metrics.CertCache)
	if err != nil {
		return nil, err
	}
	keyFile := cfg.Signing.KeyFile
	if keyFile == "" {
		keyFile = filepath.Join(cfg.DataDir, "signing-key.pem")
	} else {
		keyFile = cfg.Path(keyFile)
	}
	key, err := signer.LoadOrGenerate(keyFile, cfg.Signing.Algorithm)
	if err != nil {
		return nil, err
	}
	var published []*signer.Key
	for _, f := range cfg.Signing.PublishKeyFiles {
		b, err := os.ReadFile(cfg.Path(f))
		if err != nil {
			return nil, fmt.Errorf("signing.publish_key_files: %w", err)
		}
		priv, err := signer.ParsePrivateKeyPEM(b)
		if err != nil {
			return nil, fmt.Errorf("signing.publish_key_files: %s: %w", f, err)
		}
		alg := "RS256"
		if _, ok := priv.(*ecdsa.PrivateKey); ok {
			alg = "ES256"
		}
		k, err := signer.NewKey(priv, alg)
		if err != nil {
			return nil, fmt.Errorf("signing.publish_key_files: %s: %w", f, err)
		}
		published = append(published, k)
	}
	keys, err := signer.NewSet(key, published...)
	if err != nil {
		return nil, err
	}

	limits := rateLimits(cfg, st, log, metrics)
	ex := exchange.New(exchange.Config{
		Issuer: cfg.Issuer, ClockSkew: cfg.Token.ClockSkew, DefaultLifetime: cfg.Token.DefaultLifetime, Now: now,
		Tracer: tel.Tracer, OnSign: metrics.Signing, Limits: limits,
	}, cache, certs, st, keys)
	api, err := selfservice.New(selfservice.Config{
		Issuer: cfg.Issuer, PlatformOrg: cfg.Platform.Org, Now: now, Log: log,
	}, st, cache, keys)
	if err != nil {
		return nil, err
	}
	public, err := server.Public{
		Issuer: cfg.Issuer, Token: tokenendpoint.New(ex, tokenMetrics{metrics}), JWKS: keys.JWKS, API: api, Log: log,
		RequestTimeout: cfg.Server.RequestTimeout, Observe: metrics.HTTPRequest, Wrap: traced(tel, "public"),
	}.Handler()
	if err != nil {
		return nil, err
	}
	ops := server.Ops{Metrics: tel.Handler(), Pprof: cfg.Ops.Pprof, Checks: map[string]func(context.Context) error{
		"store":      st.Ping,
		"migrations": db.SchemaCheck,
		"signing_key": func(context.Context) error {
			if keys.Active() == nil {
				return errors.New("no signing key")
			}
			return nil
		},
	}}.Handler()
	if w := traced(tel, "ops"); w != nil {
		ops = w("ops", ops)
	}
	return &app{cfg: cfg, log: log, tel: tel, db: db, store: st, rules: cache, keys: keys, limits: limits, public: public, ops: ops}, nil
}

// traced wraps handlers in otelhttp when tracing is on; off, it adds nothing.
func traced(tel *telemetry.Telemetry, listener string) func(string, http.Handler) http.Handler {
	if !tel.Tracing {
		return nil
	}
	return func(route string, h http.Handler) http.Handler {
		return otelhttp.NewHandler(h, route,
			otelhttp.WithTracerProvider(tel.TracerProvider()),
			otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
			otelhttp.WithSpanNameFormatter(func(string, *http.Request) string { return route }),
			otelhttp.WithServerName(listener))
	}
}

// tokenMetrics reports token requests to the metrics.
type tokenMetrics struct{ m *telemetry.Metrics }

func (t tokenMetrics) TokenRequest(ctx context.Context, res *exchange.Result, perr *protocol.Error, took time.Duration) {
	code, status := "", http.StatusOK
	if perr != nil {
		code, status = perr.Code, perr.Status
	}
	t.m.TokenRequest(ctx, res.ClientAMR, res.Delegated(), code, status, took)
}

// checkDeclaredClients refuses a config whose clients list scopes their org
// cannot get, listing every problem.
func checkDeclaredClients(static store.StaticRecords, snap *rules.Snapshot) error {
	var errs []error
	for i, c := range static.Clients {
		for _, s := range c.Scopes {
			if _, ok := snap.Scope(s); !ok {
				errs = append(errs, fmt.Errorf("records.clients[%d] (%s): scope %s does not exist", i, c.ClientID, s))
				continue
			}
			if !access.ClientMayList(snap, s, c.ClientOrgno) {
				errs = append(errs, fmt.Errorf("records.clients[%d] (%s): organisation %s cannot get scope %s (no access, no delegation, not accessible for all)", i, c.ClientID, c.ClientOrgno, s))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid declared clients:\n%w", errors.Join(errs...))
	}
	return nil
}

// trustPolicy builds the enterprise certificate verifier; nil when no trust
// anchors are configured.
func trustPolicy(cfg *config.Config, onCacheLookup func(hit bool)) (*entcert.Verifier, error) {
	if len(cfg.Trust.Roots) == 0 {
		return nil, nil
	}
	p := entcert.Policy{OnCacheLookup: onCacheLookup}
	read := func(files []string) ([]*x509.Certificate, error) {
		var out []*x509.Certificate
		for _, f := range files {
			certs, err := devmode.ReadCertificates(cfg.Path(f))
			if err != nil {
				return nil, fmt.Errorf("trust: %w", err)
			}
			out = append(out, certs...)
		}
		return out, nil
	}
	var err error
	if p.Roots, err = read(cfg.Trust.Roots); err != nil {
		return nil, err
	}
	if p.Intermediates, err = read(cfg.Trust.Intermediates); err != nil {
		return nil, err
	}
	for _, s := range cfg.Trust.AllowedPolicies {
		var oid asn1.ObjectIdentifier
		for _, part := range strings.Split(s, ".") {
			n, _ := strconv.Atoi(part)
			oid = append(oid, n)
		}
		p.AllowedPolicies = append(p.AllowedPolicies, oid)
	}
	if cfg.Trust.Revocation.Enabled {
		crl, err := entcert.NewCRLChecker(entcert.CRLOptions{Files: absPaths(cfg, cfg.Trust.Revocation.CRLFiles)})
		if err != nil {
			return nil, err
		}
		p.Revocation = crl
	}
	return entcert.NewVerifier(p)
}

func absPaths(cfg *config.Config, files []string) []string {
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = cfg.Path(f)
	}
	return out
}

// run serves until ctx is done, then shuts down gracefully.
func (a *app) run(ctx context.Context, publicLn, opsLn net.Listener) error {
	// The background work stops after the listeners have drained, and run
	// waits for it, so that close never pulls the database from under a
	// reload, a purge or a rate-limit sync.
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	defer func() {
		stopBG()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			a.log.Warn("background work did not stop within 10s of shutdown")
		}
	}()
	wg.Go(func() { a.rules.Run(bg) })
	// Other replicas' writes, announced by PostgreSQL NOTIFY, reach the
	// rules cache at once; the generation poll stays as the fallback. On
	// SQLite Listen returns at once.
	wg.Go(func() {
		a.db.Listen(bg, sqlstore.ListenConfig{
			OnChange: a.rules.Refresh,
			OnError: func(err error) {
				a.log.Warn("rules change listener: connection lost, reconnecting", "err", err)
			},
		})
	})
	// The purge gets the SQL store itself: its partition housekeeping and
	// incremental vacuum are not part of store.Store.
	wg.Go(func() {
		purge.Run(bg, a.db, purge.Config{
			Retention: a.cfg.Audit.Retention, Interval: a.cfg.Audit.PurgeInterval, Batch: a.cfg.Audit.PurgeBatch, Log: a.log,
			OnPurge: a.tel.Metrics.Purge,
		})
	})
	if a.limits != nil {
		wg.Go(func() { a.limits.Run(bg) })
	}
	settings := server.Settings{
		ReadHeaderTimeout: a.cfg.Server.ReadHeaderTimeout, ReadTimeout: a.cfg.Server.ReadTimeout,
		WriteTimeout: a.cfg.Server.WriteTimeout, IdleTimeout: a.cfg.Server.IdleTimeout,
	}
	pub := server.NewHTTPServer(publicLn.Addr().String(), a.public, settings, a.log)
	// The public listener's connection cap, and the open files it needs
	// (SPEC 2.5).
	server.RaiseOpenFileLimit(uint64(a.cfg.Server.MaxConnections)+server.OpenFileReserve, a.log)
	publicLn = server.CapConnections(pub, publicLn, a.cfg.Server.MaxConnections, a.log)
	ops := server.NewHTTPServer(opsLn.Addr().String(), a.ops, settings, a.log)
	errc := make(chan error, 2)
	go func() { errc <- pub.Serve(publicLn) }()
	go func() { errc <- ops.Serve(opsLn) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shut, cancelShut := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelShut()
	_ = pub.Shutdown(shut)
	_ = ops.Shutdown(shut)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func (a *app) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(a.tel.Shutdown(ctx), a.db.Close())
}
