package scaleout_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portvakt/portvakt/internal/pgtest"
	"github.com/portvakt/portvakt/internal/testserver"
)

// With the rules cache warm, issuing a token costs one SQL statement: the
// issued-token insert. Counted by pg_stat_statements on a cluster of the
// test's own (utility statements such as BEGIN and COMMIT included).
func TestStatementsPerToken(t *testing.T) {
	pg := startCluster(t, "shared_preload_libraries=pg_stat_statements", "pg_stat_statements.track=all", "pg_stat_statements.track_utility=on")
	pgtest.Exec(t, pg.DSN, "CREATE EXTENSION pg_stat_statements")
	srv := testserver.Start(t, testserver.Options{Driver: "postgres", DSN: pg.DSN})
	hc := newHTTPClient()
	c := srv.PKI.ConsumerKID
	for range 5 { // warm: rules cache, pools, the prepared insert
		if r := request(t, hc, srv, c, "demo:read"); r.status != http.StatusOK {
			t.Fatalf("warm-up: %d %s %v", r.status, r.code, r.err)
		}
	}
	pgtest.Exec(t, pg.DSN, "SELECT pg_stat_statements_reset()")
	const n = 100
	for range n {
		if r := request(t, hc, srv, c, "demo:read"); r.status != http.StatusOK {
			t.Fatalf("token: %d %s %v", r.status, r.code, r.err)
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT query, calls FROM pg_stat_statements
		WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND calls > 0`)
	if err != nil {
		t.Fatal(err)
	}
	var inserts, tokenPath, background int64
	for rows.Next() {
		var q string
		var calls int64
		if err := rows.Scan(&q, &calls); err != nil {
			t.Fatal(err)
		}
		flat := strings.Join(strings.Fields(q), " ")
		switch {
		case strings.Contains(flat, "pg_stat_statements"):
			continue // this test's own
		case strings.Contains(flat, "FROM generation"), strings.HasPrefix(flat, "LISTEN"),
			flat == "SELECT $1", strings.HasPrefix(flat, "DELETE FROM issued_tokens"):
			// The rules poll, the change listener and its keep-alive, the
			// purge: on timers, not per token.
			background += calls
			t.Logf("background %5d  %s", calls, flat)
			continue
		case strings.Contains(flat, "event_deliveries"), strings.Contains(flat, "FROM events"),
			strings.Contains(flat, "delivery_attempts"), strings.Contains(flat, `FROM "clients"`),
			strings.HasPrefix(flat, "INSERT INTO leases"):
			// The event worker: its delivery poll, its purge and the key
			// expiry scan (its lease, a page of clients). With the rules cache warm
			// the token path never reads clients.
			background += calls
			t.Logf("background %5d  %s", calls, flat)
			continue
		case strings.HasPrefix(flat, "INSERT INTO issued_tokens"),
			strings.HasPrefix(flat, "WITH v (client_id, assertion_jti") && strings.Contains(flat, "INSERT INTO issued_tokens"):
			// The replay key, the row and its prefixes: one statement.
			inserts += calls
		}
		tokenPath += calls
		t.Logf("token path %5d  %s", calls, flat)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	per := float64(tokenPath) / n
	t.Logf("%d tokens: %d statements on the token path (%.2f per token; %d issued-token inserts), %d background",
		n, tokenPath, per, inserts, background)
	if inserts != n {
		t.Errorf("%d issued-token inserts for %d tokens", inserts, n)
	}
	if per > 1 {
		t.Errorf("%.2f SQL statements per token, want at most 1", per)
	}
}
