package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/portvakt/portvakt/internal/store"
)

// Group commit for SQLite's issued-token inserts.
//
// SQLite has one writer. Committing every token's row on its own costs a
// transaction and a WAL append of every page the row touches (the table and
// its indexes) per token: most of the store's CPU per token. Instead one
// goroutine owns the writes: it takes the first waiting insert, drains what
// else is already waiting (never waiting for more, so an idle server adds no
// latency), inserts them with one multi-row INSERT ... ON CONFLICT DO
// NOTHING RETURNING (one statement, one transaction), and only then answers
// each caller: inserted, or ErrConflict when its key came back not inserted.
// Each row is still its own atomic replay check: a key repeated inside one
// batch conflicts with its own first row. When the statement fails, every
// caller of the batch gets the error and no token is issued.

const maxBatch = 64

// Under load a batch waits up to lingerFor for more rows. The store counts
// as under load when rows are waiting or the last commit ended less than
// busyWindow ago; an idle server commits at once.
const (
	lingerFor  = 1 * time.Millisecond
	busyWindow = 3 * time.Millisecond
)

type insertReq struct {
	ctx  context.Context
	row  []any
	done chan error
}

type batcher struct {
	reqs chan *insertReq
	stop chan struct{}
	dead chan struct{}
}

func (s *Store) startBatcher() {
	s.batch = &batcher{reqs: make(chan *insertReq), stop: make(chan struct{}), dead: make(chan struct{})}
	s.batchStmts = make([]*sql.Stmt, maxBatch+1)
	go s.batchLoop()
}

func (s *Store) stopBatcher() {
	if s.batch == nil {
		return
	}
	close(s.batch.stop)
	<-s.batch.dead
	for _, st := range s.batchStmts {
		if st != nil {
			st.Close()
		}
	}
}

func (s *Store) batchLoop() {
	defer close(s.batch.dead)
	batch := make([]*insertReq, 0, maxBatch)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	var lastCommit time.Time
	for {
		select {
		case <-s.batch.stop:
			return
		case r := <-s.batch.reqs:
			batch = append(batch[:0], r)
		}
	drain:
		for len(batch) < maxBatch {
			select {
			case r := <-s.batch.reqs:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		if len(batch) < maxBatch && (len(batch) > 1 || time.Since(lastCommit) < busyWindow) {
			// Under load (others waiting, or the last commit just now) a
			// short linger lets the requests now finishing their
			// signatures join this commit: fewer, larger transactions for
			// a little latency, as PostgreSQL's commit_delay does.
			linger.Reset(lingerFor)
		collect:
			for len(batch) < maxBatch {
				select {
				case r := <-s.batch.reqs:
					batch = append(batch, r)
				case <-linger.C:
					break collect
				}
			}
			linger.Stop()
		}
		s.commitBatch(batch)
		lastCommit = time.Now()
	}
}

// insertBatched hands one row to the batch writer and waits for its commit.
func (s *Store) insertBatched(ctx context.Context, row []any) error {
	r := &insertReq{ctx: ctx, row: row, done: make(chan error, 1)}
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

func (s *Store) commitBatch(batch []*insertReq) {
	live := batch[:0:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- classify(err)
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	// The batch outlives any one caller's context; bound it on its own.
	ctx, cancel := context.WithTimeout(context.Background(), s.stmtTimeout)
	defer cancel()
	inserted, err := s.insertRows(ctx, live)
	for _, r := range live {
		key := [2]any{r.row[0], r.row[1]}
		switch {
		case err != nil:
			r.done <- err
		case inserted[key]:
			// Only the first request with this key owns the inserted row:
			// a later one in the same batch is a replay of it.
			delete(inserted, key)
			r.done <- nil
		default:
			r.done <- fmt.Errorf("sqlstore: insert issued token for client %q: assertion jti already used: %w", r.row[0], store.ErrConflict)
		}
	}
}

// insertRows inserts the batch in one multi-row INSERT ... ON CONFLICT DO
// NOTHING RETURNING statement (autocommit: one transaction) and reports
// which (client_id, assertion_jti) keys it inserted. A key repeated inside
// the batch conflicts with its own first row, so it is inserted once.
func (s *Store) insertRows(ctx context.Context, batch []*insertReq) (map[[2]any]bool, error) {
	stmt, err := s.batchStatement(ctx, len(batch))
	if err != nil {
		return nil, wrap(err, "insert issued tokens: prepare")
	}
	args := make([]any, 0, len(batch)*len(batch[0].row))
	for _, r := range batch {
		args = append(args, r.row...)
	}
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return nil, wrap(err, "insert %d issued tokens", len(batch))
	}
	defer rows.Close()
	inserted := make(map[[2]any]bool, len(batch))
	for rows.Next() {
		var client, jti string
		if err := rows.Scan(&client, &jti); err != nil {
			return nil, wrap(err, "insert issued tokens: returning")
		}
		inserted[[2]any{client, jti}] = true
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(err, "insert %d issued tokens", len(batch))
	}
	return inserted, nil
}

// batchStatement prepares (once per size) the n-row insert.
func (s *Store) batchStatement(ctx context.Context, n int) (*sql.Stmt, error) {
	if st := s.batchStmts[n]; st != nil {
		return st, nil
	}
	var b strings.Builder
	b.WriteString(insertIssuedTokenPrefix)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?,?,?,?,?,?)")
	}
	b.WriteString(" ON CONFLICT (client_id, assertion_jti) DO NOTHING RETURNING client_id, assertion_jti")
	st, err := s.writerDB().PrepareContext(ctx, b.String())
	if err != nil {
		return nil, err
	}
	s.batchStmts[n] = st
	return st, nil
}

// execInsert runs the prepared replay insert for one row.
func execInsert(ctx context.Context, stmt *sql.Stmt, row []any) error {
	res, err := stmt.ExecContext(ctx, row...)
	if err != nil {
		return wrap(err, "insert issued token for client %q", row[0])
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrap(err, "insert issued token for client %q", row[0])
	}
	if n == 0 {
		return fmt.Errorf("sqlstore: insert issued token for client %q: assertion jti already used: %w", row[0], store.ErrConflict)
	}
	return nil
}
