package purge

import (
	"context"
	"log/slog"
	"time"
)

// Store is what the purger needs of the store.
type Store interface {
	PurgeIssuedTokens(ctx context.Context, cutoff time.Time, limit int) (int, error)
}

// ProofPurger is a store that keeps DPoP proofs for their replay check:
// PurgeDPoPProofs deletes at most limit proofs whose window ended before
// cutoff.
type ProofPurger interface {
	PurgeDPoPProofs(ctx context.Context, cutoff time.Time, limit int) (int, error)
}

// SessionPurger is a store that keeps the web console's sessions:
// PurgeConsoleSessions deletes at most limit sessions (and logins under
// way) that expired before cutoff.
type SessionPurger interface {
	PurgeConsoleSessions(ctx context.Context, cutoff time.Time, limit int) (int, error)
}

// Maintainer is a store whose issued tokens live in time partitions
// (PostgreSQL): MaintainIssuedTokens creates the partitions ahead of now,
// drops those wholly before cutoff and returns how many rows went with them.
type Maintainer interface {
	MaintainIssuedTokens(ctx context.Context, now, cutoff time.Time) (int, error)
}

// SpaceReclaimer is a store that gives freed pages back in steps (SQLite's
// incremental vacuum): ReclaimSpace frees up to pages pages and returns how
// many free pages are left.
type SpaceReclaimer interface {
	ReclaimSpace(ctx context.Context, pages int) (int, error)
}

// Config tunes the purger. Every field works at its zero value.
type Config struct {
	Retention time.Duration // rows whose token expired longer ago are purged; default 90 days
	Interval  time.Duration // between runs; default 1m
	Batch     int           // rows per statement; default 500
	MaxPerRun int           // rows per run, so one run never hogs the database; default 200 batches
	// WriterShare is the most of the store's time the purge's steps take:
	// after a step that took d it pauses d*(1-WriterShare)/WriterShare.
	// Default 0.05; 1 means no pauses.
	WriterShare float64
	// VacuumPages is how many free pages one incremental-vacuum step gives
	// back (SpaceReclaimer); default 256 (1 MiB of 4 KiB pages).
	VacuumPages int
	Now         func() time.Time
	// Sleep pauses for d or until ctx is done (tests pin it with Now);
	// default a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	Log   *slog.Logger
	// Observer is told of every batch; nil observes nothing.
	Observer Observer
}

// Observer is told what the purger does (metrics). Its methods run on the
// purging goroutine and must not block.
type Observer interface {
	// Purged is told how many rows one step removed (a batch of deletes,
	// or a partition housekeeping that dropped rows or failed) and its error.
	Purged(n int, err error)
}

// nopObserver observes nothing.
type nopObserver struct{}

func (nopObserver) Purged(int, error) {}

func (c *Config) defaults() {
	if c.Retention == 0 {
		c.Retention = 90 * 24 * time.Hour
	}
	if c.Interval == 0 {
		c.Interval = time.Minute
	}
	if c.Batch == 0 {
		c.Batch = 500
	}
	if c.MaxPerRun == 0 {
		c.MaxPerRun = 200 * c.Batch
	}
	if c.WriterShare <= 0 || c.WriterShare > 1 {
		c.WriterShare = 0.05
	}
	if c.VacuumPages == 0 {
		c.VacuumPages = 256
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Sleep == nil {
		c.Sleep = sleep
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// pacer times the purge's steps and pauses after each so that they take at
// most share of the time.
type pacer struct {
	c     *Config
	start time.Time
}

func (p *pacer) begin() { p.start = p.c.Now() }

// end pauses after the step begun last.
func (p *pacer) end(ctx context.Context) error {
	took := p.c.Now().Sub(p.start)
	if took <= 0 || p.c.WriterShare >= 1 {
		return ctx.Err()
	}
	return p.c.Sleep(ctx, time.Duration(float64(took)*(1-p.c.WriterShare)/p.c.WriterShare))
}

// Once runs the partition housekeeping when the store has partitions, then
// purges in paced batches until a batch comes back short or MaxPerRun rows
// are gone, giving freed space back as it goes, and returns how many rows it
// removed.
func Once(ctx context.Context, s Store, c Config) (int, error) {
	c.defaults()
	now := c.Now()
	cutoff := now.Add(-c.Retention)
	total := 0
	if m, ok := s.(Maintainer); ok {
		n, err := m.MaintainIssuedTokens(ctx, now, cutoff)
		if n > 0 || err != nil {
			c.Observer.Purged(n, err)
		}
		total += n
		if err != nil {
			return total, err
		}
	}
	r, _ := s.(SpaceReclaimer)
	p := pacer{c: &c}
	free := 0
	for total < c.MaxPerRun {
		p.begin()
		n, err := s.PurgeIssuedTokens(ctx, cutoff, c.Batch)
		c.Observer.Purged(n, err)
		total += n
		if err != nil {
			return total, err
		}
		if r != nil && n > 0 {
			if free, err = r.ReclaimSpace(ctx, c.VacuumPages); err != nil {
				return total, err
			}
		}
		if err := p.end(ctx); err != nil {
			return total, err
		}
		if n < c.Batch {
			break
		}
	}
	if pp, ok := s.(ProofPurger); ok {
		n, err := purgeProofs(ctx, pp, now, &c, &p)
		total += n
		if err != nil {
			return total, err
		}
	}
	if sp, ok := s.(SessionPurger); ok {
		n, err := purgeBatches(ctx, sp.PurgeConsoleSessions, now, &c, &p)
		total += n
		if err != nil {
			return total, err
		}
	}
	// The pages freed by the deletes, left over from the steps above, go
	// back in paced steps too, at most a run's worth.
	for steps := 0; r != nil && free > 0 && steps < c.MaxPerRun/c.Batch; steps++ {
		p.begin()
		var err error
		if free, err = r.ReclaimSpace(ctx, c.VacuumPages); err != nil {
			return total, err
		}
		if err := p.end(ctx); err != nil {
			return total, err
		}
	}
	return total, nil
}

// purgeProofs deletes the DPoP proofs whose window has ended (they are of
// no use once their iat is too old to be accepted), in paced batches, at
// most MaxPerRun.
func purgeProofs(ctx context.Context, pp ProofPurger, now time.Time, c *Config, p *pacer) (int, error) {
	return purgeBatches(ctx, pp.PurgeDPoPProofs, now, c, p)
}

// purgeBatches runs purge (PurgeDPoPProofs, PurgeConsoleSessions) in paced
// batches until one comes back short, at most MaxPerRun rows.
func purgeBatches(ctx context.Context, purge func(ctx context.Context, cutoff time.Time, limit int) (int, error), now time.Time, c *Config, p *pacer) (int, error) {
	total := 0
	for total < c.MaxPerRun {
		p.begin()
		n, err := purge(ctx, now, c.Batch)
		if n > 0 || err != nil {
			c.Observer.Purged(n, err)
		}
		total += n
		if err != nil {
			return total, err
		}
		if err := p.end(ctx); err != nil {
			return total, err
		}
		if n < c.Batch {
			break
		}
	}
	return total, nil
}

// Run purges every Interval until ctx is done.
func Run(ctx context.Context, s Store, c Config) {
	c.defaults()
	t := time.NewTicker(c.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := Once(ctx, s, c)
		if err != nil && ctx.Err() == nil {
			c.Log.Warn("purge of issued tokens failed", "err", err, "purged", n)
		} else if n > 0 {
			c.Log.Info("purged issued tokens", "rows", n)
		}
	}
}
