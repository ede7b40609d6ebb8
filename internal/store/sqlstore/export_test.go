package sqlstore

import "context"

// ExecForTest runs a raw statement on the writer, for tests that stage
// database states the API cannot make (a newer schema version).
func (s *Store) ExecForTest(ctx context.Context, query string) error {
	return s.db.WithContext(ctx).Exec(query).Error
}

// MigrateToForTest applies the migrations up to version, for tests that
// stage a database an older portvakt left behind.
func (s *Store) MigrateToForTest(ctx context.Context, version int64) error {
	defer s.lockSQLiteMigrations()()
	p, err := s.provider(ctx)
	if err != nil {
		return err
	}
	_, err = p.UpTo(ctx, version)
	return err
}
