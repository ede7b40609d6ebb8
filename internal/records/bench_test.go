package records_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/store"
)

// BenchmarkClientScopeBound: a client listing six thousand scopes is
// refused by its count, so it costs less than checking a valid client of
// a hundred. Both are measured interleaved in the same run; refused/valid
// is the ratio (below 1 when the bound holds).
func BenchmarkClientScopeBound(b *testing.B) {
	scopes := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = "acme:scope." + strconv.Itoa(i)
		}
		return out
	}
	valid := store.Client{ClientName: "a client", Description: "calls the ACME API", Scopes: scopes(100)}
	refused := store.Client{ClientName: "a client", Description: "calls the ACME API", Scopes: scopes(6000)}
	var tValid, tRefused time.Duration
	for b.Loop() {
		start := time.Now()
		if errs := records.ValidateClient(valid); errs != nil {
			b.Fatal(errs)
		}
		mid := time.Now()
		if errs := records.ValidateClient(refused); len(errs) != 1 {
			b.Fatal(errs)
		}
		tValid += mid.Sub(start)
		tRefused += time.Since(mid)
	}
	b.ReportMetric(float64(tValid.Nanoseconds())/float64(b.N), "ns/valid-100")
	b.ReportMetric(float64(tRefused.Nanoseconds())/float64(b.N), "ns/refused-6000")
	b.ReportMetric(float64(tRefused)/float64(tValid), "refused/valid")
}
