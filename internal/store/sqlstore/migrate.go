package sqlstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/portvakt/portvakt/internal/store"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Schema check results.
var (
	// ErrSchemaTooNew: a newer portvakt has migrated the database; this
	// binary must not serve it.
	ErrSchemaTooNew = errors.New("sqlstore: the database schema is newer than this binary")
	// ErrSchemaOutdated: migrations are pending; run `portvakt migrate`.
	ErrSchemaOutdated = errors.New("sqlstore: the database schema is not up to date")
)

// MigrationState is one migration known to the binary or the database.
type MigrationState struct {
	Version   int64
	Source    string // file name; empty when only the database knows it
	Applied   bool
	AppliedAt time.Time
}

// sqliteMigrateLocks serialises Migrate per SQLite DSN within the process.
// SQLite is a one-process database, so that is all the locking it needs;
// PostgreSQL replicas use an advisory lock instead.
var sqliteMigrateLocks sync.Map // DSN -> *sync.Mutex

func (s *Store) provider(ctx context.Context) (*goose.Provider, error) {
	fsys, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("sqlstore: migrations: %w", err)
	}
	var (
		dialect goose.Dialect
		opts    []goose.ProviderOption
	)
	switch s.driver {
	case DriverPostgres:
		dialect = goose.DialectPostgres
		// A session advisory lock: several replicas may run migrate at
		// once, one applies, the others wait and then find nothing to do.
		// Retry each second for up to 5 minutes.
		id, err := s.migrationLockID(ctx)
		if err != nil {
			return nil, err
		}
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(id), lock.WithLockTimeout(1, 300))
		if err != nil {
			return nil, fmt.Errorf("sqlstore: migrations: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	default:
		dialect = goose.DialectSQLite3
	}
	for _, m := range s.goMigrations() {
		opts = append(opts, goose.WithGoMigrations(goose.NewGoMigration(m.version, m.up, nil)))
	}
	p, err := goose.NewProvider(dialect, s.writerDB(), fsys, opts...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: migrations: %w", err)
	}
	return p, nil
}

// migrationLockID is goose's advisory lock id mixed with the schema that
// the migrations go to: replicas sharing a schema exclude each other, while
// schemas side by side in one database (tests, several deployments) do not.
func (s *Store) migrationLockID(ctx context.Context) (int64, error) {
	var schema string
	if err := s.db.WithContext(ctx).Raw("SELECT current_schema()").Row().Scan(&schema); err != nil {
		return 0, wrap(err, "migrations: current schema")
	}
	h := fnv.New64a()
	h.Write([]byte(schema))
	return lock.DefaultLockID ^ int64(h.Sum64()&math.MaxInt64), nil
}

func (s *Store) lockSQLiteMigrations() func() {
	if s.driver != DriverSQLite {
		return func() {}
	}
	m, _ := sqliteMigrateLocks.LoadOrStore(s.dsn, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// Migrate applies every pending migration; with none pending it does
// nothing. It refuses a database that a newer binary migrated.
func (s *Store) Migrate(ctx context.Context) error {
	defer s.lockSQLiteMigrations()()
	p, err := s.provider(ctx)
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return wrap(err, "migrate")
	}
	if err := s.incrementalVacuum(ctx); err != nil {
		return err
	}
	return s.SchemaCheck(ctx)
}

// MigrationStatus lists the migrations, oldest first, and whether each is
// applied.
func (s *Store) MigrationStatus(ctx context.Context) ([]MigrationState, error) {
	p, err := s.provider(ctx)
	if err != nil {
		return nil, err
	}
	st, err := p.Status(ctx)
	if err != nil {
		return nil, wrap(err, "migration status")
	}
	goSource := map[int64]string{}
	for _, m := range s.goMigrations() {
		goSource[m.version] = m.source
	}
	out := make([]MigrationState, 0, len(st))
	for _, m := range st {
		ms := MigrationState{Version: m.Source.Version, Applied: m.State == goose.StateApplied, AppliedAt: m.AppliedAt}
		if m.Source.Path != "" {
			ms.Source = m.Source.Path
		} else if src, ok := goSource[m.Source.Version]; ok {
			ms.Source = src
		}
		out = append(out, ms)
	}
	return out, nil
}

// latestKnownVersion is the newest migration embedded in the binary (SQL
// files and goMigrations).
func latestKnownVersion() (int64, error) {
	entries, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return 0, fmt.Errorf("sqlstore: migrations: %w", err)
	}
	latest := slices.Max(goMigrationVersions)
	for _, e := range entries {
		v, err := goose.NumericComponent(e)
		if err != nil {
			return 0, fmt.Errorf("sqlstore: migration %s: %w", e, err)
		}
		latest = max(latest, v)
	}
	return latest, nil
}

// SchemaCheck compares the database's schema version with the binary's:
// ErrSchemaTooNew when a newer binary migrated it (serve must refuse),
// ErrSchemaOutdated when migrations are pending (or the database is empty).
// It only reads, and takes no lock.
func (s *Store) SchemaCheck(ctx context.Context) error {
	known, err := latestKnownVersion()
	if err != nil {
		return err
	}
	var dbVersion int64
	err = s.db.WithContext(ctx).Raw("SELECT COALESCE(MAX(version_id), 0) FROM " + goose.DefaultTablename).Row().Scan(&dbVersion)
	if err != nil {
		if cerr := classify(err); errors.Is(cerr, store.ErrUnavailable) {
			return wrap(err, "schema check")
		}
		return fmt.Errorf("%w: no migrations table (%v); run `portvakt migrate`", ErrSchemaOutdated, err)
	}
	switch {
	case dbVersion > known:
		return fmt.Errorf("%w: database at version %d, this binary knows up to %d; upgrade portvakt", ErrSchemaTooNew, dbVersion, known)
	case dbVersion < known:
		return fmt.Errorf("%w: database at version %d, this binary needs %d; run `portvakt migrate`", ErrSchemaOutdated, dbVersion, known)
	}
	return nil
}
