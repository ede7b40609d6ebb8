package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"
)

// NotifyChannel is the PostgreSQL channel on which every committed Update
// announces the new generation (the payload). PostgreSQL delivers a NOTIFY
// at commit and drops it on rollback, so a listener never hears of a change
// it cannot yet read. The channel is per database: stores in other schemas
// of the same database wake the listener too, which costs one extra
// generation read and nothing else.
const NotifyChannel = "portvakt_rules"

// notifyInTx queues the change notification inside Update's transaction
// (PostgreSQL only; on SQLite the generation poll is the only signal).
func (s *Store) notifyInTx(gtx *gorm.DB) error {
	if s.driver != DriverPostgres {
		return nil
	}
	if err := gtx.Exec("SELECT pg_notify(?, value::text) FROM generation WHERE id = 1", NotifyChannel).Error; err != nil {
		return wrap(err, "notify")
	}
	return nil
}

// ListenConfig configures Listen. Every field but OnChange works at its
// zero value.
type ListenConfig struct {
	// OnChange is called for every notification, and after every
	// (re)connect, since notifications sent while the listener was away are
	// lost. It is the work Listen exists for, not an observation (metrics
	// and traces go through Observers). It runs on the listening goroutine
	// and must not block: hand the work to someone else (rules.Cache.Refresh
	// does).
	OnChange func()
	// Log is told when the listening connection cannot be opened or is
	// lost; Listen retries after a backoff. Default slog.Default().
	Log *slog.Logger
	// MinBackoff and MaxBackoff bound the wait between reconnects, doubling
	// from the first to the second. Defaults 100ms and 5s.
	MinBackoff, MaxBackoff time.Duration
	// KeepAlive is how long the listener waits in silence before it checks
	// the connection with a round trip, so a half-open connection (the
	// server vanished without a FIN) is noticed. Default 10s.
	KeepAlive time.Duration
}

// listenAppName marks the listening connection in pg_stat_activity, unless
// the DSN names an application itself.
const listenAppName = "portvakt_listen"

// Listen holds one dedicated connection (outside the pool) that LISTENs on
// NotifyChannel and calls cfg.OnChange for each notification. When the
// connection fails it reconnects with backoff, forever: the database going
// away is an outage to ride out, not an error. It returns when ctx is done.
//
// On SQLite it returns nil at once: there is nothing to listen to, and
// rules.Cache's generation poll sees every writer.
func (s *Store) Listen(ctx context.Context, cfg ListenConfig) error {
	if s.driver != DriverPostgres {
		return nil
	}
	if cfg.OnChange == nil {
		return errors.New("sqlstore: listen: OnChange is required")
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(5*time.Second, cfg.MinBackoff)
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 10 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	pc, err := pgx.ParseConfig(s.dsn)
	if err != nil {
		// The DSN may hold a password: do not echo it.
		return errors.New("sqlstore: listen: cannot parse the DSN")
	}
	if pc.ConnectTimeout <= 0 {
		pc.ConnectTimeout = 5 * time.Second
	}
	if pc.RuntimeParams["application_name"] == "" {
		pc.RuntimeParams["application_name"] = listenAppName
	}
	backoff := cfg.MinBackoff
	for {
		connected, err := listenOnce(ctx, pc, cfg)
		if ctx.Err() != nil {
			return nil
		}
		if connected {
			backoff = cfg.MinBackoff // it worked for a while: retry soon
		}
		cfg.Log.Warn("rules change listener: connection lost, reconnecting", "err", wrap(err, "listen"))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, cfg.MaxBackoff)
	}
}

// listenOnce connects, LISTENs and relays notifications until the
// connection fails or ctx is done. connected says whether LISTEN succeeded.
func listenOnce(ctx context.Context, pc *pgx.ConnConfig, cfg ListenConfig) (connected bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, pc)
	if err != nil {
		return false, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	if err := roundTrip(ctx, conn, cfg.KeepAlive, "LISTEN "+pgx.Identifier{NotifyChannel}.Sanitize()); err != nil {
		return false, err
	}
	// Anything committed before LISTEN took effect was not announced to us.
	cfg.OnChange()
	for {
		wctx, cancel := context.WithTimeout(ctx, cfg.KeepAlive)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			if n != nil && n.Channel == NotifyChannel {
				cfg.OnChange()
			}
		case ctx.Err() != nil:
			return true, ctx.Err()
		case errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			// Quiet for KeepAlive: make sure the server is still there.
			if err := roundTrip(ctx, conn, cfg.KeepAlive, "SELECT 1"); err != nil {
				return true, err
			}
		default:
			return true, err
		}
	}
}

func roundTrip(ctx context.Context, conn *pgx.Conn, timeout time.Duration, sql string) error {
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := conn.Exec(rctx, sql); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}
