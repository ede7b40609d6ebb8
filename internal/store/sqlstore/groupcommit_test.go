package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/store"
)

// One batch holding the same key several times issues exactly one token: the
// first request owns the inserted row, the others are replays. A key already
// in the table conflicts for every request.
func TestBatchWithRepeatedKeysInsertsOnce(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, Config{Driver: DriverSQLite, DSN: filepath.Join(t.TempDir(), "b.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	row := func(jti string) []any {
		return []any{"client", jti, "t-" + jti, "310000035", "", "[]", "[]", ts(now), ts(now.Add(time.Minute)), "private_key_jwt"}
	}
	if err := s.InsertIssuedToken(ctx, store.IssuedToken{ClientID: "client", AssertionJTI: "old", TokenJTI: "t-old",
		ConsumerOrgno: "310000035", IssuedAt: now, ExpiresAt: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	jtis := []string{"a", "a", "b", "a", "old", "b", "c"}
	batch := make([]*insertReq, len(jtis))
	for i, j := range jtis {
		batch[i] = &insertReq{ctx: context.Background(), row: row(j), done: make(chan error, 1)}
	}
	s.commitBatch(batch)
	var got []string
	for i, r := range batch {
		err := <-r.done
		switch {
		case err == nil:
			got = append(got, jtis[i]+":ok")
		case errors.Is(err, store.ErrConflict):
			got = append(got, jtis[i]+":replay")
		default:
			t.Fatalf("%s: %v", jtis[i], err)
		}
	}
	want := "[a:ok a:replay b:ok a:replay old:replay b:replay c:ok]"
	if fmt.Sprint(got) != want {
		t.Fatalf("got %v, want %s", got, want)
	}
}
