package rules_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/rules"
	"github.com/portvakt/portvakt/internal/store"
	"github.com/portvakt/portvakt/internal/store/sqlstore"
)

// openStore opens (and migrates) the SQLite database at path.
func openStore(t testing.TB, path string) *sqlstore.Store {
	t.Helper()
	ctx := context.Background()
	s, err := sqlstore.Open(ctx, sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: path})
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate %s: %v", path, err)
	}
	return s
}

func newDB(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "portvakt.db")
}

// seed writes one scope and one client; no access yet.
func seed(t testing.TB, s store.Store) {
	t.Helper()
	err := s.Update(context.Background(), func(tx store.Tx) error {
		if err := tx.CreateScope(context.Background(), store.Scope{
			Name: "acme:a", Prefix: "acme", Subscope: "a", Description: "a", Active: true,
			Visibility: store.VisibilityPublic, OwnerOrgno: provider,
		}); err != nil {
			return err
		}
		return tx.CreateClient(context.Background(), store.Client{
			ClientID: clientID, ClientOrgno: consumer, ClientName: "c", Description: "c",
			IntegrationType: "maskinporten", TokenEndpointAuthMethod: "private_key_jwt",
			Scopes: []string{"acme:a"}, Active: true,
		})
	})
	if err != nil {
		t.Fatalf("seed: %v", err)
	}
}

func setAccess(t testing.TB, s store.Store, org, state string) {
	t.Helper()
	err := s.Update(t.Context(), func(tx store.Tx) error {
		return tx.PutAccess(t.Context(), store.Access{Scope: "acme:a", ConsumerOrgno: org, OwnerOrgno: provider, State: state})
	})
	if err != nil {
		t.Fatalf("put access: %v", err)
	}
}

// faultyStore is the real store with two test controls: reads can be made
// to fail as if the database were down, and a reload can be held at a gate
// so it stays in flight while the test acts.
type faultyStore struct {
	store.Store
	fail  atomic.Bool
	loads atomic.Int32  // first PageScopes and ListChanges calls: one per reload
	gate  chan struct{} // when non-nil, PageClients and ListChanges wait for it to close
	held  chan struct{} // signalled when a reload reaches the gate
}

func (f *faultyStore) wait() {
	if f.gate != nil {
		select {
		case f.held <- struct{}{}:
		default:
		}
		<-f.gate
	}
}

func (f *faultyStore) Generation(ctx context.Context) (int64, error) {
	if f.fail.Load() {
		return 0, store.ErrUnavailable
	}
	return f.Store.Generation(ctx)
}

// PageScopes is the first list a full reload reads.
func (f *faultyStore) PageScopes(ctx context.Context, sf store.ScopeFilter, p store.Page) ([]store.Scope, error) {
	if p.After == nil {
		f.loads.Add(1)
	}
	if f.fail.Load() {
		return nil, store.ErrUnavailable
	}
	return f.Store.PageScopes(ctx, sf, p)
}

// PageClients is the last list a full reload reads: holding it there keeps
// the reload in flight after it has read the access rows.
func (f *faultyStore) PageClients(ctx context.Context, cf store.ClientFilter, p store.Page) ([]store.Client, error) {
	f.wait()
	return f.Store.PageClients(ctx, cf, p)
}

// ListChanges is the first read of a catch-up; it reads the generation
// there, so holding it after that read keeps a reload in flight that may
// miss a write made meanwhile.
func (f *faultyStore) ListChanges(ctx context.Context, after int64, limit int) ([]store.Change, int64, error) {
	f.loads.Add(1)
	if f.fail.Load() {
		return nil, 0, store.ErrUnavailable
	}
	ch, gen, err := f.Store.ListChanges(ctx, after, limit)
	f.wait()
	return ch, gen, err
}

func (f *faultyStore) GetAccess(ctx context.Context, scope, org string) (store.Access, error) {
	if f.fail.Load() {
		return store.Access{}, store.ErrUnavailable
	}
	return f.Store.GetAccess(ctx, scope, org)
}

func TestCacheFirstSnapshotLoads(t *testing.T) {
	s := openStore(t, newDB(t))
	seed(t, s)
	c := rules.NewCache(s, rules.CacheConfig{})
	snap, err := c.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	gen, _ := s.Generation(t.Context())
	if snap.Generation() != gen || gen == 0 {
		t.Errorf("snapshot generation = %d, store's = %d", snap.Generation(), gen)
	}
	if _, ok := snap.Scope("acme:a"); !ok {
		t.Error("seeded scope missing")
	}
	if cl, ok := snap.Client(clientID); !ok || cl.ClientOrgno != consumer {
		t.Errorf("Client = %+v, %v", cl, ok)
	}
	again, err := c.Snapshot(t.Context())
	if err != nil || again != snap {
		t.Errorf("second Snapshot = %p, %v; want the same snapshot %p", again, err, snap)
	}
}

func TestCacheInvalidate(t *testing.T) {
	s := openStore(t, newDB(t))
	seed(t, s)
	c := rules.NewCache(s, rules.CacheConfig{})
	old, err := c.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}

	setAccess(t, s, consumer, store.AccessApproved)
	if snap, _ := c.Snapshot(t.Context()); snap != old {
		t.Fatal("Snapshot reloaded without Invalidate or a poll: the cache does nothing")
	}
	c.Invalidate()
	snap, err := c.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !snap.HasAccess("acme:a", consumer) {
		t.Error("the write before Invalidate is not in the next snapshot")
	}
	if snap.Generation() <= old.Generation() {
		t.Errorf("generation %d after the write, %d before", snap.Generation(), old.Generation())
	}

	// And back: revoking is seen at once too.
	setAccess(t, s, consumer, store.AccessDenied)
	c.Invalidate()
	if snap, err := c.Snapshot(t.Context()); err != nil || snap.HasAccess("acme:a", consumer) {
		t.Errorf("after DENIED + Invalidate: HasAccess = %v, err %v", snap != nil && snap.HasAccess("acme:a", consumer), err)
	}
}

// A write by another process (another Store on the same file) is picked up
// by Run within about one PollInterval.
func TestCacheRunPicksUpOtherWriter(t *testing.T) {
	path := newDB(t)
	mine := openStore(t, path)
	other := openStore(t, path)
	seed(t, mine)

	reloaded := make(chan int64, 16)
	const interval = 20 * time.Millisecond
	c := rules.NewCache(mine, rules.CacheConfig{
		PollInterval: interval,
		Observer: reloads(func(gen int64, _ time.Duration, err error) {
			if err == nil {
				reloaded <- gen
			}
		}),
	})
	if _, err := c.Snapshot(t.Context()); err != nil {
		t.Fatal(err)
	}
	<-reloaded

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	start := time.Now()
	setAccess(t, other, consumer, store.AccessApproved)
	want, _ := other.Generation(t.Context())
	deadline := time.After(5 * time.Second) // only a bound on failure
	for {
		select {
		case gen := <-reloaded:
			if gen < want {
				continue
			}
			snap, err := c.Snapshot(t.Context())
			if err != nil || !snap.HasAccess("acme:a", consumer) {
				t.Fatalf("after reload to generation %d: HasAccess false, err %v", gen, err)
			}
			t.Logf("picked up after %v (poll interval %v)", time.Since(start), interval)
			return
		case <-deadline:
			t.Fatalf("Run did not pick up generation %d", want)
		}
	}
}

func TestCacheRunStops(t *testing.T) {
	s := openStore(t, newDB(t))
	c := rules.NewCache(s, rules.CacheConfig{PollInterval: time.Millisecond})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
}

// Concurrent Snapshot calls during a reload share it: one load.
func TestCacheConcurrentSnapshotsLoadOnce(t *testing.T) {
	for _, tc := range []struct {
		name       string
		invalidate bool // false: the first load
	}{
		{"ok/first load", false},
		{"ok/after Invalidate", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, newDB(t))
			seed(t, s)
			f := &faultyStore{Store: s}
			c := rules.NewCache(f, rules.CacheConfig{})
			if tc.invalidate {
				if _, err := c.Snapshot(t.Context()); err != nil {
					t.Fatal(err)
				}
				setAccess(t, s, consumer, store.AccessApproved)
				c.Invalidate()
			}
			f.loads.Store(0)
			f.gate, f.held = make(chan struct{}), make(chan struct{}, 1)

			const callers = 32
			snaps := make([]*rules.Snapshot, callers)
			errs := make([]error, callers)
			var started, finished sync.WaitGroup
			for i := range callers {
				started.Add(1)
				finished.Add(1)
				go func() {
					defer finished.Done()
					started.Done()
					snaps[i], errs[i] = c.Snapshot(t.Context())
				}()
			}
			started.Wait()
			<-f.held // one reload is in flight and held
			// Give the other callers time to reach the shared reload. A late
			// caller finds the new snapshot and does not load either, so this
			// pause cannot make the test fail, only (rarely) prove less.
			time.Sleep(20 * time.Millisecond)
			close(f.gate)
			finished.Wait()

			if n := f.loads.Load(); n != 1 {
				t.Errorf("%d loads for %d concurrent callers, want 1", n, callers)
			}
			for i := range callers {
				if errs[i] != nil || snaps[i] != snaps[0] {
					t.Fatalf("caller %d: %p, %v; want the shared snapshot %p", i, snaps[i], errs[i], snaps[0])
				}
			}
			if tc.invalidate && !snaps[0].HasAccess("acme:a", consumer) {
				t.Error("the shared reload misses the write")
			}
		})
	}
}

// An Invalidate while a reload that started earlier is in flight must not
// be satisfied by that reload: it may have read the records before the write.
func TestCacheInvalidateDuringReload(t *testing.T) {
	s := openStore(t, newDB(t))
	seed(t, s)
	f := &faultyStore{Store: s, gate: make(chan struct{}), held: make(chan struct{}, 1)}
	c := rules.NewCache(f, rules.CacheConfig{})

	first := make(chan error, 1)
	go func() { _, err := c.Snapshot(t.Context()); first <- err }()
	<-f.held // the first load has read the access rows and waits

	setAccess(t, s, consumer, store.AccessApproved)
	c.Invalidate()
	second := make(chan *rules.Snapshot, 1)
	go func() {
		snap, err := c.Snapshot(t.Context())
		if err != nil {
			t.Error(err)
		}
		second <- snap
	}()
	time.Sleep(10 * time.Millisecond) // let it join the held reload, if it would
	close(f.gate)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if snap := <-second; snap == nil || !snap.HasAccess("acme:a", consumer) {
		t.Error("the Snapshot after Invalidate was served by a reload that began before the write")
	}
}

func TestCacheReloadFailure(t *testing.T) {
	t.Run("fail/no snapshot yet", func(t *testing.T) {
		s := openStore(t, newDB(t))
		f := &faultyStore{Store: s}
		f.fail.Store(true)
		c := rules.NewCache(f, rules.CacheConfig{})
		if snap, err := c.Snapshot(t.Context()); !errors.Is(err, store.ErrUnavailable) || snap != nil {
			t.Errorf("Snapshot = %v, %v; want ErrUnavailable", snap, err)
		}
		f.fail.Store(false)
		if _, err := c.Snapshot(t.Context()); err != nil {
			t.Errorf("Snapshot after the store came back: %v", err)
		}
	})

	// An in-process write owes read-your-writes: fail (503), do not serve
	// the rules it just changed.
	t.Run("fail/after Invalidate", func(t *testing.T) {
		s := openStore(t, newDB(t))
		seed(t, s)
		f := &faultyStore{Store: s}
		c := rules.NewCache(f, rules.CacheConfig{})
		if _, err := c.Snapshot(t.Context()); err != nil {
			t.Fatal(err)
		}
		setAccess(t, s, consumer, store.AccessApproved)
		c.Invalidate()
		f.fail.Store(true)
		for range 2 { // and stays failed, not stale, until a reload works
			if snap, err := c.Snapshot(t.Context()); !errors.Is(err, store.ErrUnavailable) || snap != nil {
				t.Fatalf("Snapshot = %v, %v; want ErrUnavailable", snap, err)
			}
		}
		f.fail.Store(false)
		snap, err := c.Snapshot(t.Context())
		if err != nil || !snap.HasAccess("acme:a", consumer) {
			t.Errorf("after recovery: %v, HasAccess %v", err, snap != nil && snap.HasAccess("acme:a", consumer))
		}
	})

	// A failed poll keeps the old rules and is retried on the next tick.
	t.Run("ok/poll failure keeps the old snapshot", func(t *testing.T) {
		path := newDB(t)
		s := openStore(t, path)
		seed(t, s)
		f := &faultyStore{Store: s}
		results := make(chan error, 64)
		c := rules.NewCache(f, rules.CacheConfig{
			PollInterval: 10 * time.Millisecond,
			Observer:     reloads(func(_ int64, _ time.Duration, err error) { results <- err }),
		})
		old, err := c.Snapshot(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		<-results

		f.fail.Store(true)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { c.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()

		setAccess(t, openStore(t, path), consumer, store.AccessApproved)
		if err := waitFor(t, results, func(err error) bool { return err != nil }); !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("Reload error = %v, want ErrUnavailable", err)
		}
		if snap, err := c.Snapshot(t.Context()); err != nil || snap != old {
			t.Fatalf("Snapshot during poll failures = %p, %v; want the old snapshot %p", snap, err, old)
		}
		f.fail.Store(false)
		waitFor(t, results, func(err error) bool { return err == nil })
		if snap, err := c.Snapshot(t.Context()); err != nil || !snap.HasAccess("acme:a", consumer) {
			t.Errorf("after the store came back: %v, HasAccess false", err)
		}
	})
}

// waitFor returns the first value from ch that ok accepts, within a bound
// that only matters when the test fails.
func waitFor(t *testing.T, ch <-chan error, ok func(error) bool) error {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case err := <-ch:
			if ok(err) {
				return err
			}
		case <-deadline:
			t.Fatal("timed out waiting for a reload")
			return nil
		}
	}
}

func TestCacheReloadTimesWithNow(t *testing.T) {
	s := openStore(t, newDB(t))
	var calls atomic.Int64
	clock := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var took time.Duration
	c := rules.NewCache(s, rules.CacheConfig{
		// Each reading of the clock moves it one second on.
		Now:      func() time.Time { return clock.Add(time.Duration(calls.Add(1)) * time.Second) },
		Observer: reloads(func(_ int64, d time.Duration, _ error) { took = d }),
	})
	if _, err := c.Snapshot(t.Context()); err != nil {
		t.Fatal(err)
	}
	if took != time.Second {
		t.Errorf("Reload took = %v, want 1s from the injected clock", took)
	}
}

func BenchmarkSnapshotHot(b *testing.B) {
	s := openStore(b, newDB(b))
	seed(b, s)
	c := rules.NewCache(s, rules.CacheConfig{})
	if _, err := c.Snapshot(b.Context()); err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Snapshot(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSnapshotHotParallel(b *testing.B) {
	s := openStore(b, newDB(b))
	seed(b, s)
	c := rules.NewCache(s, rules.CacheConfig{})
	if _, err := c.Snapshot(b.Context()); err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Snapshot(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// reloads is an Observer that passes every reload to the function and
// ignores lookups.
type reloads func(gen int64, took time.Duration, err error)

func (f reloads) Reload(gen int64, took time.Duration, err error) { f(gen, took, err) }
func (reloads) Lookup(bool)                                       {}

// lookups is an Observer that counts the lookups.
type lookups struct{ hits, misses atomic.Int64 }

func (*lookups) Reload(int64, time.Duration, error) {}
func (l *lookups) Lookup(hit bool) {
	if hit {
		l.hits.Add(1)
	} else {
		l.misses.Add(1)
	}
}

func TestObserverIsToldOfLookups(t *testing.T) {
	s := openStore(t, newDB(t))
	seed(t, s)
	var l lookups
	c := rules.NewCache(s, rules.CacheConfig{Observer: &l})
	for range 3 {
		if _, err := c.Snapshot(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	c.Invalidate()
	if _, err := c.Snapshot(t.Context()); err != nil {
		t.Fatal(err)
	}
	// The first load and the one after Invalidate miss; the others hit.
	if l.hits.Load() != 2 || l.misses.Load() != 2 {
		t.Fatalf("hits %d misses %d, want 2 and 2", l.hits.Load(), l.misses.Load())
	}
}
