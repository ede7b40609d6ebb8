package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/pgtest"
	"github.com/portvakt/portvakt/internal/store"
)

// engines opens a fresh, migrated store per engine for the batch tests,
// which drive commitBatch directly. Without PORTVAKT_TEST_POSTGRES_DSN the
// PostgreSQL case skips (and fails under CI), as in the package's other
// tests.
func engines(t *testing.T, run func(t *testing.T, s *Store)) {
	t.Helper()
	open := func(t *testing.T, cfg Config) *Store {
		t.Helper()
		s, err := Open(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		return s
	}
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		run(t, open(t, Config{Driver: DriverSQLite, DSN: filepath.Join(t.TempDir(), "b.db")}))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		dsn := os.Getenv("PORTVAKT_TEST_POSTGRES_DSN")
		if dsn == "" {
			if os.Getenv("CI") != "" {
				t.Fatal("PostgreSQL tests need PORTVAKT_TEST_POSTGRES_DSN")
			}
			t.Skip("SKIPPING POSTGRESQL TESTS: PORTVAKT_TEST_POSTGRES_DSN is not set")
		}
		run(t, open(t, Config{Driver: DriverPostgres, DSN: pgtest.FreshSchema(t, dsn)}))
	})
}

var testNow = time.Now()

func testRow(jti string) []any {
	return []any{"client", jti, "t-" + jti, "310000035", "", "[]", "[]", ts(testNow), ts(testNow.Add(time.Minute)), "private_key_jwt", "", ""}
}

// commit runs one batch of the given rows and returns each request's answer:
// ok, replay, or the error.
func commit(s *Store, ctxs []context.Context, rows [][]any) []string {
	batch := make([]*insertReq, len(rows))
	for i, row := range rows {
		batch[i] = &insertReq{ctx: ctxs[i], key: issuedKey{row[0].(string), row[1].(string)}, row: row, done: make(chan error, 1)}
	}
	s.commitBatch(batch)
	got := make([]string, len(batch))
	for i, r := range batch {
		err := <-r.done
		switch {
		case err == nil:
			got[i] = "ok"
		case errors.Is(err, store.ErrConflict):
			got[i] = "replay"
		default:
			got[i] = err.Error()
		}
	}
	return got
}

func background(n int) []context.Context {
	ctxs := make([]context.Context, n)
	for i := range ctxs {
		ctxs[i] = context.Background()
	}
	return ctxs
}

// tokenJTIs lists the token_jti of every stored row, by assertion jti.
func tokenJTIs(t *testing.T, s *Store) map[string]string {
	t.Helper()
	got, err := s.ListIssuedTokens(t.Context(), store.IssuedTokenFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[string]string, len(got))
	for _, tok := range got {
		m[tok.AssertionJTI] = tok.TokenJTI
	}
	return m
}

// One batch holding the same key several times issues exactly one token: the
// first request owns the inserted row, the others are replays. A key already
// in the table conflicts for every request.
func TestBatchWithRepeatedKeysInsertsOnce(t *testing.T) {
	t.Parallel()
	engines(t, func(t *testing.T, s *Store) {
		if got := commit(s, background(1), [][]any{testRow("old")}); fmt.Sprint(got) != "[ok]" {
			t.Fatalf("insert old: %v", got)
		}
		jtis := []string{"a", "a", "b", "a", "old", "b", "c"}
		rows := make([][]any, len(jtis))
		for i, j := range jtis {
			rows[i] = testRow(j)
			rows[i][2] = fmt.Sprintf("t-%s-%d", j, i) // which request's row was kept
		}
		got := commit(s, background(len(rows)), rows)
		want := "[ok replay ok replay replay replay ok]"
		if fmt.Sprint(got) != want {
			t.Fatalf("got %v, want %s", got, want)
		}
		stored := tokenJTIs(t, s)
		wantStored := map[string]string{"old": "t-old", "a": "t-a-0", "b": "t-b-2", "c": "t-c-6"}
		if fmt.Sprint(stored) != fmt.Sprint(wantStored) {
			t.Fatalf("stored %v, want %v: the row of the request told ok", stored, wantStored)
		}
	})
}

// When the statement fails, every request of the batch gets the error (also
// a replay of a key inside it) and no row is written.
func TestBatchStatementFailsForEveryone(t *testing.T) {
	t.Parallel()
	engines(t, func(t *testing.T, s *Store) {
		bad := testRow("bad")
		bad[3] = nil // consumer_orgno is NOT NULL
		rows := [][]any{testRow("a"), bad, testRow("b"), testRow("a")}
		for i, got := range commit(s, background(len(rows)), rows) {
			if got == "ok" || got == "replay" {
				t.Errorf("request %d: %s, want the statement's error", i, got)
			}
		}
		if stored := tokenJTIs(t, s); len(stored) != 0 {
			t.Fatalf("stored %v after a failed batch, want nothing", stored)
		}
	})
}

// A request whose caller gave up before the batch was written gets its
// context error and its row is not written; the rest of the batch is.
func TestBatchSkipsCancelledRequests(t *testing.T) {
	t.Parallel()
	engines(t, func(t *testing.T, s *Store) {
		cancelled, cancel := context.WithCancel(context.Background())
		cancel()
		ctxs := background(3)
		ctxs[1] = cancelled
		got := commit(s, ctxs, [][]any{testRow("a"), testRow("gone"), testRow("b")})
		if got[0] != "ok" || got[1] != context.Canceled.Error() || got[2] != "ok" {
			t.Fatalf("got %v, want [ok %v ok]", got, context.Canceled)
		}
		if stored := tokenJTIs(t, s); fmt.Sprint(stored) != "map[a:t-a b:t-b]" {
			t.Fatalf("stored %v, want a and b only", stored)
		}
	})
}

// Each batch size prepares its own statement, up to maxBatch rows: the most
// parameters one statement binds.
func TestBatchStatementPerSize(t *testing.T) {
	t.Parallel()
	engines(t, func(t *testing.T, s *Store) {
		for _, n := range []int{1, 2, maxBatch} {
			rows := make([][]any, n)
			for i := range rows {
				rows[i] = testRow(fmt.Sprintf("n%d-%d", n, i))
			}
			for i, got := range commit(s, background(n), rows) {
				if got != "ok" {
					t.Fatalf("size %d, row %d: %s", n, i, got)
				}
			}
		}
		if got := len(tokenJTIs(t, s)); got != 3+maxBatch {
			t.Fatalf("%d rows, want %d", got, 3+maxBatch)
		}
		var sizes []int
		for n, st := range s.batch.stmts {
			if st != nil {
				sizes = append(sizes, n)
			}
		}
		if fmt.Sprint(sizes) != fmt.Sprint([]int{1, 2, maxBatch}) {
			t.Fatalf("prepared sizes %v, want [1 2 %d]", sizes, maxBatch)
		}
	})
}

// The batch statements bind issuedTokenColumns values per row: the column
// list of the insert must have that many.
func TestIssuedTokenColumns(t *testing.T) {
	cols := insertIssuedTokenPrefix[strings.Index(insertIssuedTokenPrefix, "(")+1 : strings.Index(insertIssuedTokenPrefix, ")")]
	if n := len(strings.Split(cols, ",")); n != issuedTokenColumns {
		t.Fatalf("insert lists %d columns, issuedTokenColumns is %d", n, issuedTokenColumns)
	}
	if n := strings.Count(insertIssuedTokensSQL(1), "?"); n != issuedTokenColumns {
		t.Fatalf("one-row insert binds %d values, want %d", n, issuedTokenColumns)
	}
}

// Writers sharing one queue (as PostgreSQL could have) write overlapping
// batches: every key is still inserted once, by one request, without
// deadlocks between batches that hold the same keys.
func TestBatchWritersShareTheQueue(t *testing.T) {
	t.Parallel()
	engines(t, func(t *testing.T, s *Store) {
		s.stopBatcher()
		s.startBatcher(4)
		const keys, each = 100, 4
		errs := make([]error, keys*each)
		order := rand.Perm(len(errs)) // each key's submissions in random places
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() {
				<-start
				k := order[i] % keys
				tok := store.IssuedToken{ClientID: "client", AssertionJTI: fmt.Sprintf("j%d", k), TokenJTI: fmt.Sprintf("t%d", i),
					ConsumerOrgno: "310000035", IssuedAt: testNow, ExpiresAt: testNow.Add(time.Minute)}
				errs[i] = s.InsertIssuedToken(t.Context(), tok)
			})
		}
		close(start)
		wg.Wait()
		ok := 0
		for i, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, store.ErrConflict):
				t.Errorf("insert %d: %v", i, err)
			}
		}
		if got := len(tokenJTIs(t, s)); ok != keys || got != keys {
			t.Fatalf("%d inserts ok and %d rows, want %d and %d", ok, got, keys, keys)
		}
	})
}

// parked restarts s's batcher without a writer, so that the rows handed
// over stay queued until the test starts one (startWriter).
func parked(s *Store) *batcher {
	s.stopBatcher()
	s.startBatcher(0)
	return s.batch
}

// startWriter starts a writer goroutine on a parked batcher.
func startWriter(s *Store) {
	s.batch.writers.Go(s.batchLoop)
}

// submitN hands n rows to the batcher without asking for the answers.
func submitN(s *Store, prefix string, n int) []*insertReq {
	reqs := make([]*insertReq, n)
	for i := range reqs {
		jti := fmt.Sprintf("%s%d", prefix, i)
		reqs[i] = s.batch.submit(context.Background(), issuedKey{"client", jti}, testRow(jti))
	}
	return reqs
}

// The rows queued while no writer is free go together in the next batch, up
// to maxBatch rows each: maxBatch+5 queued rows are two statements.
func TestQueuedRowsShareABatch(t *testing.T) {
	engines(t, func(t *testing.T, s *Store) {
		var mu sync.Mutex
		var sizes []int
		s.onBatch = func(rows int, _ time.Duration, _ error) {
			mu.Lock()
			sizes = append(sizes, rows)
			mu.Unlock()
		}
		b := parked(s)
		reqs := submitN(s, "j", maxBatch+5)
		startWriter(s)
		for i, r := range reqs {
			if err := b.wait(r); err != nil {
				t.Fatalf("row %d: %v", i, err)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if n := b.batches.Load(); n != 2 || fmt.Sprint(sizes) != fmt.Sprint([]int{maxBatch, 5}) {
			t.Fatalf("%d rows in %d batches of %v rows, want [%d 5]", len(reqs), n, sizes, maxBatch)
		}
		if got := len(tokenJTIs(t, s)); got != len(reqs) {
			t.Fatalf("%d rows stored, want %d", got, len(reqs))
		}
	})
}

// A row is written whether or not its caller asks for the answer: nothing
// holds it back for its caller, or for anyone else.
func TestRowIsWrittenWithoutWaiting(t *testing.T) {
	engines(t, func(t *testing.T, s *Store) {
		r := submitN(s, "j", 1)[0]
		select {
		case err := <-r.done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the row was not written in 20 s, its caller not waiting")
		}
		if got := len(tokenJTIs(t, s)); got != 1 {
			t.Fatalf("%d rows stored, want 1", got)
		}
	})
}

// Closing the store fails the rows still queued, and writes none of them:
// no token is issued for them.
func TestCloseFailsQueuedRows(t *testing.T) {
	engines(t, func(t *testing.T, s *Store) {
		parked(s)
		reqs := submitN(s, "queued", 3)
		s.stopBatcher()
		for i, r := range reqs {
			if err := <-r.done; !errors.Is(err, store.ErrUnavailable) {
				t.Fatalf("queued row %d after close: %v, want ErrUnavailable", i, err)
			}
		}
		if err := s.StartInsertIssuedToken(t.Context(), store.IssuedToken{ClientID: "client", AssertionJTI: "late"})(); !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("row handed over after close: %v, want ErrUnavailable", err)
		}
		if got := len(tokenJTIs(t, s)); got != 0 {
			t.Fatalf("%d rows stored, want none", got)
		}
		s.startBatcher(1) // for Close
	})
}

// The Observer is told of every statement: the distinct rows it tried to insert
// (a key repeated in the batch is one row) and how it went.
func TestEveryBatchIsReported(t *testing.T) {
	engines(t, func(t *testing.T, s *Store) {
		type report struct {
			rows int
			took time.Duration
			err  error
		}
		var mu sync.Mutex
		var got []report
		s.onBatch = func(rows int, took time.Duration, err error) {
			mu.Lock()
			got = append(got, report{rows, took, err})
			mu.Unlock()
		}
		b := parked(s)
		reqs := submitN(s, "j", maxBatch-1)
		reqs = append(reqs, b.submit(context.Background(), issuedKey{"client", "j0"}, testRow("j0"))) // fills the batch
		startWriter(s)
		for i, r := range reqs {
			err := <-r.done
			if i < len(reqs)-1 && err != nil {
				t.Fatalf("row %d: %v", i, err)
			}
			if i == len(reqs)-1 && !errors.Is(err, store.ErrConflict) {
				t.Fatalf("the repeated key: %v, want ErrConflict", err)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if len(got) != 1 || got[0].rows != maxBatch-1 || got[0].err != nil || got[0].took <= 0 {
			t.Fatalf("reports %+v, want one batch of %d rows, without error, with its duration", got, maxBatch-1)
		}
	})
}
