package main

import (
	"log/slog"

	"github.com/portvakt/portvakt/internal/config"
	"github.com/portvakt/portvakt/internal/ratelimit"
	"github.com/portvakt/portvakt/internal/store"
	"github.com/portvakt/portvakt/internal/store/sqlstore"
)

// rateLimits builds the token endpoint's rate limits; nil when they are off.
// Replicas on PostgreSQL share them through st; on SQLite (one process)
// nothing is shared.
func rateLimits(cfg *config.Config, st store.Store, log *slog.Logger, obs ratelimit.Observer) *ratelimit.Limiter {
	r := cfg.RateLimit
	if !r.On() {
		return nil
	}
	rate := func(s config.RateSpec) ratelimit.Rate { return ratelimit.Rate{PerSecond: s.PerSecond, Burst: s.Burst} }
	overrides := make(map[string]ratelimit.Rate, len(r.Clients))
	for _, o := range r.Clients {
		overrides[o.ClientID] = ratelimit.Rate{PerSecond: o.PerSecond, Burst: o.Burst}
	}
	c := ratelimit.Config{
		Client: rate(r.Client), Clients: overrides, Org: rate(r.Org), Address: rate(r.Address),
		MaxAddresses: r.MaxAddresses, SyncInterval: r.SyncInterval, Log: log,
		Observer: obs,
	}
	if cfg.Database.Driver == sqlstore.DriverPostgres {
		c.Store = st
	}
	return ratelimit.New(c)
}
