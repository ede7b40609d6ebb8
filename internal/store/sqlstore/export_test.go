package sqlstore

import "context"

// ExecForTest runs a raw statement on the writer, for tests that stage
// database states the API cannot make (a newer schema version).
func (s *Store) ExecForTest(ctx context.Context, query string) error {
	return s.db.WithContext(ctx).Exec(query).Error
}
