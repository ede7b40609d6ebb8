package conformance

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/store"
)

func rateKeys(rows []store.RateCount) []string {
	var out []string
	for _, r := range rows {
		out = append(out, fmt.Sprintf("%s/%s=%d", r.Replica, r.Key, r.Admitted))
	}
	slices.Sort(out)
	return out
}

func exchange(t *testing.T, s store.Store, x store.RateExchange) []store.RateCount {
	t.Helper()
	rows, err := s.ExchangeRateCounts(t.Context(), x)
	noErr(t, err, "ExchangeRateCounts "+x.Replica)
	return rows
}

// Each replica writes its own rows and reads the others' (not its own),
// updated since the given time; a second turn replaces its rows.
func testRateExchange(t *testing.T, s store.Store) {
	t1 := t0.Add(time.Second)
	if got := exchange(t, s, store.RateExchange{Replica: "a", Now: t0, Since: t0.Add(-time.Minute),
		Counts: []store.RateCount{{Key: "c:1", Started: t0, Admitted: 3}, {Key: "o:1", Started: t0, Admitted: 5}}}); len(got) != 0 {
		t.Fatalf("first turn of a: got %v, want nothing", rateKeys(got))
	}
	got := exchange(t, s, store.RateExchange{Replica: "b", Now: t1, Since: t0.Add(-time.Minute),
		Counts: []store.RateCount{{Key: "c:1", Started: t1, Admitted: 7}}})
	equal(t, rateKeys(got), []string{"a/c:1=3", "a/o:1=5"}, "b reads a's rows")
	for _, r := range got {
		if !r.Started.Equal(t0.Truncate(time.Microsecond)) || !r.Updated.Equal(t0.Truncate(time.Microsecond)) {
			t.Errorf("row %s/%s: started %v updated %v, want both %v", r.Replica, r.Key, r.Started, r.Updated, t0)
		}
	}
	// a replaces one row with a restarted counter.
	t2 := t1.Add(time.Second)
	got = exchange(t, s, store.RateExchange{Replica: "a", Now: t2, Since: t0.Add(-time.Minute),
		Counts: []store.RateCount{{Key: "c:1", Started: t2, Admitted: 1}}})
	equal(t, rateKeys(got), []string{"b/c:1=7"}, "a reads b's rows")
	got = exchange(t, s, store.RateExchange{Replica: "b", Now: t2, Since: t2})
	equal(t, rateKeys(got), []string{"a/c:1=1"}, "b reads a's rows updated since t2")
	if !got[0].Started.Equal(t2.Truncate(time.Microsecond)) {
		t.Errorf("restarted counter: started %v, want %v", got[0].Started, t2)
	}
}

// Rows not updated since ExpireBefore are deleted, except the caller's own.
func testRateExpire(t *testing.T, s store.Store) {
	exchange(t, s, store.RateExchange{Replica: "dead", Now: t0, Counts: []store.RateCount{{Key: "c:1", Started: t0, Admitted: 1}}})
	exchange(t, s, store.RateExchange{Replica: "live", Now: t0, Counts: []store.RateCount{{Key: "c:2", Started: t0, Admitted: 1}}})
	later := t0.Add(2 * time.Minute)
	got := exchange(t, s, store.RateExchange{Replica: "live", Now: later, Since: t0.Add(-time.Hour), ExpireBefore: later.Add(-time.Minute)})
	if len(got) != 0 {
		t.Fatalf("after expiry: got %v, want nothing", rateKeys(got))
	}
	got = exchange(t, s, store.RateExchange{Replica: "other", Now: later, Since: t0.Add(-time.Hour)})
	equal(t, rateKeys(got), []string{"live/c:2=1"}, "the expiring replica's own row stays")
}

// More counters than one statement holds, and the read limit.
func testRateManyAndLimit(t *testing.T, s store.Store) {
	n := 2*store.MaxRateCountsPerStatement + 17
	counts := make([]store.RateCount, n)
	for i := range counts {
		counts[i] = store.RateCount{Key: fmt.Sprintf("c:%05d", i), Started: t0, Admitted: int64(i + 1)}
	}
	exchange(t, s, store.RateExchange{Replica: "a", Now: t0, Counts: counts})
	got := exchange(t, s, store.RateExchange{Replica: "b", Now: t0, Since: t0})
	if len(got) != n {
		t.Fatalf("read %d rows, want %d", len(got), n)
	}
	var sum int64
	for _, r := range got {
		if !strings.HasPrefix(r.Key, "c:") {
			t.Fatalf("unexpected key %q", r.Key)
		}
		sum += r.Admitted
	}
	if want := int64(n) * int64(n+1) / 2; sum != want {
		t.Errorf("sum of admitted %d, want %d", sum, want)
	}
	if got := exchange(t, s, store.RateExchange{Replica: "b", Now: t0, Since: t0, Limit: 10}); len(got) != 10 {
		t.Errorf("with limit 10: %d rows", len(got))
	}
}
