package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/portvakt/portvakt/internal/store"
)

// Group commit for SQLite's issued-token inserts.
//
// SQLite has one writer. Committing every token's row on its own costs a
// transaction and a WAL append of every page the row touches (the table and
// its indexes) per token: most of the store's CPU per token. Instead one
// goroutine owns the writes: it takes the first waiting insert, drains what
// else is already waiting (never waiting for more, so an idle server adds no
// latency), runs each as its own INSERT ... ON CONFLICT DO NOTHING in one
// transaction, commits, and only then answers each caller. Each row is still
// its own atomic replay check: a jti repeated inside one batch conflicts
// with the row inserted before it in the same transaction. A caller learns
// its row exists only after the commit; when the commit fails, every caller
// of the batch gets the error and no token is issued.

const maxBatch = 64

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
	go s.batchLoop()
}

func (s *Store) stopBatcher() {
	if s.batch == nil {
		return
	}
	close(s.batch.stop)
	<-s.batch.dead
}

func (s *Store) batchLoop() {
	defer close(s.batch.dead)
	batch := make([]*insertReq, 0, maxBatch)
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
		s.commitBatch(batch)
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
	fail := func(err error) {
		for _, r := range batch {
			if r.done != nil {
				r.done <- err
			}
		}
	}
	stmt, err := s.insertStatement(context.Background())
	if err != nil {
		fail(wrap(err, "insert issued token: prepare"))
		return
	}
	// The batch outlives any one caller's context; bound it on its own.
	ctx, cancel := context.WithTimeout(context.Background(), s.stmtTimeout)
	defer cancel()
	tx, err := s.writerDB().BeginTx(ctx, nil)
	if err != nil {
		fail(wrap(err, "insert issued token: begin"))
		return
	}
	txStmt := tx.StmtContext(ctx, stmt)
	results := make([]error, len(batch))
	inserted := 0
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			results[i] = classify(err)
			continue
		}
		results[i] = execInsert(ctx, txStmt, r.row)
		if results[i] == nil {
			inserted++
		}
	}
	if inserted == 0 {
		_ = tx.Rollback()
	} else if err := tx.Commit(); err != nil {
		fail(wrap(err, "insert issued token: commit"))
		return
	}
	for i, r := range batch {
		r.done <- results[i]
	}
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
