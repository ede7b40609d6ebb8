package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
)

// The issued-token table at national size (migration 6, written in Go
// because the two engines part ways here).
//
// PostgreSQL: issued_tokens is range-partitioned by expires_at, one
// partition per UTC day, so that the purge drops whole partitions past
// retention instead of deleting rows (partitions.go). The primary key of a
// partitioned table must hold the partition key, so (client_id,
// assertion_jti) can no longer be unique there; the replay check moves to
// issued_token_replay, a small unpartitioned table of the assertions that
// could still be valid: (client_id, assertion_jti) with live_until, kept
// replayWindow past the token's issue. The insert of a token is still one
// statement, one transaction: the replay row is inserted ON CONFLICT DO
// NOTHING, and only the rows it returns go on into the history and its
// prefix side table (groupcommit.go). Partitioning by the bucket of the
// assertion's expiry, or checking the neighbouring partition, would keep
// the replay check in the history table, but the first needs the
// assertion's exp (and two assertions that share a jti but not a bucket
// would both pass), and the second cannot see another replica's
// uncommitted row in the other partition; the replay table is exact
// whatever partition a row lands in, and costs one small B-tree.
//
// SQLite keeps one unpartitioned table whose primary key is the replay
// check; the purge deletes rows in small paced batches and gives the pages
// back with incremental vacuum.
//
// On both engines the audit view of a provider ("tokens carrying my
// scopes") reads issued_token_prefixes: one row per (token, prefix of its
// scopes), written with the token (SQLite: a trigger; PostgreSQL: the same
// statement), so that every disjunct of the audit filter (consumer,
// supplier, prefix) walks an index in (issued_at, token_jti) order and
// costs what it returns.

// replayWindow is how long after a token's issue its assertion's key stays
// in issued_token_replay (PostgreSQL). An assertion is accepted only while
// exp has not passed, exp - iat is at most 120 s and iat at most the
// configured skew (at most 1 min) ahead: it cannot be valid more than 3 min
// after the token was issued. Ten minutes leave room for replicas whose
// clocks disagree.
const replayWindow = 10 * time.Minute

// partitionsAhead is how many days of partitions exist ahead of today, so
// that an insert finds its partition even when the purger has not run for
// a week.
const partitionsAhead = 7

// maxBackfillDays bounds the daily partitions migration 6 creates for the
// rows of an existing table; older rows go to the default partition, where
// the purge deletes them row by row.
const maxBackfillDays = 400

// goMigration is one migration written in Go.
type goMigration struct {
	version int64
	source  string // what MigrationStatus shows
	up      *goose.GoFunc
}

func (s *Store) goMigrations() []goMigration {
	return []goMigration{
		{6, "00006_issued_tokens_at_scale.go", &goose.GoFunc{RunTx: s.migrateIssuedAtScale}},
	}
}

// goMigrationVersions are the versions of goMigrations, for
// latestKnownVersion (which has no store).
var goMigrationVersions = []int64{6}

func (s *Store) migrateIssuedAtScale(ctx context.Context, tx *sql.Tx) error {
	if s.driver == DriverPostgres {
		return s.partitionIssuedTokens(ctx, tx)
	}
	return execAll(ctx, tx, sqliteIssuedAtScale)
}

// sqliteIssuedAtScale: the prefix side table with its triggers, and the
// indexes every audit disjunct walks in (issued_at, token_jti) order.
var sqliteIssuedAtScale = []string{
	`CREATE TABLE issued_token_prefixes (
    prefix     TEXT NOT NULL,
    issued_at  TIMESTAMP WITH TIME ZONE NOT NULL,
    token_jti  TEXT NOT NULL,
    expires_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (prefix, issued_at, token_jti)
) WITHOUT ROWID`,
	`INSERT OR IGNORE INTO issued_token_prefixes (prefix, issued_at, token_jti, expires_at)
 SELECT DISTINCT substr(j.value, 1, instr(j.value, ':') - 1), t.issued_at, t.token_jti, t.expires_at
 FROM issued_tokens t, json_each(t.scopes) j WHERE j.type = 'text' AND instr(j.value, ':') > 1`,
	`CREATE TRIGGER issued_tokens_prefixes_insert AFTER INSERT ON issued_tokens BEGIN
 INSERT OR IGNORE INTO issued_token_prefixes (prefix, issued_at, token_jti, expires_at)
 SELECT DISTINCT substr(j.value, 1, instr(j.value, ':') - 1), NEW.issued_at, NEW.token_jti, NEW.expires_at
 FROM json_each(NEW.scopes) j WHERE j.type = 'text' AND instr(j.value, ':') > 1;
END`,
	`CREATE TRIGGER issued_tokens_prefixes_delete AFTER DELETE ON issued_tokens BEGIN
 DELETE FROM issued_token_prefixes WHERE issued_at = OLD.issued_at AND token_jti = OLD.token_jti AND prefix IN
 (SELECT substr(j.value, 1, instr(j.value, ':') - 1) FROM json_each(OLD.scopes) j WHERE j.type = 'text' AND instr(j.value, ':') > 1);
END`,
	`DROP INDEX issued_tokens_issued_at`,
	`CREATE INDEX issued_tokens_issued_at ON issued_tokens (issued_at, token_jti)`,
	`DROP INDEX issued_tokens_consumer_orgno`,
	`CREATE INDEX issued_tokens_consumer_orgno ON issued_tokens (consumer_orgno, issued_at, token_jti)`,
	`DROP INDEX issued_tokens_supplier_orgno`,
	`CREATE INDEX issued_tokens_supplier_orgno ON issued_tokens (supplier_orgno, issued_at, token_jti) WHERE supplier_orgno <> ''`,
}

// pgIssuedAtScale creates the partitioned tables next to the old one
// (renamed issued_tokens_old, its indexes dropped so that their names are
// free).
var pgIssuedAtScale = []string{
	`ALTER TABLE issued_tokens DROP CONSTRAINT issued_tokens_pkey`,
	`DROP INDEX issued_tokens_issued_at`,
	`DROP INDEX issued_tokens_consumer_orgno`,
	`DROP INDEX issued_tokens_supplier_orgno`,
	`ALTER TABLE issued_tokens RENAME TO issued_tokens_old`,
	`CREATE TABLE issued_tokens (
    client_id      TEXT NOT NULL,
    assertion_jti  TEXT NOT NULL,
    token_jti      TEXT NOT NULL,
    consumer_orgno TEXT NOT NULL,
    supplier_orgno TEXT NOT NULL DEFAULT '',
    scopes         TEXT NOT NULL,
    audience       TEXT NOT NULL,
    issued_at      TIMESTAMP WITH TIME ZONE NOT NULL,
    expires_at     TIMESTAMP WITH TIME ZONE NOT NULL,
    client_amr     TEXT NOT NULL DEFAULT ''
) PARTITION BY RANGE (expires_at)`,
	`CREATE TABLE issued_tokens_default PARTITION OF issued_tokens DEFAULT`,
	`CREATE INDEX issued_tokens_issued_at ON issued_tokens (issued_at, token_jti)`,
	`CREATE INDEX issued_tokens_consumer_orgno ON issued_tokens (consumer_orgno, issued_at, token_jti)`,
	`CREATE INDEX issued_tokens_supplier_orgno ON issued_tokens (supplier_orgno, issued_at, token_jti) WHERE supplier_orgno <> ''`,
	`CREATE TABLE issued_token_prefixes (
    prefix     TEXT NOT NULL,
    issued_at  TIMESTAMP WITH TIME ZONE NOT NULL,
    token_jti  TEXT NOT NULL,
    expires_at TIMESTAMP WITH TIME ZONE NOT NULL
) PARTITION BY RANGE (expires_at)`,
	`CREATE TABLE issued_token_prefixes_default PARTITION OF issued_token_prefixes DEFAULT`,
	`CREATE INDEX issued_token_prefixes_prefix ON issued_token_prefixes (prefix, issued_at, token_jti)`,
	`CREATE TABLE issued_token_replay (
    client_id     TEXT NOT NULL,
    assertion_jti TEXT NOT NULL,
    live_until    TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (client_id, assertion_jti)
)`,
	`CREATE INDEX issued_token_replay_live_until ON issued_token_replay (live_until)`,
}

// pgPrefixesOf is the SQL of the distinct prefixes of a scopes column (JSON
// text), as a set-returning FROM item named s(value).
const pgPrefixesOf = `jsonb_array_elements_text(CASE WHEN jsonb_typeof(%s::jsonb) = 'array' THEN %[1]s::jsonb ELSE '[]'::jsonb END) AS s(value)`

// partitionIssuedTokens converts a populated issued_tokens into the
// partitioned tables: daily partitions for the rows' days (at most
// maxBackfillDays back) and partitionsAhead days ahead, the rows copied
// over, the keys of the last replayWindow in the replay table. It holds the
// table locked for the copy: run `portvakt migrate` while the token
// endpoint is stopped, or accept that it waits.
func (s *Store) partitionIssuedTokens(ctx context.Context, tx *sql.Tx) error {
	if err := execAll(ctx, tx, pgIssuedAtScale); err != nil {
		return err
	}
	now := s.now().UTC()
	first := now
	var oldest sql.NullTime
	if err := tx.QueryRowContext(ctx, `SELECT MIN(expires_at) FROM issued_tokens_old`).Scan(&oldest); err != nil {
		return err
	}
	if oldest.Valid && oldest.Time.Before(first) {
		first = oldest.Time.UTC()
		if floor := now.AddDate(0, 0, -maxBackfillDays); first.Before(floor) {
			first = floor
		}
	}
	for d := utcDay(first); !d.After(utcDay(now).AddDate(0, 0, partitionsAhead)); d = d.AddDate(0, 0, 1) {
		if err := createDayPartitions(ctx, tx, d); err != nil {
			return err
		}
	}
	if err := execAll(ctx, tx, []string{
		`INSERT INTO issued_tokens SELECT client_id, assertion_jti, token_jti, consumer_orgno, supplier_orgno,
 scopes, audience, issued_at, expires_at, client_amr FROM issued_tokens_old`,
		`INSERT INTO issued_token_prefixes (prefix, issued_at, token_jti, expires_at)
 SELECT DISTINCT split_part(s.value, ':', 1), t.issued_at, t.token_jti, t.expires_at
 FROM issued_tokens_old t, ` + fmt.Sprintf(pgPrefixesOf, "t.scopes") + ` WHERE position(':' in s.value) > 1`,
	}); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO issued_token_replay (client_id, assertion_jti, live_until)
 SELECT client_id, assertion_jti, issued_at + $1 * interval '1 second' FROM issued_tokens_old
 WHERE issued_at + $1 * interval '1 second' >= $2 ON CONFLICT DO NOTHING`, int64(replayWindow.Seconds()), now)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `DROP TABLE issued_tokens_old`)
	return err
}

// incrementalVacuum turns SQLite's auto_vacuum to INCREMENTAL, so that the
// paced purge can give freed pages back to the file system a few at a time
// (ReclaimSpace). A new database gets it from the writer's pragma before
// its first table; an existing one needs one full VACUUM, which rewrites
// the file and holds the writer meanwhile (a minute or so for millions of
// rows). It runs in Migrate, the step an operator runs while upgrading
// (`portvakt migrate`), once: afterwards the mode is set and this only
// reads it. (Not a goose migration: goose holds SQLite's one writer
// connection while a migration runs, and VACUUM cannot run in a
// transaction.) PostgreSQL has nothing to do.
func (s *Store) incrementalVacuum(ctx context.Context) error {
	if s.driver != DriverSQLite {
		return nil
	}
	db := s.writerDB()
	var mode int
	if err := db.QueryRowContext(ctx, `PRAGMA auto_vacuum`).Scan(&mode); err != nil {
		return wrap(err, "read auto_vacuum")
	}
	if mode == 2 {
		return nil
	}
	if _, err := db.ExecContext(ctx, `PRAGMA auto_vacuum = INCREMENTAL`); err != nil {
		return wrap(err, "set auto_vacuum")
	}
	if _, err := db.ExecContext(ctx, `VACUUM`); err != nil {
		return wrap(err, "vacuum")
	}
	return nil
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func execAll(ctx context.Context, db execer, stmts []string) error {
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", firstLine(q), err)
		}
	}
	return nil
}

func firstLine(q string) string {
	l, _, _ := strings.Cut(q, "\n")
	return l
}

// utcDay is the start of t's UTC day.
func utcDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}
