package rules_test

import (
	"context"
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
		OnReload:     func(_ int64, _ time.Duration, err error) { reloaded <- err },
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
