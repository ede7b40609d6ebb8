package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/portvakt/portvakt/internal/store"
)

// Drivers accepted in Config.Driver.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// Config says which database to open and how. Every field but Driver and
// DSN works at its zero value.
type Config struct {
	// Driver is "sqlite" or "postgres".
	Driver string
	// DSN is, for SQLite, a file path (or a "file:" URI; our pragmas are
	// appended), and for PostgreSQL a libpq URL or key=value string.
	DSN string
	// MaxOpenConns caps the pool: PostgreSQL connections (default 10), or
	// SQLite read connections (default 4; SQLite always has one writer).
	MaxOpenConns int
	// MaxIdleConns is the number of idle connections kept (default
	// MaxOpenConns).
	MaxIdleConns int
	// StatementTimeout bounds every statement: PostgreSQL's
	// statement_timeout on each connection, SQLite's busy_timeout (how long
	// a writer waits for another process's lock). Default 30s.
	StatementTimeout time.Duration
	// Now is the clock that stamps audit events without a time (default
	// time.Now).
	Now func() time.Time
	// Observer is told of every group commit; nil observes nothing.
	Observer Observer
	// ChangeLogGenerations is how many generations of the rules change log
	// Update keeps (changes.go); a reader further behind reloads everything.
	// Default 10000.
	ChangeLogGenerations int
}

// Observer is told what the store does that its callers cannot see
// (metrics). The calls callers make are timed around the store.Store
// interface instead (a decorator, wired where the store is).
type Observer interface {
	// Batch is told of every group commit of issued-token rows
	// (groupcommit.go), after its statement: the rows it tried to insert,
	// how long the statement took, and its error. It runs on the writer
	// goroutine and must not block.
	Batch(rows int, took time.Duration, err error)
}

const (
	defaultPGConns          = 10
	defaultSQLiteReaders    = 4
	defaultStatementTimeout = 30 * time.Second
)

// Store is the gorm implementation of store.Store.
type Store struct {
	reader // reads outside transactions, on the read pool

	driver string
	dsn    string // for the migration lock of SQLite
	now    func() time.Time
	db     *gorm.DB  // writes (and everything on PostgreSQL)
	sqlDBs []*sql.DB // to close, writer first

	stmtTimeout time.Duration
	onBatch     func(rows int, took time.Duration, err error) // Observer.Batch; nil without one
	batch       *batcher                                      // group commit of the issued-token inserts

	changeLogGens int

	closeOnce sync.Once
}

var _ store.Store = (*Store)(nil)

// Open connects to the database and checks that it answers. It does not
// migrate: call Migrate (portvakt migrate, or the dev mode) or SchemaCheck.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.StatementTimeout <= 0 {
		cfg.StatementTimeout = defaultStatementTimeout
	}
	if cfg.DSN == "" {
		return nil, errors.New("sqlstore: open: empty DSN")
	}
	if cfg.ChangeLogGenerations <= 0 {
		cfg.ChangeLogGenerations = defaultChangeLogGenerations
	}
	s := &Store{driver: cfg.Driver, dsn: cfg.DSN, now: cfg.Now, stmtTimeout: cfg.StatementTimeout,
		changeLogGens: cfg.ChangeLogGenerations}
	if cfg.Observer != nil {
		s.onBatch = cfg.Observer.Batch
	}
	var err error
	switch cfg.Driver {
	case DriverSQLite:
		err = s.openSQLite(cfg)
	case DriverPostgres:
		err = s.openPostgres(cfg)
	default:
		return nil, fmt.Errorf("sqlstore: open: unknown driver %q (want %q or %q)", cfg.Driver, DriverSQLite, DriverPostgres)
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlstore: open %s: %w", cfg.Driver, err)
	}
	writers := writersSQLite
	if cfg.Driver == DriverPostgres {
		writers = writersPostgres
	}
	s.startBatcher(writers)
	return s, nil
}

func gormConfig() *gorm.Config {
	return &gorm.Config{
		// Single statements need no transaction of their own; Update opens
		// the only transactions we want.
		SkipDefaultTransaction: true,
		Logger:                 logger.Discard,
		NowFunc:                func() time.Time { return time.Now().UTC() },
	}
}

// sqliteDSN appends the driver parameters to a path or "file:" URI.
func sqliteDSN(dsn string, busy time.Duration, writer bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(busy.Milliseconds(), 10)+")")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	// A checkpoint copies each page once however often the WAL holds it:
	// a larger WAL (up to ~40 MiB) checkpoints the hot index pages of the
	// issued-token inserts far less often.
	q.Add("_pragma", "wal_autocheckpoint(10000)")
	if writer {
		// Takes effect when set before the first table of a new database
		// (an existing one gets it from migration 7's VACUUM): freed pages
		// are kept until the purge gives them back with PRAGMA
		// incremental_vacuum.
		q.Add("_pragma", "auto_vacuum(INCREMENTAL)")
		// BEGIN IMMEDIATE takes the write lock up front, so a transaction
		// never fails half-way trying to upgrade a read lock (SQLITE_BUSY).
		q.Set("_txlock", "immediate")
	} else {
		q.Add("_pragma", "query_only(1)")
	}
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + q.Encode()
}

func isSQLiteMemory(dsn string) bool {
	return dsn == ":memory:" || strings.Contains(dsn, "mode=memory")
}

func (s *Store) openSQLite(cfg Config) error {
	writer, err := sql.Open(sqlite.DriverName, sqliteDSN(cfg.DSN, cfg.StatementTimeout, true))
	if err != nil {
		return fmt.Errorf("sqlstore: open sqlite %q: %w", cfg.DSN, err)
	}
	s.sqlDBs = append(s.sqlDBs, writer)
	// One writer connection: writers queue on Go's pool, never on SQLite's
	// busy handler, so concurrent replay inserts stay fast and never see
	// SQLITE_BUSY. It never expires: for ":memory:" it is the database.
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	writer.SetConnMaxIdleTime(0)
	if s.db, err = gorm.Open(sqlite.Dialector{Conn: writer}, gormConfig()); err != nil {
		return wrap(err, "open sqlite %q", cfg.DSN)
	}
	if isSQLiteMemory(cfg.DSN) {
		// An in-memory database lives in its one connection: read there too.
		// Then Update's fn must read through its Tx, never the Store.
		s.reader = reader{db: s.db}
		return nil
	}
	readers, err := sql.Open(sqlite.DriverName, sqliteDSN(cfg.DSN, cfg.StatementTimeout, false))
	if err != nil {
		return fmt.Errorf("sqlstore: open sqlite %q: %w", cfg.DSN, err)
	}
	s.sqlDBs = append(s.sqlDBs, readers)
	n := cfg.MaxOpenConns
	if n <= 0 {
		n = defaultSQLiteReaders
	}
	readers.SetMaxOpenConns(n)
	readers.SetMaxIdleConns(idle(cfg.MaxIdleConns, n))
	rdb, err := gorm.Open(sqlite.Dialector{Conn: readers}, gormConfig())
	if err != nil {
		return wrap(err, "open sqlite %q", cfg.DSN)
	}
	s.reader = reader{db: rdb}
	return nil
}

func idle(want, open int) int {
	if want <= 0 || want > open {
		return open
	}
	return want
}

func (s *Store) openPostgres(cfg Config) error {
	pc, err := pgx.ParseConfig(cfg.DSN)
	if err != nil {
		// The DSN may hold a password: do not echo it.
		return errors.New("sqlstore: open postgres: cannot parse the DSN")
	}
	if pc.RuntimeParams == nil {
		pc.RuntimeParams = map[string]string{}
	}
	// Set at connection start-up, so it holds for every statement on every
	// connection of the pool, including the migrations.
	pc.RuntimeParams["statement_timeout"] = strconv.FormatInt(cfg.StatementTimeout.Milliseconds(), 10)
	db := stdlib.OpenDB(*pc)
	s.sqlDBs = append(s.sqlDBs, db)
	n := cfg.MaxOpenConns
	if n <= 0 {
		n = defaultPGConns
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(idle(cfg.MaxIdleConns, n))
	db.SetConnMaxIdleTime(5 * time.Minute)
	if s.db, err = gorm.Open(postgres.New(postgres.Config{Conn: db}), gormConfig()); err != nil {
		return wrap(err, "open postgres")
	}
	s.reader = reader{db: s.db}
	return nil
}

// writerDB is the database/sql pool that writes and migrates.
func (s *Store) writerDB() *sql.DB { return s.sqlDBs[0] }

// Ping checks that the backend answers.
func (s *Store) Ping(ctx context.Context) error {
	for _, db := range s.sqlDBs {
		if err := db.PingContext(ctx); err != nil {
			return wrap(err, "ping")
		}
	}
	return nil
}

// Close releases the pools.
func (s *Store) Close() error {
	s.closeOnce.Do(s.stopBatcher)
	var errs []error
	for _, db := range s.sqlDBs {
		errs = append(errs, db.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlstore: close: %w", err)
	}
	return nil
}

// Generation reads the counter that every committed Update advances.
func (s *Store) Generation(ctx context.Context) (int64, error) {
	var g int64
	err := s.reader.db.WithContext(ctx).Raw("SELECT value FROM generation WHERE id = 1").Row().Scan(&g)
	if err != nil {
		return 0, wrap(err, "read generation")
	}
	return g, nil
}

// Update runs fn in one transaction. Its first statement advances the
// generation row: on PostgreSQL that row lock serialises every Update (they
// are rare admin changes), which also makes audit ids follow commit order.
// Its last statements log the keys fn wrote under that generation
// (changes.go).
// fn must use its Tx, not the Store, for writes: on SQLite the one writer
// connection is the transaction's.
func (s *Store) Update(ctx context.Context, fn func(store.Tx) error) error {
	gtx := s.db.WithContext(ctx).Begin()
	if gtx.Error != nil {
		return wrap(gtx.Error, "begin")
	}
	done := false
	defer func() {
		if !done {
			gtx.Rollback() // also when fn panics; the panic goes on
		}
	}()
	var gen int64
	rows, err := gtx.Raw("UPDATE generation SET value = value + 1 WHERE id = 1 RETURNING value").Rows()
	if err != nil {
		return wrap(err, "advance generation")
	}
	found := rows.Next()
	if found {
		err = rows.Scan(&gen)
	}
	if cerr := errors.Join(err, rows.Err(), rows.Close()); cerr != nil {
		return wrap(cerr, "advance generation")
	}
	if !found {
		return errors.New("sqlstore: advance generation: no generation row (is the database migrated?)")
	}
	if err := s.notifyInTx(gtx); err != nil {
		return err
	}
	t := &tx{reader: reader{db: gtx}, now: s.now}
	if err := fn(t); err != nil {
		return err
	}
	if err := s.logChanges(gtx, gen, &t.changes); err != nil {
		return err
	}
	done = true
	if err := gtx.Commit().Error; err != nil {
		gtx.Rollback()
		return wrap(err, "commit")
	}
	return nil
}
