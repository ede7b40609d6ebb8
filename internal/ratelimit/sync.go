package ratelimit

import (
	"context"
	"time"

	"github.com/portvakt/portvakt/internal/store"
)

// Run shares the buckets every SyncInterval (when a store is set) and sweeps
// idle buckets, until ctx is done.
func (l *Limiter) Run(ctx context.Context) {
	tick := time.NewTicker(l.cfg.SyncInterval)
	defer tick.Stop()
	lastSweep := l.cfg.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if l.cfg.Store != nil {
			sctx, cancel := context.WithTimeout(ctx, max(l.cfg.SyncInterval*5, time.Second))
			err := l.Sync(sctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				l.logFailure(err)
			}
		}
		if now := l.cfg.Now(); now.Sub(lastSweep) >= 10*time.Second {
			lastSweep = now
			l.known.sweep(now)
			l.addresses.sweep(now)
		}
	}
}

// logFailure logs a failed turn, at most every 10 s.
func (l *Limiter) logFailure(err error) {
	l.syncMu.Lock()
	now := l.cfg.Now()
	log := now.Sub(l.failLog) >= 10*time.Second
	if log {
		l.failLog = now
	}
	l.syncMu.Unlock()
	if log {
		l.cfg.Log.Warn("rate limits: cannot share with the other replicas; limiting locally", "err", err)
	}
}

// window is how far back a turn reads the others' counters: a counter not
// updated for longer has restarted (IdleReset) before its next update.
func (l *Limiter) window() time.Duration { return 2 * l.cfg.IdleReset }

type pending struct {
	b     *bucket
	start time.Time
	n     int64
}

// Sync takes one turn: it publishes the counters that changed, reads what
// the other replicas admitted since the previous turn, and takes that from
// the local buckets.
func (l *Limiter) Sync(ctx context.Context) error {
	if l.cfg.Store == nil {
		return nil
	}
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	now := l.cfg.Now()

	var counts []store.RateCount
	var sent []pending
	l.known.mu.Lock()
	for key, b := range l.known.m {
		if b.admitted != b.published {
			counts = append(counts, store.RateCount{Key: key, Started: b.start, Admitted: b.admitted})
			sent = append(sent, pending{b, b.start, b.admitted})
		}
	}
	l.known.mu.Unlock()

	rows, err := l.cfg.Store.ExchangeRateCounts(ctx, store.RateExchange{
		Replica: l.cfg.Replica, Counts: counts, Now: now,
		Since: now.Add(-l.window()), ExpireBefore: now.Add(-l.cfg.ExpireAfter),
	})
	if err != nil {
		return err
	}
	// A first turn, or one after a gap as long as the window, cannot tell
	// new counts from old: it only takes a baseline.
	baseline := l.lastSync.IsZero() || now.Sub(l.lastSync) >= l.window()
	l.lastSync = now
	debt := map[string]int64{}
	seen := make(map[peerKey]store.RateCount, len(rows))
	for _, r := range rows {
		pk := peerKey{r.Replica, r.Key}
		prev, ok := l.seen[pk]
		seen[pk] = r
		if baseline {
			continue
		}
		d := r.Admitted
		if ok && prev.Started.Equal(r.Started) {
			d = r.Admitted - prev.Admitted
		}
		if d > 0 {
			debt[r.Key] += d
		}
	}
	l.seen = seen

	l.known.mu.Lock()
	defer l.known.mu.Unlock()
	for _, p := range sent {
		if p.b.start.Equal(p.start) && p.b.published < p.n {
			p.b.published = p.n
		}
	}
	for key, n := range debt {
		if len(key) < 3 || (key[:2] != "c:" && key[:2] != "o:") {
			continue
		}
		r := l.rateOf(key)
		l.known.get(key, r, now).charge(now, n)
	}
	return nil
}

// charge takes n tokens that other replicas admitted, letting the bucket go
// into debt down to -(burst + rate x 1 s).
func (b *bucket) charge(now time.Time, n int64) {
	floor := -(float64(b.r.Burst) + b.r.PerSecond)
	room := b.lim.TokensAt(now) - floor
	if room <= 0 {
		return
	}
	n = min(n, int64(room))
	for n > 0 {
		c := min(n, int64(b.r.Burst))
		b.lim.ReserveN(now, int(c))
		n -= c
	}
}
