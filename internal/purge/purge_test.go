package purge_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/purge"
	"github.com/portvakt/portvakt/internal/store"
	"github.com/portvakt/portvakt/internal/store/sqlstore"
)

func TestPurgeInBoundedBatches(t *testing.T) {
	ctx := t.Context()
	db, err := sqlstore.Open(ctx, sqlstore.Config{Driver: "sqlite", DSN: filepath.Join(t.TempDir(), "p.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	insert := func(n int, exp time.Time, prefix string) {
		for i := range n {
			err := db.InsertIssuedToken(ctx, store.IssuedToken{
				ClientID: "c", AssertionJTI: fmt.Sprintf("%s-%d", prefix, i), TokenJTI: fmt.Sprintf("t-%s-%d", prefix, i),
				ConsumerOrgno: "310000035", Scopes: []string{"demo:read"}, Audience: []string{},
				IssuedAt: exp.Add(-2 * time.Minute), ExpiresAt: exp, ClientAMR: "private_key_jwt",
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	insert(10, now.Add(-48*time.Hour), "old") // past a 24h retention
	insert(4, now.Add(-time.Hour), "recent")  // within it
	var batches []int
	cfg := purge.Config{Retention: 24 * time.Hour, Batch: 3, MaxPerRun: 6, Now: func() time.Time { return now },
		OnPurge: func(n int, err error) { batches = append(batches, n) }}

	n, err := purge.Once(ctx, db, cfg)
	if err != nil || n != 6 {
		t.Fatalf("first run purged %d (%v), want 6 (MaxPerRun)", n, err)
	}
	if fmt.Sprint(batches) != "[3 3]" {
		t.Fatalf("batches %v, want [3 3]", batches)
	}
	n, err = purge.Once(ctx, db, cfg)
	if err != nil || n != 4 {
		t.Fatalf("second run purged %d (%v), want 4", n, err)
	}
	rows, err := db.ListIssuedTokens(ctx, store.IssuedTokenFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 {
		t.Fatalf("%d rows left, want the 4 recent ones", len(rows))
	}
	for _, r := range rows {
		if r.ExpiresAt.Before(now.Add(-24 * time.Hour)) {
			t.Fatalf("a row past retention survived: %+v", r)
		}
	}
}
