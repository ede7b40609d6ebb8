package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/portvakt/portvakt/internal/store"
)

// Kind names the limit that refused a request (a metric label).
type Kind string

// The kinds of limit.
const (
	KindClient  Kind = "client"
	KindOrg     Kind = "org"
	KindAddress Kind = "address"
)

// Rate is one token bucket's refill rate and size.
type Rate struct {
	PerSecond float64
	Burst     int
}

func (r Rate) valid() bool { return r.PerSecond > 0 && r.Burst >= 1 }

// Exchanger is what sharing needs of the store.
type Exchanger interface {
	ExchangeRateCounts(ctx context.Context, x store.RateExchange) ([]store.RateCount, error)
}

// Defaults of Config.
const (
	DefaultMaxAddresses = 100000
	DefaultSyncInterval = 200 * time.Millisecond
	DefaultIdleReset    = 5 * time.Second
	DefaultExpireAfter  = time.Minute
)

// Config sets the limits. Client, Org and Address must be valid rates
// (PerSecond > 0, Burst >= 1); every other field works at its zero value.
type Config struct {
	// Client is every client's bucket; Clients overrides it by client_id.
	Client  Rate
	Clients map[string]Rate
	// Org is every organisation's bucket, shared by its clients.
	Org Rate
	// Address is the bucket per source address of requests whose iss is no
	// known, active client.
	Address Rate
	// MaxAddresses bounds the address buckets (default 100000).
	MaxAddresses int

	// Store, when set, shares the client and organisation buckets with the
	// other replicas using the same store. Nil: local limits only.
	Store Exchanger
	// Replica names this process in the store (default: host name and a
	// random suffix).
	Replica string
	// SyncInterval is the time between two turns (default 200 ms).
	SyncInterval time.Duration
	// IdleReset restarts a key's counter after it was idle that long
	// (default 5 s); the read window is twice that.
	IdleReset time.Duration
	// ExpireAfter deletes rows not updated for that long (default 1 min).
	ExpireAfter time.Duration

	Now func() time.Time
	Log *slog.Logger
	// Observer is told of every refused request; nil observes nothing.
	Observer Observer
}

// Observer is told what the limiter decides (metrics). Limited runs on the
// request's path and must be cheap and not block.
type Observer interface {
	// Limited is told of a request refused by the limit of kind k.
	Limited(k Kind)
}

// nopObserver observes nothing.
type nopObserver struct{}

func (nopObserver) Limited(Kind) {}

// Verdict is the answer for one request.
type Verdict struct {
	// Kind is the limit that refused the request; empty when admitted.
	Kind Kind
	// RetryAfter is when one more request would be admitted.
	RetryAfter time.Duration
}

// Allowed reports whether the request was admitted.
func (v Verdict) Allowed() bool { return v.Kind == "" }

// Limiter holds the buckets. It is safe for concurrent use.
type Limiter struct {
	cfg Config

	known     table // "c:" + client_id, "o:" + org
	addresses table

	syncMu   sync.Mutex // one turn at a time
	seen     map[peerKey]store.RateCount
	lastSync time.Time // of the last successful turn
	failLog  time.Time // last time a failed turn was logged
}

type peerKey struct{ replica, key string }

// New makes a Limiter.
func New(cfg Config) *Limiter {
	if cfg.MaxAddresses <= 0 {
		cfg.MaxAddresses = DefaultMaxAddresses
	}
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = DefaultSyncInterval
	}
	if cfg.IdleReset <= 0 {
		cfg.IdleReset = DefaultIdleReset
	}
	if cfg.ExpireAfter <= 0 {
		cfg.ExpireAfter = DefaultExpireAfter
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	if cfg.Replica == "" {
		cfg.Replica = replicaName()
	}
	l := &Limiter{cfg: cfg}
	l.known.init(0, cfg.Client)
	l.addresses.init(cfg.MaxAddresses, cfg.Address)
	return l
}

func replicaName() string {
	host, _ := os.Hostname()
	if len(host) > 40 {
		host = host[:40]
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	return host + "/" + hex.EncodeToString(b[:])
}

// Replica is this process's name in the store.
func (l *Limiter) Replica() string { return l.cfg.Replica }

func (l *Limiter) clientRate(clientID string) Rate {
	if r, ok := l.cfg.Clients[clientID]; ok {
		return r
	}
	return l.cfg.Client
}

// rateOf is the rate of a known-table key.
func (l *Limiter) rateOf(key string) Rate {
	if len(key) > 2 && key[:2] == "o:" {
		return l.cfg.Org
	}
	return l.clientRate(key[2:])
}

// AllowClient counts one request of a known client of org against the
// client's bucket and the organisation's: both must have a token, and both
// are charged only when both do.
func (l *Limiter) AllowClient(clientID, org string) Verdict {
	now := l.cfg.Now()
	t := &l.known
	t.mu.Lock()
	cb := t.get("c:"+clientID, l.clientRate(clientID), now)
	if d := cb.wait(now); d > 0 {
		t.mu.Unlock()
		return l.refuse(KindClient, d)
	}
	ob := t.get("o:"+org, l.cfg.Org, now)
	if d := ob.wait(now); d > 0 {
		t.mu.Unlock()
		return l.refuse(KindOrg, d)
	}
	cb.take(now, l.cfg.IdleReset)
	ob.take(now, l.cfg.IdleReset)
	t.mu.Unlock()
	return Verdict{}
}

// AllowAddress counts one request from remoteAddr ("host:port", as in
// http.Request.RemoteAddr) that names no known client.
func (l *Limiter) AllowAddress(remoteAddr string) Verdict {
	now := l.cfg.Now()
	t := &l.addresses
	t.mu.Lock()
	b := t.get(AddressKey(remoteAddr), l.cfg.Address, now)
	if d := b.wait(now); d > 0 {
		t.mu.Unlock()
		return l.refuse(KindAddress, d)
	}
	b.take(now, 0)
	t.mu.Unlock()
	return Verdict{}
}

func (l *Limiter) refuse(k Kind, d time.Duration) Verdict {
	l.cfg.Observer.Limited(k)
	return Verdict{Kind: k, RetryAfter: d}
}

// AddressKey is the bucket key of a remote address: the IPv4 address, or
// the IPv6 /64 (one subscriber's share); unparsable addresses share one key.
func AddressKey(remoteAddr string) string {
	ap, err := netip.ParseAddrPort(remoteAddr)
	var a netip.Addr
	if err == nil {
		a = ap.Addr()
	} else if a, err = netip.ParseAddr(remoteAddr); err != nil {
		return "unknown"
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// bucket is one key's token bucket and, for shared keys, its counter.
type bucket struct {
	lim   *rate.Limiter
	r     Rate
	last  time.Time // last admission (zero: none yet)
	start time.Time // the counter's start
	// admitted since start; published is what the store last took.
	admitted, published int64
}

// wait is how long until the bucket holds one token (0: it does now).
func (b *bucket) wait(now time.Time) time.Duration {
	tokens := b.lim.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration(math.Ceil((1 - tokens) / b.r.PerSecond * float64(time.Second)))
}

// take spends one token (wait returned 0). With idleReset > 0 the bucket is
// shared and take counts the admission; a counter idle for idleReset (and
// published) restarts.
func (b *bucket) take(now time.Time, idleReset time.Duration) {
	b.lim.AllowN(now, 1)
	idle := b.last.IsZero() || now.Sub(b.last) >= idleReset
	b.last = now
	if idleReset <= 0 {
		return
	}
	if idle && b.admitted == b.published {
		b.start, b.admitted, b.published = now, 0, 0
	}
	b.admitted++
}

// full reports whether the bucket holds nothing a new one would not: it has
// refilled to its burst and has no unpublished count.
func (b *bucket) full(now time.Time) bool {
	return b.admitted == b.published && b.lim.TokensAt(now) >= float64(b.r.Burst)
}

// table is a map of buckets, bounded when max > 0.
type table struct {
	mu        sync.Mutex
	m         map[string]*bucket
	max       int
	overflow  *bucket
	lastSweep time.Time
}

func (t *table) init(max int, overflow Rate) {
	t.m = map[string]*bucket{}
	t.max = max
	if max > 0 {
		t.overflow = newBucket(overflow)
	}
}

func newBucket(r Rate) *bucket {
	return &bucket{lim: rate.NewLimiter(rate.Limit(r.PerSecond), r.Burst), r: r}
}

// get returns key's bucket, making it with r when absent. A full bounded
// table is swept (at most once a second); when still full, the overflow
// bucket answers for every new key. The caller holds t.mu.
func (t *table) get(key string, r Rate, now time.Time) *bucket {
	if b, ok := t.m[key]; ok {
		return b
	}
	if t.max > 0 && len(t.m) >= t.max {
		if now.Sub(t.lastSweep) >= time.Second || now.Before(t.lastSweep) {
			t.sweepLocked(now)
		}
		if len(t.m) >= t.max {
			return t.overflow
		}
	}
	b := newBucket(r)
	t.m[key] = b
	return b
}

func (t *table) sweepLocked(now time.Time) {
	t.lastSweep = now
	for k, b := range t.m {
		if b.full(now) {
			delete(t.m, k)
		}
	}
}

func (t *table) sweep(now time.Time) {
	t.mu.Lock()
	t.sweepLocked(now)
	t.mu.Unlock()
}

// Len is the number of client and organisation buckets and of address
// buckets (tests, metrics).
func (l *Limiter) Len() (known, addresses int) {
	l.known.mu.Lock()
	known = len(l.known.m)
	l.known.mu.Unlock()
	l.addresses.mu.Lock()
	addresses = len(l.addresses.m)
	l.addresses.mu.Unlock()
	return known, addresses
}
