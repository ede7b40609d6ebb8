package sqlstore

import (
	"context"
	"database/sql"
	"strings"

	"github.com/portvakt/portvakt/internal/store"
)

const (
	rateUpsertPrefix = `INSERT INTO rate_limit_counts (replica, limit_key, started_at, admitted, updated_at) VALUES `
	rateUpsertSuffix = ` ON CONFLICT (replica, limit_key) DO UPDATE SET started_at = excluded.started_at,
 admitted = excluded.admitted, updated_at = excluded.updated_at`
	// A replica's own rows are never deleted by its own turn: the upsert
	// may write the same row in the same statement.
	rateExpire = `DELETE FROM rate_limit_counts WHERE updated_at < ? AND replica <> ?`
	rateSelect = `SELECT replica, limit_key, started_at, admitted, updated_at FROM rate_limit_counts
 WHERE replica <> ? AND updated_at >= ? ORDER BY updated_at DESC LIMIT ?`
)

// ExchangeRateCounts is one replica's turn in sharing rate limits (see
// store.Store). On PostgreSQL the upsert, the expiry and the read are one
// statement (data-modifying CTEs: one round trip per sync, whatever the
// number of replicas); a turn with more than store.MaxRateCountsPerStatement
// counters writes the rest in statements before it. On SQLite they are one
// transaction on the writer connection.
func (s *Store) ExchangeRateCounts(ctx context.Context, x store.RateExchange) ([]store.RateCount, error) {
	limit := x.Limit
	if limit <= 0 {
		limit = store.DefaultRateCountLimit
	}
	if x.Since.Before(x.ExpireBefore) {
		// On PostgreSQL the read sees the rows the same statement deletes.
		x.Since = x.ExpireBefore
	}
	chunks := chunkCounts(x.Counts)
	if s.driver == DriverPostgres {
		return s.exchangeRatePostgres(ctx, x, chunks, limit)
	}
	return s.exchangeRateSQLite(ctx, x, chunks, limit)
}

func chunkCounts(c []store.RateCount) [][]store.RateCount {
	var out [][]store.RateCount
	for len(c) > 0 {
		n := min(len(c), store.MaxRateCountsPerStatement)
		out = append(out, c[:n])
		c = c[n:]
	}
	return out
}

// upsertRates is the multi-row upsert of one chunk and its arguments.
func upsertRates(x store.RateExchange, c []store.RateCount) (string, []any) {
	var b strings.Builder
	b.WriteString(rateUpsertPrefix)
	args := make([]any, 0, 5*len(c))
	for i, rc := range c {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?)")
		args = append(args, x.Replica, rc.Key, ts(rc.Started), rc.Admitted, ts(x.Now))
	}
	b.WriteString(rateUpsertSuffix)
	return b.String(), args
}

func (s *Store) exchangeRatePostgres(ctx context.Context, x store.RateExchange, chunks [][]store.RateCount, limit int) ([]store.RateCount, error) {
	db := s.writerDB()
	for len(chunks) > 1 {
		q, args := upsertRates(x, chunks[0])
		if _, err := db.ExecContext(ctx, placeholders(s.driver, q), args...); err != nil {
			return nil, wrap(err, "exchange rate counts")
		}
		chunks = chunks[1:]
	}
	var ctes []string
	var args []any
	if len(chunks) == 1 {
		q, a := upsertRates(x, chunks[0])
		ctes = append(ctes, "up AS ("+q+")")
		args = append(args, a...)
	}
	if !x.ExpireBefore.IsZero() {
		ctes = append(ctes, "gone AS ("+rateExpire+")")
		args = append(args, ts(x.ExpireBefore), x.Replica)
	}
	q := rateSelect
	if len(ctes) > 0 {
		q = "WITH " + strings.Join(ctes, ", ") + " " + q
	}
	args = append(args, x.Replica, ts(x.Since), limit)
	rows, err := db.QueryContext(ctx, placeholders(s.driver, q), args...)
	if err != nil {
		return nil, wrap(err, "exchange rate counts")
	}
	return scanRateCounts(rows)
}

func (s *Store) exchangeRateSQLite(ctx context.Context, x store.RateExchange, chunks [][]store.RateCount, limit int) (_ []store.RateCount, err error) {
	tx, err := s.writerDB().BeginTx(ctx, nil)
	if err != nil {
		return nil, wrap(err, "exchange rate counts: begin")
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if !x.ExpireBefore.IsZero() {
		if _, err := tx.ExecContext(ctx, rateExpire, ts(x.ExpireBefore), x.Replica); err != nil {
			return nil, wrap(err, "exchange rate counts: expire")
		}
	}
	for _, c := range chunks {
		q, args := upsertRates(x, c)
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return nil, wrap(err, "exchange rate counts: write")
		}
	}
	rows, err := tx.QueryContext(ctx, rateSelect, x.Replica, ts(x.Since), limit)
	if err != nil {
		return nil, wrap(err, "exchange rate counts: read")
	}
	out, err := scanRateCounts(rows)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, wrap(err, "exchange rate counts: commit")
	}
	return out, nil
}

func scanRateCounts(rows *sql.Rows) ([]store.RateCount, error) {
	defer rows.Close()
	var out []store.RateCount
	for rows.Next() {
		var rc store.RateCount
		var started, updated dbTime
		if err := rows.Scan(&rc.Replica, &rc.Key, &started, &rc.Admitted, &updated); err != nil {
			return nil, wrap(err, "exchange rate counts: scan")
		}
		rc.Started, rc.Updated = started.Time, updated.Time
		out = append(out, rc)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(err, "exchange rate counts: read")
	}
	return out, nil
}
