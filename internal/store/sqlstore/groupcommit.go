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
// whose CPU is taken from the same machine's signatures. Instead writer
// goroutines own the inserts: a writer takes the first waiting insert,
// drains what else is already waiting (never waiting for more, so an idle
// server adds no latency), inserts them with one multi-row INSERT ... ON
// CONFLICT DO NOTHING RETURNING (one statement, one transaction), and only
// then answers each caller: inserted, or ErrConflict when its key did not
// come back.
//
// Each row is still its own atomic replay check, decided by the primary key
// in the database: RETURNING lists only the rows this statement inserted, so
// a key that another batch or another replica committed first comes back
// missing. A key repeated inside one batch is written once: the first
// request owns the row, the later ones are replays of it. When the statement
// fails, every caller of the batch gets the error and no token is issued; a
// caller whose context is done before its batch is written gets its context
// error, and its row is not written.
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
const issuedTokenColumns = 10

// PostgreSQL binds at most 65535 parameters per statement: this constant
// conversion stops the build if a batch could bind more.
const _ = uint16(maxBatch * issuedTokenColumns)

// Writer goroutines per engine (see above).
const (
	writersSQLite   = 1
	writersPostgres = 1
)

// Under load a batch waits up to lingerFor for more rows. The store counts
// as under load when rows are waiting, another batch is being written, or
// the last commit ended less than busyWindow ago; an idle server commits at
// once.
const (
	lingerFor  = 1 * time.Millisecond
	busyWindow = 3 * time.Millisecond
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
	reqs    chan *insertReq
	stop    chan struct{}
	writers sync.WaitGroup

	epoch      time.Time    // for monotonic times in lastCommit
	lastCommit atomic.Int64 // when the latest commit of any writer ended, since epoch
	writing    atomic.Int32 // batches being written now
	batches    atomic.Int64 // batches written, for the benchmark's rows per batch

	stmtMu sync.Mutex
	stmts  [maxBatch + 1]*sql.Stmt // the n-row inserts by n, prepared on first use
}

func (s *Store) startBatcher(writers int) {
	s.batch = &batcher{reqs: make(chan *insertReq), stop: make(chan struct{}), epoch: time.Now()}
	for range writers {
		s.batch.writers.Go(s.batchLoop)
	}
}

func (s *Store) stopBatcher() {
	if s.batch == nil {
		return
	}
	close(s.batch.stop)
	s.batch.writers.Wait()
	for _, st := range s.batch.stmts {
		if st != nil {
			st.Close()
		}
	}
}

// busy reports whether more rows are likely to come within lingerFor.
func (b *batcher) busy() bool {
	return b.writing.Load() > 0 || time.Since(b.epoch)-time.Duration(b.lastCommit.Load()) < busyWindow
}

func (s *Store) batchLoop() {
	b := s.batch
	batch := make([]*insertReq, 0, maxBatch)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for {
		select {
		case <-b.stop:
			return
		case r := <-b.reqs:
			batch = append(batch[:0], r)
		}
	drain:
		for len(batch) < maxBatch {
			select {
			case r := <-b.reqs:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		if len(batch) < maxBatch && (len(batch) > 1 || b.busy()) {
			// Under load a short linger lets the requests now finishing
			// their signatures join this commit: fewer, larger
			// transactions for a little latency, as PostgreSQL's
			// commit_delay does.
			linger.Reset(lingerFor)
		collect:
			for len(batch) < maxBatch {
				select {
				case r := <-b.reqs:
					batch = append(batch, r)
				case <-linger.C:
					break collect
				}
			}
			linger.Stop()
		}
		b.writing.Add(1)
		s.commitBatch(batch)
		b.writing.Add(-1)
		b.batches.Add(1)
		b.lastCommit.Store(int64(time.Since(b.epoch)))
		clear(batch) // let the answered requests go
	}
}

// insertBatched hands one row to a batch writer and waits for its commit.
func (s *Store) insertBatched(ctx context.Context, key issuedKey, row []any) error {
	r := &insertReq{ctx: ctx, key: key, row: row, done: make(chan error, 1)}
	select {
	case s.batch.reqs <- r:
	case <-s.batch.stop:
		return fmt.Errorf("sqlstore: insert issued token: store closed: %w", store.ErrUnavailable)
	case <-ctx.Done():
		return classify(ctx.Err())
	}
	// Once handed over, the answer always comes: the writer owns the row.
	return <-r.done
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
	// The batch outlives any one caller's context; bound it on its own.
	ctx, cancel := context.WithTimeout(context.Background(), s.stmtTimeout)
	defer cancel()
	inserted, err := s.insertRows(ctx, rows)
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
	st, err := s.writerDB().PrepareContext(ctx, placeholders(s.driver, insertIssuedTokensSQL(n)))
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
