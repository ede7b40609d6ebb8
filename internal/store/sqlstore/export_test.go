package sqlstore

import (
	"context"
	"fmt"
	"strconv"

	"github.com/portvakt/portvakt/internal/store"
)

// ExecForTest runs a raw statement on the writer, for tests that stage
// database states the API cannot make (a newer schema version).
func (s *Store) ExecForTest(ctx context.Context, query string) error {
	return s.db.WithContext(ctx).Exec(query).Error
}

// IssuedTokensQueryForTest is the SQL of ListIssuedTokens for f, in the
// store's placeholder style, and its arguments (tests EXPLAIN it).
func (s *Store) IssuedTokensQueryForTest(f store.IssuedTokenFilter) (string, []any) {
	q, args := issuedTokensQuery(f)
	return placeholders(s.driver, q), args
}

// QueryStringsForTest runs a query on the writer and returns the rows'
// columns joined by spaces, one string per row (EXPLAIN output).
func (s *Store) QueryStringsForTest(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := s.writerDB().QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		for i, v := range vals {
			if b, ok := v.([]byte); ok {
				vals[i] = string(b)
			}
		}
		out = append(out, fmt.Sprint(vals...))
	}
	return out, rows.Err()
}

// MigrateToForTest applies the migrations up to version only, to stage a
// database that a later migration converts.
func (s *Store) MigrateToForTest(ctx context.Context, version int64) error {
	defer s.lockSQLiteMigrations()()
	p, err := s.provider(ctx)
	if err != nil {
		return err
	}
	_, err = p.UpTo(ctx, version)
	return err
}

// PartitionsForTest lists the days that have an issued_tokens partition,
// as YYYYMMDD (tests).
func (s *Store) PartitionsForTest(ctx context.Context) ([]string, error) {
	days, err := s.partitionDays(ctx)
	out := make([]string, len(days))
	for i, d := range days {
		out[i] = strconv.Itoa(d.Year()*10000 + int(d.Month())*100 + d.Day())
	}
	return out, err
}
