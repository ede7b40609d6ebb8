package conformance

import (
	"fmt"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/store"
)

func dpopCases() []testCase {
	return []testCase{
		{"ok/dpop/insert-distinct", testDPoPDistinct},
		{"fail/dpop/replay-within-window", testDPoPReplay},
		{"fail/dpop/concurrent-replay", testDPoPConcurrentReplay},
		{"ok/dpop/expired-row-taken-over", testDPoPTakeOver},
		{"ok/dpop/purge-batches", testDPoPPurge},
	}
}

// The same jti under two keys, and two jtis under one key, are distinct.
func testDPoPDistinct(t *testing.T, s store.Store) {
	ctx := t.Context()
	until := t0.Add(time.Minute)
	for _, p := range []store.DPoPProof{{JKT: "k1", JTI: "a", Until: until}, {JKT: "k2", JTI: "a", Until: until}, {JKT: "k1", JTI: "b", Until: until}} {
		noErr(t, s.InsertDPoPProof(ctx, p, t0), "InsertDPoPProof "+p.JKT+"/"+p.JTI)
	}
}

func testDPoPReplay(t *testing.T, s store.Store) {
	ctx := t.Context()
	p := store.DPoPProof{JKT: "k1", JTI: "a", Until: t0.Add(time.Minute)}
	noErr(t, s.InsertDPoPProof(ctx, p, t0), "InsertDPoPProof")
	wantErr(t, s.InsertDPoPProof(ctx, p, t0.Add(59*time.Second)), store.ErrConflict, "InsertDPoPProof again within the window")
}

func testDPoPConcurrentReplay(t *testing.T, s store.Store) {
	ctx := t.Context()
	oneWins(t, "InsertDPoPProof", func(int) error {
		return s.InsertDPoPProof(ctx, store.DPoPProof{JKT: "k", JTI: "same", Until: t0.Add(time.Minute)}, t0)
	})
}

// A row whose window has passed does not refuse a new proof with its key
// (the purge may not have run yet), and the new row is live again.
func testDPoPTakeOver(t *testing.T, s store.Store) {
	ctx := t.Context()
	p := store.DPoPProof{JKT: "k1", JTI: "a", Until: t0.Add(time.Minute)}
	noErr(t, s.InsertDPoPProof(ctx, p, t0), "InsertDPoPProof")
	later := t0.Add(time.Minute)
	p.Until = later.Add(time.Minute)
	noErr(t, s.InsertDPoPProof(ctx, p, later), "InsertDPoPProof after the window")
	wantErr(t, s.InsertDPoPProof(ctx, p, later.Add(time.Second)), store.ErrConflict, "InsertDPoPProof within the new window")
}

func testDPoPPurge(t *testing.T, s store.Store) {
	ctx := t.Context()
	for i := range 10 {
		p := store.DPoPProof{JKT: "k", JTI: fmt.Sprintf("old-%d", i), Until: t0.Add(time.Duration(i) * time.Second)}
		noErr(t, s.InsertDPoPProof(ctx, p, t0.Add(-time.Hour)), "InsertDPoPProof")
	}
	live := store.DPoPProof{JKT: "k", JTI: "live", Until: t0.Add(time.Hour)}
	noErr(t, s.InsertDPoPProof(ctx, live, t0), "InsertDPoPProof")
	cutoff := t0.Add(10 * time.Second)
	for i, want := range []int{4, 4, 2, 0} {
		n, err := s.PurgeDPoPProofs(ctx, cutoff, 4)
		noErr(t, err, "PurgeDPoPProofs")
		if n != want {
			t.Fatalf("PurgeDPoPProofs batch %d deleted %d rows, want %d", i, n, want)
		}
	}
	wantErr(t, s.InsertDPoPProof(ctx, live, t0), store.ErrConflict, "the live proof after the purge")
	// The purged keys are free again.
	noErr(t, s.InsertDPoPProof(ctx, store.DPoPProof{JKT: "k", JTI: "old-0", Until: t0.Add(time.Hour)}, t0), "InsertDPoPProof of a purged key")
}
