package ratelimit_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/pgtest"
	"github.com/portvakt/portvakt/internal/ratelimit"
	"github.com/portvakt/portvakt/internal/store"
	"github.com/portvakt/portvakt/internal/store/sqlstore"
)

// clock is a pinned clock the test moves by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func limits(c *clock, mod func(*ratelimit.Config)) *ratelimit.Limiter {
	cfg := ratelimit.Config{
		Client:  ratelimit.Rate{PerSecond: 2, Burst: 3},
		Org:     ratelimit.Rate{PerSecond: 4, Burst: 5},
		Address: ratelimit.Rate{PerSecond: 1, Burst: 2},
		Now:     c.Now,
	}
	if mod != nil {
		mod(&cfg)
	}
	return ratelimit.New(cfg)
}

func TestLocalBuckets(t *testing.T) {
	type step struct {
		advance time.Duration
		client  string // "" = by address
		org     string
		addr    string
		kind    ratelimit.Kind // "" = admitted
		retry   time.Duration  // when refused
	}
	cases := []struct {
		name  string
		mod   func(*ratelimit.Config)
		steps []step
	}{
		{"ok/client-burst-then-refused-then-refilled", nil, []step{
			{client: "a", org: "o1"}, {client: "a", org: "o1"}, {client: "a", org: "o1"},
			{client: "a", org: "o1", kind: ratelimit.KindClient, retry: 500 * time.Millisecond},
			{advance: 250 * time.Millisecond, client: "a", org: "o1", kind: ratelimit.KindClient, retry: 250 * time.Millisecond},
			{advance: 250 * time.Millisecond, client: "a", org: "o1"},
			{client: "b", org: "o2"},
		}},
		{"fail/org-shared-by-its-clients", nil, []step{
			{client: "a", org: "o1"}, {client: "a", org: "o1"}, {client: "a", org: "o1"},
			{client: "b", org: "o1"}, {client: "b", org: "o1"},
			{client: "c", org: "o1", kind: ratelimit.KindOrg, retry: 250 * time.Millisecond},
			// The refused request did not spend c's own bucket.
			{advance: 250 * time.Millisecond, client: "c", org: "o1"},
			{client: "c", org: "o1", kind: ratelimit.KindOrg, retry: 250 * time.Millisecond},
		}},
		{"ok/override", func(c *ratelimit.Config) {
			c.Clients = map[string]ratelimit.Rate{"big": {PerSecond: 10, Burst: 4}}
			c.Org = ratelimit.Rate{PerSecond: 100, Burst: 100}
		}, []step{
			{client: "big", org: "o"}, {client: "big", org: "o"}, {client: "big", org: "o"}, {client: "big", org: "o"},
			{client: "big", org: "o", kind: ratelimit.KindClient, retry: 100 * time.Millisecond},
			{client: "small", org: "o"}, {client: "small", org: "o"}, {client: "small", org: "o"},
			{client: "small", org: "o", kind: ratelimit.KindClient, retry: 500 * time.Millisecond},
		}},
		{"fail/address", nil, []step{
			{addr: "192.0.2.1:1000"}, {addr: "192.0.2.1:1001"},
			{addr: "192.0.2.1:1002", kind: ratelimit.KindAddress, retry: time.Second},
			{addr: "192.0.2.2:1000"},
			{addr: "[::ffff:192.0.2.2]:1000"},
			{addr: "192.0.2.2:1000", kind: ratelimit.KindAddress, retry: time.Second},
			// One IPv6 /64 is one subscriber.
			{addr: "[2001:db8:1:2::1]:443"}, {addr: "[2001:db8:1:2:ffff::9]:443"},
			{addr: "[2001:db8:1:2::3]:443", kind: ratelimit.KindAddress, retry: time.Second},
			{addr: "[2001:db8:1:3::1]:443"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock()
			var limited limitedKinds
			l := limits(c, func(cfg *ratelimit.Config) {
				cfg.Observer = &limited
				if tc.mod != nil {
					tc.mod(cfg)
				}
			})
			var want []ratelimit.Kind
			for i, s := range tc.steps {
				c.Add(s.advance)
				var v ratelimit.Verdict
				if s.client != "" {
					v = l.AllowClient(s.client, s.org)
				} else {
					v = l.AllowAddress(s.addr)
				}
				if v.Kind != s.kind || (s.kind != "" && v.RetryAfter != s.retry) {
					t.Fatalf("step %d: got %q retry %v, want %q retry %v", i, v.Kind, v.RetryAfter, s.kind, s.retry)
				}
				if s.kind != "" {
					want = append(want, s.kind)
				}
			}
			if fmt.Sprint(limited) != fmt.Sprint(want) {
				t.Errorf("Observer.Limited got %v, want %v", limited, want)
			}
		})
	}
}

// limitedKinds records the kinds an Observer is told of.
type limitedKinds []ratelimit.Kind

func (l *limitedKinds) Limited(k ratelimit.Kind) { *l = append(*l, k) }

// A flood of distinct addresses does not grow the table past its bound:
// new addresses share the overflow bucket until a sweep finds full buckets.
func TestAddressTableBounded(t *testing.T) {
	c := newClock()
	// No Observer: the refusals below are made with nil, which observes nothing.
	l := limits(c, func(cfg *ratelimit.Config) { cfg.MaxAddresses = 100 })
	refused := 0
	for i := range 10000 {
		if !l.AllowAddress(fmt.Sprintf("10.%d.%d.%d:1", i>>16&255, i>>8&255, i&255)).Allowed() {
			refused++
		}
	}
	if _, n := l.Len(); n != 100 {
		t.Errorf("%d address buckets, want the bound 100", n)
	}
	// 100 own buckets + the overflow's burst of 2.
	if want := 10000 - 100 - 2; refused != want {
		t.Errorf("%d refused, want %d", refused, want)
	}
	// Once the buckets refilled, a new address gets a bucket of its own.
	c.Add(3 * time.Second)
	if v := l.AllowAddress("192.0.2.9:1"); !v.Allowed() {
		t.Fatalf("after refill: %+v", v)
	}
	if v := l.AllowAddress("192.0.2.9:1"); !v.Allowed() {
		t.Fatalf("after refill, own bucket: %+v", v)
	}
	if _, n := l.Len(); n != 1 {
		t.Errorf("%d address buckets after the sweep, want 1", n)
	}
}

func TestAddressKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1:80":               "192.0.2.1",
		"[::ffff:192.0.2.1]:80":      "192.0.2.1",
		"[2001:db8:a:b:c:d:e:f]:443": "2001:db8:a:b::/64",
		"192.0.2.7":                  "192.0.2.7",
		"not an address":             "unknown",
		"":                           "unknown",
	} {
		if got := ratelimit.AddressKey(in); got != want {
			t.Errorf("AddressKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// stores are the real stores the sharing tests run on: SQLite always,
// PostgreSQL when PORTVAKT_TEST_POSTGRES_DSN is set.
func stores(t *testing.T) map[string]func(t *testing.T) store.Store {
	out := map[string]func(t *testing.T) store.Store{
		"sqlite": func(t *testing.T) store.Store {
			return open(t, sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: filepath.Join(t.TempDir(), "p.db")})
		},
	}
	if dsn := os.Getenv("PORTVAKT_TEST_POSTGRES_DSN"); dsn != "" {
		out["postgres"] = func(t *testing.T) store.Store {
			return open(t, sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: pgtest.FreshSchema(t, dsn), MaxOpenConns: 2})
		}
	}
	return out
}

func open(t *testing.T, cfg sqlstore.Config) store.Store {
	t.Helper()
	db, err := sqlstore.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return db
}

// simulate runs replicas sharing st on one pinned clock: a client sends
// perSecond requests a second for d, round robin over the replicas, and
// each replica takes its turn every 200 ms (staggered). It returns how many
// were admitted and refused.
func simulate(t *testing.T, st store.Store, replicas int, r ratelimit.Rate, perSecond float64, d time.Duration) (admitted, refused int) {
	t.Helper()
	c := newClock()
	ls := make([]*ratelimit.Limiter, replicas)
	for i := range ls {
		ls[i] = ratelimit.New(ratelimit.Config{
			Client: r, Org: ratelimit.Rate{PerSecond: 1000, Burst: 1000}, Address: r,
			Store: st, Replica: fmt.Sprintf("r%d", i), Now: c.Now,
		})
		if err := ls[i].Sync(t.Context()); err != nil { // the baseline turn
			t.Fatal(err)
		}
	}
	const step = time.Millisecond
	every := time.Duration(float64(time.Second) / perSecond)
	syncEvery := 200 * time.Millisecond
	var next time.Duration
	n := 0
	for el := time.Duration(0); el < d; el += step {
		for i, l := range ls {
			offset := (time.Duration(i) * syncEvery / time.Duration(replicas)).Truncate(step)
			if (el+offset)%syncEvery == 0 {
				if err := l.Sync(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
		}
		for el >= next {
			if ls[n%replicas].AllowClient("client", "org").Allowed() {
				admitted++
			} else {
				refused++
			}
			n++
			next += every
		}
		c.Add(step)
	}
	return admitted, refused
}

func TestSharedAcrossReplicas(t *testing.T) {
	r := ratelimit.Rate{PerSecond: 20, Burst: 10}
	const d = 10 * time.Second
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			t.Run("ok/three-times-the-rate-over-two-replicas", func(t *testing.T) {
				admitted, refused := simulate(t, open(t), 2, r, 3*r.PerSecond, d)
				ratio := float64(admitted) / (r.PerSecond * d.Seconds())
				t.Logf("%s: 3x rate over 2 replicas for %v: %d admitted, %d refused: %.3f x the rate", name, d, admitted, refused, ratio)
				if ratio < 0.9 || ratio > 1.2 {
					t.Errorf("admitted %.3f x the rate, want 0.9..1.2", ratio)
				}
			})
			t.Run("ok/three-times-the-rate-over-three-replicas", func(t *testing.T) {
				admitted, refused := simulate(t, open(t), 3, r, 3*r.PerSecond, d)
				ratio := float64(admitted) / (r.PerSecond * d.Seconds())
				t.Logf("%s: 3x rate over 3 replicas for %v: %d admitted, %d refused: %.3f x the rate", name, d, admitted, refused, ratio)
				if ratio < 0.9 || ratio > 1.25 {
					t.Errorf("admitted %.3f x the rate, want 0.9..1.25", ratio)
				}
			})
			t.Run("ok/under-the-rate-never-refused", func(t *testing.T) {
				admitted, refused := simulate(t, open(t), 2, r, 0.8*r.PerSecond, d)
				t.Logf("%s: 0.8x rate over 2 replicas for %v: %d admitted, %d refused", name, d, admitted, refused)
				if refused != 0 {
					t.Errorf("%d refused, want none", refused)
				}
			})
			t.Run("ok/unshared-replicas-admit-a-burst-each", func(t *testing.T) {
				// The baseline the sharing is measured against.
				c := newClock()
				admitted := 0
				for range 2 {
					l := ratelimit.New(ratelimit.Config{Client: r, Org: ratelimit.Rate{PerSecond: 1000, Burst: 1000}, Address: r, Now: c.Now})
					for range 30 {
						if l.AllowClient("client", "org").Allowed() {
							admitted++
						}
					}
				}
				if admitted != 2*r.Burst {
					t.Errorf("%d admitted by two unshared replicas at once, want %d", admitted, 2*r.Burst)
				}
			})
		})
	}
}

// A replica's first turn only takes a baseline: what others admitted
// before it started is not its debt; what they admit after is.
func TestSyncBaselineAndDebt(t *testing.T) {
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			c := newClock()
			r := ratelimit.Rate{PerSecond: 1, Burst: 5}
			mk := func(name string) *ratelimit.Limiter {
				return ratelimit.New(ratelimit.Config{Client: r, Org: ratelimit.Rate{PerSecond: 100, Burst: 100}, Address: r, Store: st, Replica: name, Now: c.Now})
			}
			a := mk("a")
			for range 5 {
				a.AllowClient("x", "o")
			}
			if err := a.Sync(t.Context()); err != nil {
				t.Fatal(err)
			}
			b := mk("b")
			if err := b.Sync(t.Context()); err != nil {
				t.Fatal(err)
			}
			if !b.AllowClient("x", "o").Allowed() {
				t.Fatal("b: refused after a baseline turn")
			}
			// a admits 0 more (empty), b spent 1: a's next turns take b's 1.
			c.Add(100 * time.Millisecond)
			if err := b.Sync(t.Context()); err != nil {
				t.Fatal(err)
			}
			if err := a.Sync(t.Context()); err != nil {
				t.Fatal(err)
			}
			// b sees nothing new from a (a admitted nothing since): b has 3
			// more tokens of its burst of 5.
			got := 0
			for range 10 {
				if b.AllowClient("x", "o").Allowed() {
					got++
				}
			}
			if got != 4 {
				t.Errorf("b admitted %d more, want 4 (its burst less the one it spent)", got)
			}
			// a's bucket was empty and took b's 1+4 as debt: after 2 s
			// (2 tokens) it is still in debt.
			c.Add(100 * time.Millisecond)
			if err := b.Sync(t.Context()); err != nil {
				t.Fatal(err)
			}
			if err := a.Sync(t.Context()); err != nil {
				t.Fatal(err)
			}
			c.Add(2 * time.Second)
			if v := a.AllowClient("x", "o"); v.Allowed() {
				t.Errorf("a admitted a request while in debt for what b admitted")
			}
		})
	}
}

// A counter restarts after its key was idle: a reader takes the new
// counter whole, not as a difference with the old one.
func TestSyncCounterRestart(t *testing.T) {
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			c := newClock()
			r := ratelimit.Rate{PerSecond: 1, Burst: 5}
			mk := func(name string) *ratelimit.Limiter {
				return ratelimit.New(ratelimit.Config{Client: r, Org: ratelimit.Rate{PerSecond: 100, Burst: 100}, Address: r,
					Store: st, Replica: name, Now: c.Now, IdleReset: 5 * time.Second})
			}
			a, b := mk("a"), mk("b")
			sync := func() {
				t.Helper()
				for _, l := range []*ratelimit.Limiter{a, b} {
					if err := l.Sync(t.Context()); err != nil {
						t.Fatal(err)
					}
				}
			}
			sync() // baselines
			c.Add(100 * time.Millisecond)
			for range 5 {
				a.AllowClient("x", "o")
			}
			sync()
			// Idle past the read window (2 x IdleReset): b forgets a's row,
			// and a's counter restarts, so b takes the 2 new admissions
			// whole (a counter that went on at 7 would be read as 7).
			for range 8 {
				c.Add(1500 * time.Millisecond)
				sync()
			}
			a.AllowClient("x", "o")
			a.AllowClient("x", "o")
			sync()
			got := 0
			for range 10 {
				if b.AllowClient("x", "o").Allowed() {
					got++
				}
			}
			// b's full bucket of 5 less a's 2 new admissions.
			if got != 3 {
				t.Errorf("b admitted %d, want 3", got)
			}
		})
	}
}
