package purge_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/purge"
	"github.com/portvakt/portvakt/internal/store"
	"github.com/portvakt/portvakt/internal/store/sqlstore"
)

// BenchmarkTokensDuringPurgeSQLite measures what a purge of a large backlog
// costs the token path on SQLite: 16 goroutines each sign (RSA 2048, the
// server's crypto) and insert the issued-token row (group commit), as the
// token endpoint does, for phaseFor at a time, alternately with no purge
// ("idle") and with the paced purge clearing the backlog; last one phase with
// the unpaced purge (WriterShare 1: back-to-back batches, as before). It
// reports tokens/s of each and the paced and unpaced ones as a share of the
// idle phases around them. The backlog is PORTVAKT_PURGE_BACKLOG expired rows
// (default 200,000; the figures in the closing note are from 1,000,000).
//
//	go test -run '^$' -bench TokensDuringPurgeSQLite -benchtime 1x ./internal/purge/
func BenchmarkTokensDuringPurgeSQLite(b *testing.B) {
	backlog := 200_000
	if v := os.Getenv("PORTVAKT_PURGE_BACKLOG"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1000 {
			b.Fatalf("PORTVAKT_PURGE_BACKLOG=%q: want a number >= 1000", v)
		}
		backlog = n
	}
	const phaseFor = 4 * time.Second
	ctx := b.Context()
	db := openSQLite(b)
	now := time.Now()
	start := time.Now()
	seedExpired(b, db, backlog, now.AddDate(0, 0, -100))
	b.Logf("seeded %d expired rows in %s", backlog, time.Since(start).Round(time.Millisecond))

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	// tokens runs the token load for d and returns tokens/s.
	tokens := func(d time.Duration) float64 {
		stop := time.Now().Add(d)
		var n atomic.Int64
		var wg sync.WaitGroup
		errs := make([]error, 16)
		for w := range 16 {
			wg.Go(func() {
				for time.Now().Before(stop) && errs[w] == nil {
					i := next.Add(1)
					iat := time.Now()
					wait := db.StartInsertIssuedToken(ctx, store.IssuedToken{
						ClientID: "bench", AssertionJTI: "a" + strconv.FormatInt(i, 10), TokenJTI: "t" + strconv.FormatInt(i, 10),
						ConsumerOrgno: "910000002", Scopes: []string{"acme:a", "beta:b"}, Audience: []string{},
						IssuedAt: iat, ExpiresAt: iat.Add(2 * time.Minute), ClientAMR: "private_key_jwt",
					})
					var buf [32]byte
					_, _ = rand.Read(buf[:])
					h := sha256.Sum256(buf[:])
					_, serr := rsa.SignPKCS1v15(nil, key, crypto.SHA256, h[:])
					errs[w] = errors.Join(serr, wait())
					n.Add(1)
				}
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			b.Fatal(err)
		}
		return float64(n.Load()) / d.Seconds()
	}
	// during runs the token load while a purge with share runs.
	purged := 0
	during := func(share float64) float64 {
		pctx, cancel := context.WithCancel(ctx)
		done := make(chan int)
		go func() {
			n, _ := purge.Once(pctx, db, purge.Config{Retention: 24 * time.Hour, MaxPerRun: 1 << 30, WriterShare: share})
			done <- n
		}()
		r := tokens(phaseFor)
		cancel()
		purged += <-done
		return r
	}
	b.ResetTimer()
	for range b.N {
		var idle, paced []float64
		for range 3 {
			idle = append(idle, tokens(phaseFor))
			paced = append(paced, during(0))
		}
		idle = append(idle, tokens(phaseFor))
		unpaced := during(1)
		idle = append(idle, tokens(phaseFor))
		mean := func(xs []float64) float64 {
			s := 0.0
			for _, x := range xs {
				s += x
			}
			return s / float64(len(xs))
		}
		b.Logf("tokens/s idle %s, paced purge %s, unpaced %.0f; %d rows purged", fmtAll(idle), fmtAll(paced), unpaced, purged)
		b.ReportMetric(mean(idle), "idle-tokens/s")
		b.ReportMetric(mean(paced), "paced-tokens/s")
		b.ReportMetric(mean(paced)/mean(idle[:4]), "paced/idle")
		b.ReportMetric(unpaced/mean(idle[3:]), "unpaced/idle")
	}
}

func fmtAll(xs []float64) string {
	s := ""
	for i, x := range xs {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%.0f", x)
	}
	return s
}

// seedExpired inserts n rows that expired around exp, in batches through
// the store's own insert.
func seedExpired(b *testing.B, db *sqlstore.Store, n int, exp time.Time) {
	ctx := b.Context()
	var wg sync.WaitGroup
	var next atomic.Int64
	errs := make([]error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(n) && errs[w] == nil; i = next.Add(1) {
				e := exp.Add(time.Duration(i) * time.Millisecond)
				errs[w] = db.InsertIssuedToken(ctx, store.IssuedToken{
					ClientID: "seed", AssertionJTI: "s" + strconv.FormatInt(i, 10), TokenJTI: "st" + strconv.FormatInt(i, 10),
					ConsumerOrgno: strconv.Itoa(800000000 + int(i%20000)), Scopes: []string{"p" + strconv.Itoa(int(i%5000)) + ":read"},
					Audience: []string{}, IssuedAt: e.Add(-2 * time.Minute), ExpiresAt: e, ClientAMR: "private_key_jwt",
				})
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
}
