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
	"slices"
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
					s.startBatcher(writers)
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

// BenchmarkGroupCommitSchedule measures the group commit (groupcommit.go)
// against a commit per row, on the same queue and writer ("one-row": a
// batch of at most one row). Each of 1, 4 and 16 callers does what the
// exchange does: it hands its row to the store, signs an RS256 token
// meanwhile and then waits for the answer. On SQLite (a file, as in
// production) and on PostgreSQL (when PORTVAKT_TEST_POSTGRES_DSN is set)
// every variant runs schedRounds rounds of schedRound, interleaved round by
// round in a rotating order on one store, so that the shared machine's drift
// falls on all of them alike. It reports per variant the median rows/s with
// its spread over the rounds (IQR and min..max), the ratio of its median to
// the group commit's, the spread of the per-round ratios (round r of a
// variant against round r of the group commit, run next to it), rows per
// batch and CPU per row (this process's and its PostgreSQL backends'), as
// metrics and as a table in the log.
//
//	go test -run '^$' -bench GroupCommitSchedule -benchtime 1x ./internal/store/sqlstore/
//
// The group commit once had three scheduling rules on top of taking what is
// queued: a loaded store held a batch up to 4 ms after its first row
// ("hold"); a caller about to wait for a held row had it written at once
// when runtime/metrics counted no runnable goroutine ("idle-cores"); and
// when every queued row's caller waited ("all-wait"; with idle-cores: and
// fewer than 4 goroutines per core were runnable). This benchmark measured
// them, switched on alone and together, against the plain commit on the
// shared 2-core machine, 15 rounds of 250 ms each, while other builds kept
// the load average at 16 to 23. The table gives plain's median rows/s, and
// for each rule the ratio of its median to plain's with, in brackets, the
// interquartile range of its per-round ratios:
//
//	engine     conns  plain/s  hold              hold+idle-cores   hold+all-wait     hold+both
//	SQLite         1      437  0.34 [0.24-0.71]  0.79 [0.62-1.15]  0.96 [0.63-1.62]  0.42 [0.37-1.13]
//	SQLite         4      152  0.88 [0.89-1.14]  0.93 [0.76-1.15]  0.81 [0.73-1.33]  0.91 [0.77-1.31]
//	SQLite        16      218  0.88 [0.75-1.08]  0.81 [0.77-1.40]  0.88 [0.77-1.49]  0.87 [0.71-1.23]
//	PostgreSQL     1      314  0.38 [0.24-0.75]  0.62 [0.30-0.71]  0.98 [0.76-1.15]  0.89 [0.57-0.85]
//	PostgreSQL     4      160  0.93 [0.34-1.28]  0.90 [0.39-1.20]  0.93 [0.53-1.21]  1.03 [0.68-1.20]
//	PostgreSQL    16      163  0.87 [0.79-1.16]  1.01 [0.84-1.47]  0.79 [0.75-1.16]  0.83 [0.66-1.05]
//
// No rule gained more than its spread at any connection count, in this run
// or in two others. Holding alone, a lone caller's row waits out the hold:
// at 1 connection it lost in every run (median ratios 0.34 to 0.76). The hold grew the batches (at 16
// connections from 2.7 to 5.0 rows on SQLite, 6.6 to 8.4 on PostgreSQL) but
// bought no rows/s and no CPU per row that the noise did not hide. So the
// rules went, and with them a row's dependence on a timer, on other callers
// and on the runtime's count of runnable goroutines.
func BenchmarkGroupCommitSchedule(b *testing.B) {
	sign := signer(b)
	for _, driver := range []string{DriverSQLite, DriverPostgres} {
		b.Run(driver, func(b *testing.B) {
			cfg := Config{Driver: driver}
			writers := writersSQLite
			app := "" // the PostgreSQL backends' application_name, to read their CPU time
			if driver == DriverPostgres {
				app = fmt.Sprintf("portvakt-bench-%d", time.Now().UnixNano())
				cfg.DSN = pgtest.FreshSchema(b, pgtest.DSN(b)) + "&application_name=" + app
				writers = writersPostgres
			} else {
				cfg.DSN = filepath.Join(b.TempDir(), "bench.db")
			}
			s, err := Open(b.Context(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if err := s.Migrate(b.Context()); err != nil {
				b.Fatal(err)
			}
			l := schedLoader{s: s, app: app, sign: sign}
			for _, conns := range []int{1, 4, 16} {
				b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
					rounds := make([][]schedRoundResult, len(schedVariants))
					for round := range schedRounds {
						for k := range schedVariants {
							v := (round + k) % len(schedVariants) // rotate who goes first
							s.stopBatcher()
							s.startBatcher(0)
							s.batch.maxRows = schedVariants[v].maxRows
							for range writers {
								s.batch.writers.Go(s.batchLoop)
							}
							// Warm up: the statements prepared.
							l.run(b, conns, schedWarmUp)
							rounds[v] = append(rounds[v], l.run(b, conns, schedRound))
						}
					}
					schedReport(b, rounds)
				})
			}
		})
	}
}

// The variants of BenchmarkGroupCommitSchedule: the group commit first, the
// baseline of the ratios.
var schedVariants = []struct {
	name    string
	maxRows int
}{
	{"group", maxBatch},
	{"one-row", 1},
}

const (
	schedRounds  = 15 // per variant, at each connection count
	schedRound   = 250 * time.Millisecond
	schedWarmUp  = 100 * time.Millisecond
	schedMaxRows = 1 << 20 // per round: a bound far above what the machine does
)

type schedRoundResult struct {
	rowsPerSec   float64
	rowsPerBatch float64
	cpuPerRow    time.Duration // this process's and its PostgreSQL backends'
}

type schedLoader struct {
	s    *Store
	app  string // the PostgreSQL backends' application_name; "" on SQLite
	sign func() error
	jti  atomic.Int64 // unique across the rounds of one store
}

// cpu is the CPU time of this process and of its PostgreSQL backends.
func (l *schedLoader) cpu(b *testing.B) time.Duration {
	t := processCPU()
	if l.app != "" {
		t += backendCPU(b, l.s, l.app)
	}
	return t
}

// run runs conns callers for about d (at most schedMaxRows rows), each
// handing a row to the store, signing meanwhile and then waiting for the
// answer.
func (l *schedLoader) run(b *testing.B, conns int, d time.Duration) schedRoundResult {
	b.Helper()
	s, ctx := l.s, b.Context()
	tok := benchToken()
	batches0, cpu0 := s.batch.batches.Load(), l.cpu(b)
	var rows atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, conns)
	start := time.Now()
	deadline := start.Add(d)
	for c := range conns {
		wg.Go(func() {
			for errs[c] == nil && time.Now().Before(deadline) && rows.Load() < schedMaxRows {
				wait := s.StartInsertIssuedToken(ctx, withJTI(tok, l.jti.Add(1)))
				errs[c] = errors.Join(l.sign(), wait())
				rows.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
	n := rows.Load()
	return schedRoundResult{
		rowsPerSec:   float64(n) / elapsed.Seconds(),
		rowsPerBatch: float64(n) / float64(max(1, s.batch.batches.Load()-batches0)),
		cpuPerRow:    (l.cpu(b) - cpu0) / time.Duration(max(1, n)),
	}
}

// schedReport reports each variant's median rows/s with its spread over the
// rounds (interquartile range and min..max), the ratio of its median to
// variant 0's, and the spread of the per-round ratios (round r of a variant
// against round r of variant 0, run next to it).
func schedReport(b *testing.B, rounds [][]schedRoundResult) {
	b.Helper()
	field := func(rs []schedRoundResult, f func(schedRoundResult) float64) []float64 {
		out := make([]float64, len(rs))
		for i, r := range rs {
			out[i] = f(r)
		}
		return out
	}
	perSec := func(r schedRoundResult) float64 { return r.rowsPerSec }
	base := field(rounds[0], perSec)
	baseMedian := quantile(base, 0.5)
	var tab strings.Builder
	fmt.Fprintf(&tab, "%-16s %6s %11s %11s %6s %11s %11s %10s %10s %11s\n",
		"variant", "rows/s", "IQR", "min..max", "ratio", "ratio IQR", "min..max", "rows/batch", "cpu-us/row", "IQR")
	for v, rs := range rounds {
		xs := field(rs, perSec)
		ratios := make([]float64, len(xs))
		for i := range xs {
			ratios[i] = xs[i] / base[i]
		}
		m := quantile(xs, 0.5)
		name := schedVariants[v].name
		cpu := field(rs, func(r schedRoundResult) float64 { return float64(r.cpuPerRow.Microseconds()) })
		fmt.Fprintf(&tab, "%-16s %6.0f %5.0f..%-4.0f %5.0f..%-4.0f %6.2f %5.2f..%-4.2f %5.2f..%-4.2f %10.1f %10.0f %5.0f..%-4.0f\n", name,
			m, quantile(xs, 0.25), quantile(xs, 0.75), slices.Min(xs), slices.Max(xs),
			m/baseMedian, quantile(ratios, 0.25), quantile(ratios, 0.75), slices.Min(ratios), slices.Max(ratios),
			quantile(field(rs, func(r schedRoundResult) float64 { return r.rowsPerBatch }), 0.5),
			quantile(cpu, 0.5), quantile(cpu, 0.25), quantile(cpu, 0.75))
		b.ReportMetric(m, name+"-rows/s")
		b.ReportMetric(m/baseMedian, name+"-ratio")
	}
	b.Logf("%d rounds of %s per variant, interleaved; ratio: median / %s's median; ratio IQR and min..max: of round r / %s's round r\n%s",
		len(rounds[0]), schedRound, schedVariants[0].name, schedVariants[0].name, tab.String())
}

// quantile is the q-quantile of xs, interpolated between the closest ranks.
func quantile(xs []float64, q float64) float64 {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	pos := q * float64(len(xs)-1)
	i := int(pos)
	if i+1 >= len(xs) {
		return xs[len(xs)-1]
	}
	return xs[i] + (pos-float64(i))*(xs[i+1]-xs[i])
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
		insertIssuedTokenPrefix+"(?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (client_id, assertion_jti) DO NOTHING"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stmt.Close() })
	return func(ctx context.Context, t store.IssuedToken) error {
		scopes, _ := jsonText(t.Scopes)
		aud, _ := jsonText(t.Audience)
		return execOne(ctx, stmt, []any{t.ClientID, t.AssertionJTI, t.TokenJTI, t.ConsumerOrgno, t.SupplierOrgno,
			scopes, aud, ts(t.IssuedAt), ts(t.ExpiresAt), t.ClientAMR, t.CnfJKT, t.CnfX5T})
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
