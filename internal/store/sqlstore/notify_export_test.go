package sqlstore

import "context"

// RawForTest runs a query that returns one value, for tests that inspect
// or disturb the server (pg_stat_activity, pg_terminate_backend).
func (s *Store) RawForTest(ctx context.Context, query string, dst any) error {
	return s.db.WithContext(ctx).Raw(query).Row().Scan(dst)
}
