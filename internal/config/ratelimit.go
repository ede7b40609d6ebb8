package config

import (
	"fmt"
	"math"
	"time"
)

// RateLimit sets the token endpoint's rate limits (docs/protocol.md). Every field
// works at its zero value: limits on (off with --dev), with the defaults
// below.
type RateLimit struct {
	// Enabled switches the limits; unset = on, off with --dev.
	Enabled *bool `mapstructure:"enabled"`
	// Client is every client's bucket (default 20/s, burst 40).
	Client RateSpec `mapstructure:"client"`
	// Org is every organisation's bucket, shared by its clients (default
	// 100/s, burst 200).
	Org RateSpec `mapstructure:"org"`
	// Address is the bucket per source address (IPv4, or IPv6 /64) of
	// requests whose iss is no known client (default 10/s, burst 20).
	Address RateSpec `mapstructure:"address"`
	// Clients override Client by client_id.
	Clients []RateOverride `mapstructure:"clients"`
	// MaxAddresses bounds the address buckets kept (default 100000).
	MaxAddresses int `mapstructure:"max_addresses"`
	// SyncInterval is how often replicas on PostgreSQL share what they
	// admitted (default 200ms).
	SyncInterval time.Duration `mapstructure:"sync_interval"`
}

// RateSpec is one token bucket. A zero PerSecond takes the default, a zero
// Burst two seconds' worth (at least 1).
type RateSpec struct {
	PerSecond float64 `mapstructure:"per_second"`
	Burst     int     `mapstructure:"burst"`
}

// RateOverride is one client's own bucket; zero fields take the client
// default's rate and two seconds' worth of burst.
type RateOverride struct {
	ClientID  string  `mapstructure:"client_id"`
	PerSecond float64 `mapstructure:"per_second"`
	Burst     int     `mapstructure:"burst"`
}

// On reports whether the limits are switched on (after Defaults).
func (r RateLimit) On() bool { return r.Enabled != nil && *r.Enabled }

func (s *RateSpec) defaults(perSecond float64) {
	if s.PerSecond == 0 {
		s.PerSecond = perSecond
	}
	if s.Burst == 0 {
		s.Burst = max(1, int(math.Ceil(2*s.PerSecond)))
	}
}

func (r *RateLimit) defaults(dev bool) {
	if r.Enabled == nil {
		on := !dev
		r.Enabled = &on
	}
	r.Client.defaults(20)
	r.Org.defaults(100)
	r.Address.defaults(10)
	for i := range r.Clients {
		o := &r.Clients[i]
		s := RateSpec{PerSecond: o.PerSecond, Burst: o.Burst}
		s.defaults(r.Client.PerSecond)
		o.PerSecond, o.Burst = s.PerSecond, s.Burst
	}
	if r.MaxAddresses == 0 {
		r.MaxAddresses = 100000
	}
	if r.SyncInterval == 0 {
		r.SyncInterval = 200 * time.Millisecond
	}
}

const (
	maxPerSecond = 1e6
	maxBurst     = 1e7
)

func (s RateSpec) validate(key string, bad func(key, format string, args ...any)) {
	if !(s.PerSecond > 0 && s.PerSecond <= maxPerSecond) {
		bad(key+".per_second", "must be in (0, %g], got %v", maxPerSecond, s.PerSecond)
	}
	if s.Burst < 1 || s.Burst > maxBurst {
		bad(key+".burst", "must be between 1 and %d, got %d", int(maxBurst), s.Burst)
	}
}

func (r RateLimit) validate(bad func(key, format string, args ...any)) {
	r.Client.validate("rate_limit.client", bad)
	r.Org.validate("rate_limit.org", bad)
	r.Address.validate("rate_limit.address", bad)
	seen := map[string]int{}
	for i, o := range r.Clients {
		key := fmt.Sprintf("rate_limit.clients[%d]", i)
		if o.ClientID == "" {
			bad(key+".client_id", "is required")
		} else if j, dup := seen[o.ClientID]; dup {
			bad(key+".client_id", "%q is already listed at rate_limit.clients[%d]", o.ClientID, j)
		} else {
			seen[o.ClientID] = i
		}
		RateSpec{PerSecond: o.PerSecond, Burst: o.Burst}.validate(key, bad)
	}
	if r.MaxAddresses < 1 || r.MaxAddresses > 10_000_000 {
		bad("rate_limit.max_addresses", "must be between 1 and 10000000, got %d", r.MaxAddresses)
	}
	if r.SyncInterval < 50*time.Millisecond || r.SyncInterval > 5*time.Second {
		bad("rate_limit.sync_interval", "must be between 50ms and 5s, got %s", r.SyncInterval)
	}
}

// DefaultMaxConnections is the default of server.max_connections.
const DefaultMaxConnections = 4096

func (s Server) validateConnections(bad func(key, format string, args ...any)) {
	if s.MaxConnections < 1 || s.MaxConnections > 1<<20 {
		bad("server.max_connections", "must be between 1 and %d, got %d", 1<<20, s.MaxConnections)
	}
}
