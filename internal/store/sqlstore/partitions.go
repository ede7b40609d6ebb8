package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"time"
)

// The daily partitions of issued_tokens and issued_token_prefixes on
// PostgreSQL (see issuedschema.go).
//
// A partition is created days ahead (partitionsAhead), by the migration and
// then by every purge run, so an insert always finds one. The default
// partition is the safety net for a row whose day has none (the purger
// stopped for longer than that, a clock far off, rows before the oldest
// backfilled day): it is found by every query like any other row; when its
// day's partition is created its rows move there; past retention they are
// deleted row by row (PurgeIssuedTokens), as the only rows ever deleted.
//
// A new partition is built beside the table and attached (ATTACH PARTITION
// takes SHARE UPDATE EXCLUSIVE on the parent: inserts go on). Dropping one
// takes ACCESS EXCLUSIVE on the parent for a moment; a DROP that waits for
// a long audit query would hold every insert queued behind it, so each
// statement here runs under a short lock_timeout and a run that cannot get
// its lock gives up until the next.

// partitionLockTimeout bounds how long partition DDL waits for its locks
// (and so how long token inserts can queue behind it).
const partitionLockTimeout = 200 * time.Millisecond

// partitionedTables are partitioned alike by expires_at.
var partitionedTables = []string{"issued_tokens", "issued_token_prefixes"}

func partitionName(table string, day time.Time) string {
	return table + "_p" + day.Format("20060102")
}

var partitionNameRE = regexp.MustCompile(`^issued_tokens_p(\d{8})$`)

func pgTimeLiteral(t time.Time) string {
	return "'" + t.UTC().Format("2006-01-02 15:04:05") + "+00'"
}

// createDayPartitions makes sure both tables have their partition for
// [day, day+1), moving the rows the default partition holds for it.
func createDayPartitions(ctx context.Context, tx *sql.Tx, day time.Time) error {
	lo, hi := pgTimeLiteral(day), pgTimeLiteral(day.AddDate(0, 0, 1))
	for _, table := range partitionedTables {
		name := partitionName(table, day)
		var exists bool
		if err := tx.QueryRowContext(ctx, `SELECT to_regclass($1) IS NOT NULL`, name).Scan(&exists); err != nil {
			return err
		}
		if exists {
			continue
		}
		err := execAll(ctx, tx, []string{
			fmt.Sprintf(`CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS)`, name, table),
			// The constraint spares ATTACH its scan of the new table.
			fmt.Sprintf(`ALTER TABLE %s ADD CONSTRAINT %[1]s_range CHECK (expires_at >= %s AND expires_at < %s)`, name, lo, hi),
			fmt.Sprintf(`WITH moved AS (DELETE FROM %s_default WHERE expires_at >= %s AND expires_at < %s RETURNING *)
 INSERT INTO %s SELECT * FROM moved`, table, lo, hi, name),
			fmt.Sprintf(`ALTER TABLE %s ATTACH PARTITION %s FOR VALUES FROM (%s) TO (%s)`, table, name, lo, hi),
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// inPartitionTx runs fn in a transaction whose statements wait at most
// partitionLockTimeout for a lock.
func (s *Store) inPartitionTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.writerDB().BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`SET LOCAL lock_timeout = '%dms'`, partitionLockTimeout.Milliseconds())); err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// MaintainIssuedTokens is the purger's work on PostgreSQL besides row
// deletes: it creates the partitions up to partitionsAhead days after now,
// drops the partitions whose whole day expired before cutoff (returning
// how many rows went with them), and deletes the replay keys whose
// live_until is before now. On SQLite it does nothing.
//
// Retention on PostgreSQL is so rounded up to the end of a day: a row stays
// until its day's partition is dropped, at most a day after its cutoff.
func (s *Store) MaintainIssuedTokens(ctx context.Context, now, cutoff time.Time) (dropped int, err error) {
	if s.driver != DriverPostgres {
		return 0, nil
	}
	today := utcDay(now)
	for d := today; !d.After(today.AddDate(0, 0, partitionsAhead)); d = d.AddDate(0, 0, 1) {
		err := s.inPartitionTx(ctx, func(tx *sql.Tx) error { return createDayPartitions(ctx, tx, d) })
		if err != nil {
			return 0, wrap(err, "create issued-token partitions for %s", d.Format(time.DateOnly))
		}
	}
	days, err := s.partitionDays(ctx)
	if err != nil {
		return 0, err
	}
	for _, d := range days {
		if d.AddDate(0, 0, 1).After(cutoff) {
			break
		}
		n, err := s.dropDayPartitions(ctx, d)
		dropped += n
		if err != nil {
			return dropped, wrap(err, "drop issued-token partitions for %s", d.Format(time.DateOnly))
		}
	}
	for {
		res, err := s.writerDB().ExecContext(ctx, `DELETE FROM issued_token_replay WHERE (client_id, assertion_jti) IN
 (SELECT client_id, assertion_jti FROM issued_token_replay WHERE live_until < $1 ORDER BY live_until LIMIT 20000)`, now.UTC())
		if err != nil {
			return dropped, wrap(err, "purge replay keys")
		}
		if n, _ := res.RowsAffected(); n < 20000 {
			return dropped, nil
		}
	}
}

// partitionDays lists the days that have an issued_tokens partition,
// oldest first.
func (s *Store) partitionDays(ctx context.Context) ([]time.Time, error) {
	rows, err := s.writerDB().QueryContext(ctx, `SELECT c.relname FROM pg_inherits i
 JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'issued_tokens'::regclass ORDER BY c.relname`)
	if err != nil {
		return nil, wrap(err, "list issued-token partitions")
	}
	defer rows.Close()
	var days []time.Time
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, wrap(err, "list issued-token partitions")
		}
		m := partitionNameRE.FindStringSubmatch(name)
		if m == nil {
			continue // the default partition
		}
		d, err := time.Parse("20060102", m[1])
		if err != nil {
			continue
		}
		days = append(days, d)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(err, "list issued-token partitions")
	}
	return days, nil
}

// dropDayPartitions drops day's partitions of both tables and returns how
// many issued-token rows went.
func (s *Store) dropDayPartitions(ctx context.Context, day time.Time) (int, error) {
	var n int64
	err := s.inPartitionTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+partitionName("issued_tokens", day)).Scan(&n); err != nil {
			return err
		}
		for _, table := range partitionedTables {
			if _, err := tx.ExecContext(ctx, `DROP TABLE IF EXISTS `+partitionName(table, day)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return int(n), nil
}
