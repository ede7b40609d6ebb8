package main

import (
	"context"
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
	"github.com/portvakt/portvakt/internal/console"
	"github.com/portvakt/portvakt/internal/devmode"
	"github.com/portvakt/portvakt/internal/entcert"
	"github.com/portvakt/portvakt/internal/events"
	"github.com/portvakt/portvakt/internal/exchange"
	"github.com/portvakt/portvakt/internal/manage"
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
	keeper *signer.Keeper     // nil when keys come from files
	limits *ratelimit.Limiter // nil when rate limits are off
	events *events.Worker
	core   *manage.Service
	public http.Handler
	ops    http.Handler
}

// openStore opens the configured database. obs, when set, is told of every
// group commit of issued-token rows (metrics).
func openStore(ctx context.Context, cfg *config.Config, obs sqlstore.Observer) (*sqlstore.Store, error) {
	if cfg.Database.Driver == sqlstore.DriverSQLite {
		if err := os.MkdirAll(filepath.Dir(cfg.Database.DSN), 0o700); err != nil {
			return nil, err
		}
	}
	return sqlstore.Open(ctx, sqlstore.Config{
		Driver: cfg.Database.Driver, DSN: cfg.Database.DSN,
		MaxOpenConns: cfg.Database.MaxOpenConns, MaxIdleConns: cfg.Database.MaxIdleConns,
		StatementTimeout: cfg.Database.StatementTimeout, Observer: obs,
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
	db, err := openStore(ctx, cfg, tel.Database())
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
	st := tel.InstrumentStore(store.WithStatic(db, static))
	cache := rules.NewCache(st, rules.CacheConfig{
		PollInterval: cfg.Rules.PollInterval, Observer: tel.Rules(),
	})
	snap, err := cache.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("load access rules: %w", err)
	}
	if err := checkDeclaredClients(static, snap); err != nil {
		return nil, err
	}

	certs, err := trustPolicy(cfg, tel.Certificates())
	if err != nil {
		return nil, err
	}
	keys, keeper, err := signingKeys(ctx, cfg, st, now, log)
	if err != nil {
		return nil, err
	}

	limits := rateLimits(cfg, st, log, tel.RateLimit())
	proofs, nonces, err := dpopParts(cfg, now)
	if err != nil {
		return nil, err
	}
	ex := exchange.New(exchange.Config{
		Issuer: cfg.Issuer, ClockSkew: cfg.Token.ClockSkew, DefaultLifetime: cfg.Token.DefaultLifetime, Now: now,
		Observer: tel.Exchange(), Limits: limits, DPoP: proofs,
	}, cache, certs, st, keys)
	// The event outbox is pushed to the webhooks by one worker per
	// replica; the core wakes it after a change that appended events.
	worker, err := events.New(events.Config{Issuer: cfg.Issuer, Log: log, Now: now}, st, keys)
	if err != nil {
		return nil, err
	}
	core, err := manage.New(manage.Config{Issuer: cfg.Issuer, PlatformOrg: cfg.Platform.Org, PlatformMembers: cfg.Console.PlatformMembers,
		Now: now, Notify: worker.Notify}, st, cache)
	if err != nil {
		return nil, err
	}
	api, err := selfservice.New(selfservice.Config{Issuer: cfg.Issuer, Now: now, Log: log}, core, keys)
	if err != nil {
		return nil, err
	}
	web, err := webConsole(cfg, core, st, now, log)
	if err != nil {
		return nil, err
	}
	public, err := server.Public{
		Issuer: cfg.Issuer, Token: tokenendpoint.New(ex, tokenendpoint.Config{Observer: tel.TokenEndpoint(), Now: now, DPoPNonces: nonces}),
		JWKS: keys.JWKS, API: api, Console: web, Log: log,
		RequestTimeout: cfg.Server.RequestTimeout, Observer: tel.Listener("public"), Now: now,
	}.Handler()
	if err != nil {
		return nil, err
	}
	ops := server.Ops{Metrics: tel.Handler(), Pprof: cfg.Ops.Pprof, Observer: tel.Listener("ops"), Checks: map[string]func(context.Context) error{
		"store":      st.Ping,
		"migrations": db.SchemaCheck,
		"signing_key": func(context.Context) error {
			if keys.Active() == nil {
				return errors.New("no signing key")
			}
			return nil
		},
	}}.Handler()
	return &app{cfg: cfg, log: log, tel: tel, db: db, store: st, rules: cache, keys: keys, keeper: keeper, limits: limits, events: worker, core: core, public: public, ops: ops}, nil
}

// webConsole builds the web console; in dev mode its dev login offers the
// demo orgs.
func webConsole(cfg *config.Config, core *manage.Service, st store.Store, now func() time.Time, log *slog.Logger) (http.Handler, error) {
	o := cfg.Console.OIDC
	ccfg := console.Config{
		Issuer: cfg.Issuer, Now: now, Log: log,
		OIDC: console.OIDC{Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: o.ClientSecret,
			OrgsClaim: o.OrgsClaim, ClaimRoles: o.ClaimRoles},
		IdleTimeout: cfg.Console.Session.IdleTimeout, MaxAge: cfg.Console.Session.MaxAge,
	}
	if cfg.Dev {
		// The demo orgs, named as their dev certificates name them.
		for _, d := range []struct{ org, role string }{
			{devmode.PlatformOrg, console.DevPlatform}, {devmode.ProviderOrg, "provider"},
			{devmode.ConsumerOrg, "consumer"}, {devmode.VendorOrg, "vendor"},
		} {
			name := d.org
			for _, id := range devmode.Identities {
				if id.Org == d.org {
					name = id.Name
					break
				}
			}
			ccfg.DevOrgs = append(ccfg.DevOrgs, console.DevOrg{Org: d.org, Name: name, Role: d.role})
		}
	}
	c, err := console.New(ccfg, core, st)
	if err != nil {
		return nil, err
	}
	return c.Handler(), nil
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
// anchors are configured. obs, when set, is told of its cache lookups.
func trustPolicy(cfg *config.Config, obs entcert.Observer) (*entcert.Verifier, error) {
	if len(cfg.Trust.Roots) == 0 {
		return nil, nil
	}
	p := entcert.Policy{Observer: obs}
	// Every missing or bad file is reported at once, CRL files included.
	var errs []error
	read := func(files []string) []*x509.Certificate {
		certs, err := entcert.ReadCertificateFiles(absPaths(cfg, files))
		errs = append(errs, err)
		return certs
	}
	p.Roots = read(cfg.Trust.Roots)
	p.Intermediates = read(cfg.Trust.Intermediates)
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
		errs = append(errs, err)
		p.Revocation = crl
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("trust:\n%w", err)
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
		a.log.Info("portvakt shutting down: the listeners are closed; stopping background work")
		stopBG()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			a.log.Warn("background work did not stop within 10s of shutdown")
		}
		a.log.Info("portvakt stopped")
	}()
	wg.Go(func() { a.rules.Run(bg) })
	// Other replicas' writes, announced by PostgreSQL NOTIFY, reach the
	// rules cache at once; the generation poll stays as the fallback. On
	// SQLite Listen returns at once.
	wg.Go(func() {
		a.db.Listen(bg, sqlstore.ListenConfig{
			OnChange: a.rules.Refresh, Log: a.log,
		})
	})
	// The purge gets the SQL store itself: its partition housekeeping and
	// incremental vacuum are not part of store.Store.
	wg.Go(func() {
		purge.Run(bg, a.db, purge.Config{
			Retention: a.cfg.Audit.Retention, Interval: a.cfg.Audit.PurgeInterval, Batch: a.cfg.Audit.PurgeBatch, Log: a.log,
			Observer: a.tel.Purge(),
		})
	})
	if a.limits != nil {
		wg.Go(func() { a.limits.Run(bg) })
	}
	wg.Go(func() { a.events.Run(bg) })
	if a.keeper != nil {
		wg.Go(func() { a.keeper.Run(bg) })
	}
	settings := server.Settings{
		ReadHeaderTimeout: a.cfg.Server.ReadHeaderTimeout, ReadTimeout: a.cfg.Server.ReadTimeout,
		WriteTimeout: a.cfg.Server.WriteTimeout, IdleTimeout: a.cfg.Server.IdleTimeout,
	}
	pub := server.NewHTTPServer(publicLn.Addr().String(), a.public, settings, a.log)
	// The public listener's connection cap, and the open files it needs
	// (docs/protocol.md).
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
