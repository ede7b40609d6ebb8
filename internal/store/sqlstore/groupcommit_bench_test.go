package sqlstore

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/pgtest"
	"github.com/portvakt/portvakt/internal/store"
)

// BenchmarkGroupCommitPostgres compares, on PostgreSQL, the single-row insert
// that every token used to make (one prepared INSERT per token on the pool)
// with group commit by 1, 2 and 4 writer goroutines, under two loads of 16
// goroutines: back-to-back inserts ("inserts"), and an RS256 signature
// before each insert, a stand-in for the server's crypto ("signing"; the
// "crypto-bound" case signs without inserting). It reports rows/s, the CPU
// per row of this process and of the PostgreSQL backends serving its
// connections (found by application_name; they run on the same machine, as
// in scripts/bench.sh), and rows per batch. The machine is shared and
// noisy: compare cases of one run, and run it with -count.
//
//	go test -run '^$' -bench GroupCommitPostgres -benchtime 3000x -count 3 ./internal/store/sqlstore/
func BenchmarkGroupCommitPostgres(b *testing.B) {
	dsn := os.Getenv("PORTVAKT_TEST_POSTGRES_DSN")
	if dsn == "" {
		b.Skip("needs PORTVAKT_TEST_POSTGRES_DSN")
	}
	sign := signer(b)
	const goroutines = 16
	b.Run("signing/crypto-bound", func(b *testing.B) {
		run(b, goroutines, func(int64) error { return sign() })
	})
	for _, load := range []string{"inserts", "signing"} {
		for _, writers := range []int{0, 1, 2, 4} {
			mode := "single-row"
			if writers > 0 {
				mode = fmt.Sprintf("batched-w%d", writers)
			}
			b.Run(load+"/"+mode, func(b *testing.B) {
				app := fmt.Sprintf("portvakt-bench-%d", time.Now().UnixNano())
				s, err := Open(b.Context(), Config{Driver: DriverPostgres, DSN: pgtest.FreshSchema(b, dsn) + "&application_name=" + app})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				if err := s.Migrate(b.Context()); err != nil {
					b.Fatal(err)
				}
				insert := s.InsertIssuedToken
				if writers == 0 {
					insert = singleRowInsert(b, s)
				} else {
					s.stopBatcher()
					s.startBatcher(writers, holdFor)
				}
				tok := benchToken()
				do := func(i int64) error {
					if load == "signing" {
						if err := sign(); err != nil {
							return err
						}
					}
					return insert(b.Context(), withJTI(tok, i))
				}
				// Warm up the pool's connections and the statements.
				if err := parallel(goroutines, 500, func(i int64) error { return insert(b.Context(), withJTI(tok, -1-i)) }); err != nil {
					b.Fatal(err)
				}
				pgBefore := backendCPU(b, s, app)
				var batches0 int64
				if s.batch != nil {
					batches0 = s.batch.batches.Load()
				}
				run(b, goroutines, do)
				b.ReportMetric(float64((backendCPU(b, s, app)-pgBefore).Microseconds())/float64(b.N), "pg-cpu-us/row")
				if writers > 0 {
					b.ReportMetric(float64(b.N)/float64(s.batch.batches.Load()-batches0), "rows/batch")
				}
			})
		}
	}
}

// BenchmarkGroupCommitSQLite makes the replay inserts on SQLite as the
// exchange does: each of 16 goroutines hands its row to the store, signs an
// RS256 token meanwhile, and then waits for the commit. It compares holding
// the rows of a loaded store until their callers wait ("hold") with writing
// each batch at once ("no-hold"), and reports rows/s (against
// "crypto-bound", the signatures alone), this process's CPU per row and rows
// per batch.
//
//	go test -run '^$' -bench GroupCommitSQLite -benchtime 3000x -count 3 ./internal/store/sqlstore/
func BenchmarkGroupCommitSQLite(b *testing.B) {
	sign := signer(b)
	const goroutines = 16
	b.Run("crypto-bound", func(b *testing.B) {
		run(b, goroutines, func(int64) error { return sign() })
	})
	for _, hold := range []time.Duration{0, holdFor} {
		name := "hold"
		if hold == 0 {
			name = "no-hold"
		}
		b.Run(name, func(b *testing.B) {
			s, err := Open(b.Context(), Config{Driver: DriverSQLite, DSN: filepath.Join(b.TempDir(), "bench.db")})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if err := s.Migrate(b.Context()); err != nil {
				b.Fatal(err)
			}
			s.stopBatcher()
			s.startBatcher(writersSQLite, hold)
			tok := benchToken()
			if err := parallel(goroutines, 500, func(i int64) error { return s.InsertIssuedToken(b.Context(), withJTI(tok, -1-i)) }); err != nil {
				b.Fatal(err)
			}
			batches0 := s.batch.batches.Load()
			run(b, goroutines, func(i int64) error {
				wait := s.StartInsertIssuedToken(b.Context(), withJTI(tok, i))
				return errors.Join(sign(), wait())
			})
			b.ReportMetric(float64(b.N)/float64(s.batch.batches.Load()-batches0), "rows/batch")
		})
	}
}

// signer returns an RS256 signature of a fresh digest: the benchmarks'
// stand-in for the server's crypto.
func signer(b *testing.B) func() error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	return func() error {
		var buf [32]byte
		_, _ = rand.Read(buf[:])
		d := sha256.Sum256(buf[:])
		_, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, d[:])
		return err
	}
}

// benchToken is an issued-token row as the server writes one.
func benchToken() store.IssuedToken {
	now := time.Now()
	return store.IssuedToken{
		ClientID: "9b7ac4b2-3f0e-4a55-8c1e-2f5d6a7b8c9d", TokenJTI: "t", ConsumerOrgno: "910000002",
		Scopes: []string{"acme:a", "acme:b"}, Audience: []string{"unspecified"},
		IssuedAt: now, ExpiresAt: now.Add(2 * time.Minute), ClientAMR: "private_key_jwt",
	}
}

func withJTI(t store.IssuedToken, i int64) store.IssuedToken {
	t.AssertionJTI = strconv.FormatInt(i, 10)
	t.TokenJTI = "t" + t.AssertionJTI // unique, as the audit indexes see them
	return t
}

// run calls do(0) to do(b.N-1) on g goroutines and reports rows/s and this
// process's CPU per row.
func run(b *testing.B, g int, do func(i int64) error) {
	b.Helper()
	cpu0 := processCPU()
	busy0, idle0 := machineCPU()
	b.ResetTimer()
	start := time.Now()
	if err := parallel(g, int64(b.N), do); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	busy1, idle1 := machineCPU()
	if total := busy1 - busy0 + idle1 - idle0; total > 0 {
		// Idle cores while the load ran: it waited on something other
		// than CPU (the machine is otherwise CPU-bound).
		b.ReportMetric(float64(idle1-idle0)/float64(total), "machine-idle")
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "rows/s")
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-us/row")
}

// parallel calls do(0) to do(n-1) on g goroutines.
func parallel(g int, n int64, do func(i int64) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, g)
	for w := range g {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < n && errs[w] == nil; i = next.Add(1) - 1 {
				errs[w] = do(i)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// singleRowInsert is the replay insert as it was before PostgreSQL had group
// commit: one prepared single-row INSERT per token.
func singleRowInsert(b *testing.B, s *Store) func(ctx context.Context, t store.IssuedToken) error {
	stmt, err := s.writerDB().PrepareContext(b.Context(), placeholders(s.driver,
		insertIssuedTokenPrefix+"(?,?,?,?,?,?,?,?,?,?) ON CONFLICT (client_id, assertion_jti) DO NOTHING"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stmt.Close() })
	return func(ctx context.Context, t store.IssuedToken) error {
		scopes, _ := jsonText(t.Scopes)
		aud, _ := jsonText(t.Audience)
		return execOne(ctx, stmt, []any{t.ClientID, t.AssertionJTI, t.TokenJTI, t.ConsumerOrgno, t.SupplierOrgno,
			scopes, aud, ts(t.IssuedAt), ts(t.ExpiresAt), t.ClientAMR})
	}
}

func execOne(ctx context.Context, stmt *sql.Stmt, row []any) error {
	res, err := stmt.ExecContext(ctx, row...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("inserted %d rows: %v", n, err)
	}
	return nil
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineCPU reads the machine's busy and idle (with iowait) jiffies from
// /proc/stat; zeros where there is none.
func machineCPU() (busy, idle int64) {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	for i, f := range strings.Fields(line)[1:] {
		n, _ := strconv.ParseInt(f, 10, 64)
		switch i {
		case 3, 4: // idle, iowait
			idle += n
		case 7, 8, 9: // steal, guest, guest_nice (guest is in user already)
			if i == 7 {
				busy += n
			}
		default:
			busy += n
		}
	}
	return busy, idle
}

// backendCPU sums the CPU time of the PostgreSQL backends whose
// application_name is app, from /proc (the server runs on this machine).
func backendCPU(b *testing.B, s *Store, app string) time.Duration {
	b.Helper()
	rows, err := s.writerDB().QueryContext(b.Context(), "SELECT pid FROM pg_stat_activity WHERE application_name = $1", app)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var total time.Duration
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			b.Fatal(err)
		}
		// schedstat's first field: nanoseconds on a CPU.
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/schedstat", pid))
		if err != nil {
			b.Skipf("cannot read the backends' CPU: %v", err)
		}
		ns, err := strconv.ParseInt(strings.Fields(string(raw))[0], 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		total += time.Duration(ns)
	}
	return total
}
