package purge_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/purge"
	"github.com/portvakt/portvakt/internal/store"
)

// DPoP proofs go once their window has ended; live ones stay single use.
func TestPurgeDPoPProofs(t *testing.T) {
	ctx := t.Context()
	db := openSQLite(t)
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for i := range 7 {
		p := store.DPoPProof{JKT: "k", JTI: fmt.Sprintf("old-%d", i), Until: now.Add(-time.Duration(i+1) * time.Second)}
		if err := db.InsertDPoPProof(ctx, p, now.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	live := store.DPoPProof{JKT: "k", JTI: "live", Until: now.Add(time.Minute)}
	if err := db.InsertDPoPProof(ctx, live, now); err != nil {
		t.Fatal(err)
	}
	n, err := purge.Once(ctx, db, purge.Config{Batch: 3, Now: func() time.Time { return now }})
	if err != nil || n != 7 {
		t.Fatalf("purged %d (%v), want the 7 proofs past their window", n, err)
	}
	if err := db.InsertDPoPProof(ctx, live, now); err == nil {
		t.Fatal("the live proof was purged: its jti was accepted again")
	}
}
