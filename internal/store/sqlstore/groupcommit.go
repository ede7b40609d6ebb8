package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portvakt/portvakt/internal/store"
)

// Group commit for the issued-token inserts, on both engines.
//
// Every token writes one row, and committing each row on its own is most of
// the store's cost per token: on SQLite (one writer) a transaction and a WAL
// append of every page the row touches, the table and its indexes; on
// PostgreSQL a round trip, a statement and a commit in a backend process
// whose CPU is taken from the same machine's signatures. Instead callers
// queue their rows (StartInsertIssuedToken returns at once, and the caller
// signs its token meanwhile), and writer goroutines own the inserts: a
// writer that is free takes every queued row, up to maxBatch, inserts them
// with one multi-row INSERT ... ON CONFLICT DO NOTHING RETURNING (one
// statement, one transaction), and only then answers each caller: inserted,
// or ErrConflict when its key did not come back. The rows handed over while
// a batch is written go together in the next one, so batches grow with the
// load, and no row waits for anything but a free writer: not for a timer,
// not for other callers, not for the state of other goroutines.
// BenchmarkGroupCommitSchedule measures this against a commit per row.
//
// Each row is still its own atomic replay check, decided by a primary key
// in the database (issued_tokens' on SQLite, issued_token_replay's on
// PostgreSQL, see issuedschema.go): RETURNING lists only the rows this
// statement inserted, so a key that another batch or another replica
// committed first comes back missing. A key repeated inside one batch is written once: the first
// request owns the row, the later ones are replays of it. When the statement
// fails, every caller of the batch gets the error and no token is issued; a
// caller whose context is done before its batch is written gets its context
// error, and its row is not written; closing the store fails the rows still
// queued.
//
// SQLite has one writer connection and so one writer goroutine. PostgreSQL
// could take several batches at once, but on the 2-core benchmark machine
// (BenchmarkGroupCommitPostgres) two or four writers only made the batches
// smaller and the CPU per row, ours and the backends', larger, for no more
// rows per second: one writer, whose round trip of well under a millisecond
// carries up to maxBatch rows, keeps far ahead of the signatures. Batches on
// PostgreSQL still overlap across replicas (and across writers, were there
// more), and two batches holding the same keys (concurrent replays) could
// each wait for the other's uncommitted row: a deadlock, which PostgreSQL
// breaks after deadlock_timeout by failing one whole batch. Rows therefore
// go in key order, so that every batch meets shared keys in the same order
// and one simply waits for the other.

// maxBatch bounds the rows of one insert, and so the prepared statements
// (one per size).
const maxBatch = 64

// issuedTokenColumns is the number of values in one issued_tokens row.
const issuedTokenColumns = 12

// PostgreSQL binds at most 65535 parameters per statement: this constant
// conversion stops the build if a batch could bind more.
const _ = uint16(maxBatch * issuedTokenColumns)

// Writer goroutines per engine (see above).
const (
	writersSQLite   = 1
	writersPostgres = 1
)

// issuedKey is an issued token's primary key: one per assertion.
type issuedKey struct{ client, jti string }

type insertReq struct {
	ctx  context.Context
	key  issuedKey
	row  []any // issuedTokenColumns values, in insertIssuedTokenPrefix's order
	done chan error
}

type batcher struct {
	maxRows int           // maxBatch; 1 in BenchmarkGroupCommitSchedule's commit per row
	wake    chan struct{} // capacity 1: the queue needs a writer's look
	stop    chan struct{}
	writers sync.WaitGroup

	mu     sync.Mutex
	queue  []*insertReq // handed over, not yet taken by a writer
	closed bool

	batches atomic.Int64 // batches taken to be written (tests, and the benchmark's rows per batch)

	stmtMu sync.Mutex
	stmts  [maxBatch + 1]*sql.Stmt // the n-row inserts by n, prepared on first use
}

func (s *Store) startBatcher(writers int) {
	s.batch = &batcher{maxRows: maxBatch, wake: make(chan struct{}, 1), stop: make(chan struct{})}
	for range writers {
		s.batch.writers.Go(s.batchLoop)
	}
}

// stopBatcher stops the writers after the batches they are writing; rows
// still queued fail as unavailable (no token is issued for them).
func (s *Store) stopBatcher() {
	b := s.batch
	if b == nil {
		return
	}
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	close(b.stop)
	b.writers.Wait()
	b.mu.Lock()
	for _, r := range b.queue {
		r.done <- errClosed()
	}
	b.queue = nil
	b.mu.Unlock()
	for _, st := range b.stmts {
		if st != nil {
			st.Close()
		}
	}
}

func errClosed() error {
	return fmt.Errorf("sqlstore: insert issued token: store closed: %w", store.ErrUnavailable)
}

// signal wakes a writer, or leaves a wake-up for the next one to look.
func (b *batcher) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// submit queues one row for a writer.
func (b *batcher) submit(ctx context.Context, key issuedKey, row []any) *insertReq {
	r := &insertReq{ctx: ctx, key: key, row: row, done: make(chan error, 1)}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		r.done <- errClosed()
		return r
	}
	b.queue = append(b.queue, r)
	n := len(b.queue)
	b.mu.Unlock()
	// A free writer needs to see the first row, and another writer (were
	// there more) a full batch; a busy writer looks at the queue anyway
	// when its batch is written.
	if n == 1 || n == b.maxRows {
		b.signal()
	}
	return r
}

// wait returns the answer for r. Once handed over, the answer always comes:
// a writer owns the row, or stopBatcher fails it.
func (b *batcher) wait(r *insertReq) error {
	return <-r.done
}

func (s *Store) batchLoop() {
	b := s.batch
	batch := make([]*insertReq, 0, b.maxRows)
	for {
		batch = b.next(batch[:0])
		if batch == nil {
			return
		}
		b.batches.Add(1)
		s.commitBatch(batch)
		clear(batch) // let the answered requests go
	}
}

// next takes the next batch, the first b.maxRows queued rows, as soon as
// there is one; nil when the batcher stops.
func (b *batcher) next(batch []*insertReq) []*insertReq {
	for {
		b.mu.Lock()
		if n := len(b.queue); n > 0 {
			k := min(n, b.maxRows)
			batch = append(batch, b.queue[:k]...)
			rest := copy(b.queue, b.queue[k:])
			clear(b.queue[rest:])
			b.queue = b.queue[:rest]
			b.mu.Unlock()
			if rest > 0 {
				b.signal() // for another writer, or this one's next batch
			}
			return batch
		}
		b.mu.Unlock()
		select {
		case <-b.stop:
			return nil
		case <-b.wake:
		}
	}
}

func errReplay(k issuedKey) error {
	return fmt.Errorf("sqlstore: insert issued token for client %q: assertion jti already used: %w", k.client, store.ErrConflict)
}

// commitBatch writes a batch and answers each of its requests.
func (s *Store) commitBatch(batch []*insertReq) {
	var rows, replays []*insertReq
	first := make(map[issuedKey]bool, len(batch))
	for _, r := range batch {
		switch {
		case r.ctx.Err() != nil:
			r.done <- classify(r.ctx.Err())
		case first[r.key]:
			// Only the first request with this key owns its row: a later
			// one in the same batch is a replay of it.
			replays = append(replays, r)
		default:
			first[r.key] = true
			rows = append(rows, r)
		}
	}
	if len(rows) == 0 {
		return
	}
	slices.SortFunc(rows, func(a, b *insertReq) int {
		return cmp.Or(strings.Compare(a.key.client, b.key.client), strings.Compare(a.key.jti, b.key.jti))
	})
	// The batch outlives any one caller's context; on PostgreSQL it is
	// bounded on its own. SQLite's one writer connection can only wait for
	// another process's write lock, which busy_timeout bounds, and a context
	// that can be done costs two goroutines per statement (database/sql's
	// and the driver's watchers).
	ctx := context.Background()
	if s.driver == DriverPostgres {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.stmtTimeout)
		defer cancel()
	}
	start := time.Now()
	inserted, err := s.insertRows(ctx, rows)
	if s.onBatch != nil {
		s.onBatch(len(rows), time.Since(start), err)
	}
	for _, r := range rows {
		switch {
		case err != nil:
			r.done <- err
		case inserted[r.key]:
			r.done <- nil
		default:
			r.done <- errReplay(r.key)
		}
	}
	for _, r := range replays {
		if err != nil {
			r.done <- err
			continue
		}
		r.done <- errReplay(r.key)
	}
}

// insertRows inserts rows, whose keys are distinct, in one multi-row INSERT
// ... ON CONFLICT DO NOTHING RETURNING statement (autocommit: one
// transaction), and reports which keys it inserted.
func (s *Store) insertRows(ctx context.Context, rows []*insertReq) (map[issuedKey]bool, error) {
	stmt, err := s.batchStatement(ctx, len(rows))
	if err != nil {
		return nil, wrap(err, "insert issued tokens: prepare")
	}
	args := make([]any, 0, len(rows)*issuedTokenColumns)
	for _, r := range rows {
		args = append(args, r.row...)
	}
	res, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return nil, wrap(err, "insert %d issued tokens", len(rows))
	}
	defer res.Close()
	inserted := make(map[issuedKey]bool, len(rows))
	for res.Next() {
		var k issuedKey
		if err := res.Scan(&k.client, &k.jti); err != nil {
			return nil, wrap(err, "insert issued tokens: returning")
		}
		inserted[k] = true
	}
	if err := res.Err(); err != nil {
		return nil, wrap(err, "insert %d issued tokens", len(rows))
	}
	return inserted, nil
}

// batchStatement prepares (once per size, 1 to maxBatch) the n-row insert.
func (s *Store) batchStatement(ctx context.Context, n int) (*sql.Stmt, error) {
	b := s.batch
	b.stmtMu.Lock()
	defer b.stmtMu.Unlock()
	if st := b.stmts[n]; st != nil {
		return st, nil
	}
	q := insertIssuedTokensSQL(n)
	if s.driver == DriverPostgres {
		q = insertIssuedTokensPostgresSQL(n)
	}
	st, err := s.writerDB().PrepareContext(ctx, placeholders(s.driver, q))
	if err != nil {
		return nil, err
	}
	b.stmts[n] = st
	return st, nil
}

// insertIssuedTokensSQL is the n-row insert, with ? placeholders.
func insertIssuedTokensSQL(n int) string {
	tuple := "(" + strings.Repeat("?,", issuedTokenColumns-1) + "?)"
	var b strings.Builder
	b.WriteString(insertIssuedTokenPrefix)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(tuple)
	}
	b.WriteString(" ON CONFLICT (client_id, assertion_jti) DO NOTHING RETURNING client_id, assertion_jti")
	return b.String()
}

// insertIssuedTokensPostgresSQL is the n-row insert on PostgreSQL, with ?
// placeholders: one statement that inserts the replay keys ON CONFLICT DO
// NOTHING and, for the keys it inserted only, the history rows and their
// prefixes (issuedschema.go). Its RETURNING is the replay table's, so a key
// is reported inserted exactly when its replay row was.
func insertIssuedTokensPostgresSQL(n int) string {
	// The casts type the VALUES columns (an untyped parameter would be text).
	tuple := "(?::text,?::text,?::text,?::text,?::text,?::text,?::text,?::timestamptz,?::timestamptz,?::text,?::text,?::text)"
	var b strings.Builder
	b.WriteString("WITH v (client_id, assertion_jti, token_jti, consumer_orgno, supplier_orgno, scopes, audience, issued_at, expires_at, client_amr, cnf_jkt, cnf_x5t) AS (VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(tuple)
	}
	fmt.Fprintf(&b, `),
r AS (INSERT INTO issued_token_replay (client_id, assertion_jti, live_until)
 SELECT client_id, assertion_jti, issued_at + interval '%d seconds' FROM v
 ON CONFLICT (client_id, assertion_jti) DO NOTHING RETURNING client_id, assertion_jti),
h AS (INSERT INTO issued_tokens (client_id, assertion_jti, token_jti, consumer_orgno, supplier_orgno, scopes, audience, issued_at, expires_at, client_amr, cnf_jkt, cnf_x5t)
 SELECT v.client_id, v.assertion_jti, v.token_jti, v.consumer_orgno, v.supplier_orgno, v.scopes, v.audience, v.issued_at, v.expires_at, v.client_amr, v.cnf_jkt, v.cnf_x5t
 FROM v JOIN r ON r.client_id = v.client_id AND r.assertion_jti = v.assertion_jti),
p AS (INSERT INTO issued_token_prefixes (prefix, issued_at, token_jti, expires_at)
 SELECT DISTINCT split_part(s.value, ':', 1), v.issued_at, v.token_jti, v.expires_at
 FROM v JOIN r ON r.client_id = v.client_id AND r.assertion_jti = v.assertion_jti, `+fmt.Sprintf(pgPrefixesOf, "v.scopes")+`
 WHERE position(':' in s.value) > 1)
SELECT client_id, assertion_jti FROM r`, int(replayWindow.Seconds()))
	return b.String()
}
