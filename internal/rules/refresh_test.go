package rules_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/rules"
	"github.com/portvakt/portvakt/internal/store"
)

// runCache starts c.Run until the test ends.
func runCache(t *testing.T, c *rules.Cache) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// Refresh makes Run poll at once: with a poll interval of an hour, a write
// by another store is seen only because of it.
func TestCacheRefresh(t *testing.T) {
	path := newDB(t)
	mine := openStore(t, path)
	other := openStore(t, path)
	seed(t, mine)
	f := &faultyStore{Store: mine}
	reloaded := make(chan error, 16)
	c := rules.NewCache(f, rules.CacheConfig{
		PollInterval: time.Hour,
		Observer:     reloads(func(_ int64, _ time.Duration, err error) { reloaded <- err }),
	})
	old, err := c.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	<-reloaded
	runCache(t, c)

	t.Run("ok/sees-another-writer", func(t *testing.T) {
		setAccess(t, other, consumer, store.AccessApproved)
		start := time.Now()
		c.Refresh()
		select {
		case err := <-reloaded:
			if err != nil {
				t.Fatalf("reload: %v", err)
			}
		case <-time.After(5 * time.Second): // a bound on failure only
			t.Fatal("no reload after Refresh")
		}
		snap, err := c.Snapshot(t.Context())
		if err != nil || !snap.HasAccess("acme:a", consumer) || snap.Generation() <= old.Generation() {
			t.Fatalf("after Refresh: err %v, access %v, generation %d (was %d)", err, snap != nil && snap.HasAccess("acme:a", consumer), snap.Generation(), old.Generation())
		}
		t.Logf("reloaded %v after Refresh", time.Since(start))
	})

	t.Run("ok/failure-keeps-the-snapshot", func(t *testing.T) {
		before, err := c.Snapshot(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		f.fail.Store(true)
		c.Refresh()
		select {
		case err := <-reloaded: // the failed generation poll is reported
			if err == nil {
				t.Fatal("poll succeeded against a failing store")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no poll after Refresh")
		}
		snap, err := c.Snapshot(t.Context())
		if err != nil || snap != before {
			t.Fatalf("after a failed refresh: %p, %v; want the old snapshot %p and no error", snap, err, before)
		}
		f.fail.Store(false)
	})

	t.Run("ok/never-blocks", func(t *testing.T) {
		done := make(chan struct{})
		go func() {
			for range 1000 {
				c.Refresh()
			}
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Refresh blocked")
		}
	})
}

// Without Run, Refresh is a no-op and does not block.
func TestCacheRefreshWithoutRun(t *testing.T) {
	c := rules.NewCache(openStore(t, newDB(t)), rules.CacheConfig{})
	for range 3 {
		c.Refresh()
	}
}

// heldFullLoad holds PageClients, the last read of a full reload, once
// hold is set.
type heldFullLoad struct {
	store.Store
	hold atomic.Bool
	gate chan struct{}
	held chan struct{}
}

func (h *heldFullLoad) PageClients(ctx context.Context, f store.ClientFilter, p store.Page) ([]store.Client, error) {
	if h.hold.Load() {
		select {
		case h.held <- struct{}{}:
		default:
		}
		<-h.gate
	}
	return h.Store.PageClients(ctx, f, p)
}

// A full reload that only a poll asked for (hand-written SQL and a bump,
// made elsewhere) does not hold requests up: they get the current rules
// until it is done, then the new ones.
func TestCachePollFullReloadDoesNotBlock(t *testing.T) {
	path := newDB(t)
	mine := openStore(t, path)
	seedAll(t, mine)
	h := &heldFullLoad{Store: mine, gate: make(chan struct{}), held: make(chan struct{}, 1)}
	c := rules.NewCache(h, rules.CacheConfig{PollInterval: 10 * time.Millisecond})
	old, err := c.Snapshot(t.Context())
	if err != nil || !old.HasAccess("acme:a", consumer) {
		t.Fatalf("first load: %v", err)
	}
	h.hold.Store(true)
	runCache(t, c)
	released := false
	release := func() {
		if !released {
			released = true
			close(h.gate)
		}
	}
	t.Cleanup(release)

	sqlExec(t, path, "UPDATE access SET state = 'DENIED'")
	sqlExec(t, path, "UPDATE generation SET value = value + 1 WHERE id = 1")
	select {
	case <-h.held: // the poll's full reload is under way
	case <-time.After(5 * time.Second): // a bound on failure only
		t.Fatal("no full reload after the bump")
	}
	type result struct {
		snap *rules.Snapshot
		err  error
	}
	got := make(chan result, 1)
	go func() {
		snap, err := c.Snapshot(t.Context())
		got <- result{snap, err}
	}()
	select {
	case r := <-got:
		if r.err != nil || r.snap != old {
			t.Fatalf("during the full reload: %p, %v; want the current snapshot %p", r.snap, r.err, old)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Snapshot waited for a full reload that only a poll asked for")
	}
	release()
	if !eventually(t, c, 5*time.Second, func(s *rules.Snapshot) bool { return !s.HasAccess("acme:a", consumer) }) {
		t.Fatal("the full reload's rules were not published")
	}
}
