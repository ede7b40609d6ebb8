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

// Config tunes the purger. Every field works at its zero value.
type Config struct {
	Retention time.Duration // rows whose token expired longer ago are purged; default 90 days
	Interval  time.Duration // between runs; default 1m
	Batch     int           // rows per statement; default 1000
	MaxPerRun int           // rows per run, so one run never hogs the database; default 100 batches
	Now       func() time.Time
	Log       *slog.Logger
	// OnPurge, when set, is told how many rows each batch removed (metrics).
	OnPurge func(n int, err error)
}

func (c *Config) defaults() {
	if c.Retention == 0 {
		c.Retention = 90 * 24 * time.Hour
	}
	if c.Interval == 0 {
		c.Interval = time.Minute
	}
	if c.Batch == 0 {
		c.Batch = 1000
	}
	if c.MaxPerRun == 0 {
		c.MaxPerRun = 100 * c.Batch
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
}

// Once purges in batches until a batch comes back short or MaxPerRun rows
// are gone, and returns how many rows it removed.
func Once(ctx context.Context, s Store, c Config) (int, error) {
	c.defaults()
	cutoff := c.Now().Add(-c.Retention)
	total := 0
	for total < c.MaxPerRun {
		n, err := s.PurgeIssuedTokens(ctx, cutoff, c.Batch)
		if c.OnPurge != nil {
			c.OnPurge(n, err)
		}
		total += n
		if err != nil {
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
		if err != nil {
			c.Log.Warn("purge of issued tokens failed", "err", err, "purged", n)
		} else if n > 0 {
			c.Log.Info("purged issued tokens", "rows", n)
		}
	}
}
