package sqlstore_test

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/purge"
	"github.com/portvakt/portvakt/internal/store"
	"github.com/portvakt/portvakt/internal/store/sqlstore"
)

// day0 is the pinned "today" of these tests, a UTC day boundary.
var day0 = time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)

func token(client, jti string, iat, exp time.Time) store.IssuedToken {
	return store.IssuedToken{
		ClientID: client, AssertionJTI: jti, TokenJTI: "tok-" + client + "-" + jti,
		ConsumerOrgno: "910000002", Scopes: []string{"acme:a"}, Audience: []string{},
		IssuedAt: iat, ExpiresAt: exp, ClientAMR: "private_key_jwt",
	}
}

func clock(t *time.Time) func() time.Time { return func() time.Time { return *t } }

// The partitioned purge on PostgreSQL: whole days past retention are
// dropped, the others stay, and the replay check holds across a partition
// boundary and after the purge (the replay table, not the history, decides).
func TestPartitionedPurgePostgres(t *testing.T) {
	t.Parallel()
	b := postgresBackend(t)
	ctx := t.Context()
	now := day0.AddDate(0, 0, -3).Add(12 * time.Hour) // the migration makes partitions from day0-3
	cfg := b.config(t)
	cfg.Now = clock(&now)
	s := openStore(t, cfg)
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	insert := func(tok store.IssuedToken) error { return s.InsertIssuedToken(ctx, tok) }
	old := []store.IssuedToken{
		token("c1", "old-3", day0.AddDate(0, 0, -3).Add(10*time.Hour), day0.AddDate(0, 0, -3).Add(10*time.Hour+2*time.Minute)),
		token("c1", "old-2", day0.AddDate(0, 0, -2).Add(-time.Second), day0.AddDate(0, 0, -1).Add(-time.Second)), // day -2's last second
	}
	kept := []store.IssuedToken{
		token("c2", "kept-1", day0.AddDate(0, 0, -1).Add(time.Hour), day0.AddDate(0, 0, -1).Add(time.Hour+2*time.Minute)),
	}
	// An assertion used just before midnight, its token expiring before
	// midnight too (day -1's partition) ...
	edge := token("c3", "edge", day0.Add(-2*time.Second), day0.Add(-500*time.Millisecond))
	for _, tok := range append(append(slices.Clone(old), kept...), edge) {
		if err := insert(tok); err != nil {
			t.Fatalf("insert %s: %v", tok.AssertionJTI, err)
		}
	}
	// ... and replayed just after it: its token would go to day 0's.
	replay := token("c3", "edge", day0.Add(time.Second), day0.Add(2*time.Minute+time.Second))
	replay.TokenJTI = "replayed"
	if err := insert(replay); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("replay across the day boundary: %v, want ErrConflict", err)
	}

	now = day0.Add(30 * time.Second)
	n, err := purge.Once(ctx, s, purge.Config{Retention: 24 * time.Hour, Now: clock(&now)})
	if err != nil {
		t.Fatalf("purge: %v", err)
	}
	if n != len(old) {
		t.Fatalf("purge removed %d rows, want the %d of the dropped days", n, len(old))
	}
	days, err := s.PartitionsForTest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{}
	for d := -1; d <= 7; d++ {
		want = append(want, day0.AddDate(0, 0, d).Format("20060102"))
	}
	if fmt.Sprint(days) != fmt.Sprint(want) {
		t.Fatalf("partitions after the purge %v, want %v (days -3 and -2 dropped, 7 ahead)", days, want)
	}
	got, err := s.ListIssuedTokens(ctx, store.IssuedTokenFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(jtis(got)) != fmt.Sprint([]string{"edge", "kept-1"}) {
		t.Fatalf("rows after the purge: %v, want [edge kept-1]", jtis(got))
	}
	if err := insert(replay); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("replay after the purge: %v, want ErrConflict", err)
	}
	// A key whose assertion has long expired is free again.
	if err := insert(token("c1", "old-3", now, now.Add(2*time.Minute))); err != nil {
		t.Fatalf("a purged key: %v, want it free", err)
	}

	// A row with no partition for its day lands in the default partition,
	// is found there, and moves to its day's partition when it is made.
	far := token("c4", "far", now, day0.AddDate(0, 0, 30))
	if err := insert(far); err != nil {
		t.Fatal(err)
	}
	inDefault := func() string {
		rows, err := s.QueryStringsForTest(ctx, "SELECT COUNT(*) FROM issued_tokens_default")
		if err != nil {
			t.Fatal(err)
		}
		return rows[0]
	}
	if c := inDefault(); c != "1" {
		t.Fatalf("%s rows in the default partition, want the far one", c)
	}
	now = day0.AddDate(0, 0, 29)
	if _, err := s.MaintainIssuedTokens(ctx, now, now.AddDate(0, 0, -90)); err != nil {
		t.Fatalf("housekeeping: %v", err)
	}
	if c := inDefault(); c != "0" {
		t.Fatalf("%s rows in the default partition after its day's partition was made, want 0", c)
	}
	got, err = s.ListIssuedTokens(ctx, store.IssuedTokenFilter{ClientID: "c4"})
	if err != nil || len(got) != 1 {
		t.Fatalf("the moved row: %v, %v", jtis(got), err)
	}
}

func jtis(toks []store.IssuedToken) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		out[i] = t.AssertionJTI
	}
	return out
}

// Migration 6 converts a populated table: every row is kept and found by
// the new indexes, and a recent key is still a replay.
func TestMigrationConvertsIssuedTokensSQLite(t *testing.T) {
	t.Parallel()
	testMigrationConvertsIssuedTokens(t, sqliteBackend())
}

func TestMigrationConvertsIssuedTokensPostgres(t *testing.T) {
	t.Parallel()
	testMigrationConvertsIssuedTokens(t, postgresBackend(t))
}

func testMigrationConvertsIssuedTokens(t *testing.T, b backend) {
	ctx := t.Context()
	now := day0.Add(12 * time.Hour)
	cfg := b.config(t)
	cfg.Now = clock(&now)
	s := openStore(t, cfg)
	if err := s.MigrateToForTest(ctx, 2); err != nil {
		t.Fatalf("migrate to 2: %v", err)
	}
	ts := func(t time.Time) string { return "'" + t.UTC().Format("2006-01-02 15:04:05") + "+00:00'" }
	for i, iat := range []time.Time{now.AddDate(0, 0, -5), now.AddDate(0, 0, -1), now.Add(-time.Minute)} {
		q := fmt.Sprintf(`INSERT INTO issued_tokens (client_id, assertion_jti, token_jti, consumer_orgno, supplier_orgno, scopes, audience, issued_at, expires_at, client_amr)
 VALUES ('c1', 'j%d', 't%d', '910000002', '', '["prov:a","other:b"]', '[]', %s, %s, 'private_key_jwt')`, i, i, ts(iat), ts(iat.Add(2*time.Minute)))
		if err := s.ExecForTest(ctx, q); err != nil {
			t.Fatalf("seed: %v", err)
		}
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate a populated table: %v", err)
	}
	got, err := s.ListIssuedTokens(ctx, store.IssuedTokenFilter{ScopePrefixes: []string{"prov"}})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(jtis(got)) != "[j2 j1 j0]" {
		t.Fatalf("rows under prov after the migration: %v, want [j2 j1 j0]", jtis(got))
	}
	err = s.InsertIssuedToken(ctx, token("c1", "j2", now, now.Add(time.Minute)))
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("replay of a key issued a minute before the migration: %v, want ErrConflict", err)
	}
}

// auditRows is how many other tokens the audit test seeds: 200,000 by
// default (20,000 under the race detector), PORTVAKT_TEST_AUDIT_ROWS for the
// million-row run.
func auditRows(t *testing.T) int {
	if v := os.Getenv("PORTVAKT_TEST_AUDIT_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1000 {
			t.Fatalf("PORTVAKT_TEST_AUDIT_ROWS=%q: want a number >= 1000", v)
		}
		return n
	}
	if raceEnabled {
		return 20_000
	}
	return 200_000
}

func TestAuditQueryAtScaleSQLite(t *testing.T) {
	t.Parallel()
	testAuditQueryAtScale(t, sqliteBackend(), sqlstore.DriverSQLite)
}

func TestAuditQueryAtScalePostgres(t *testing.T) {
	t.Parallel()
	testAuditQueryAtScale(t, postgresBackend(t), sqlstore.DriverPostgres)
}

// seedIssuedTokens fills the table with n tokens of 20,000 other orgs and
// 5,000 other providers' scopes, spread over three days from day0, in one
// statement per table.
func seedIssuedTokens(t *testing.T, s *sqlstore.Store, driver string, n int) {
	t.Helper()
	ctx := t.Context()
	if driver == sqlstore.DriverPostgres {
		row := `SELECT 'seed' || (i % 3000), 'a' || i, 't' || lpad(i::text, 9, '0'), (800000000 + i % 20000)::text,
 CASE WHEN i % 10 = 0 THEN (810000000 + i % 5000)::text ELSE '' END,
 '["p' || (i % 5000) || ':read","q' || (i % 4999) || ':write"]', '[]',
 $1::timestamptz + make_interval(secs => i::bigint * 259200 / $2::bigint),
 $1::timestamptz + make_interval(secs => i::bigint * 259200 / $2::bigint + 120),
 'private_key_jwt' FROM generate_series(1, $2::bigint) AS g(i)`
		if _, err := s.QueryStringsForTest(ctx, `INSERT INTO issued_tokens `+row, day0, n); err != nil {
			t.Fatalf("seed: %v", err)
		}
		_, err := s.QueryStringsForTest(ctx, `INSERT INTO issued_token_prefixes (prefix, issued_at, token_jti, expires_at)
 SELECT split_part(s.value, ':', 1), t.issued_at, t.token_jti, t.expires_at FROM issued_tokens t,
 jsonb_array_elements_text(t.scopes::jsonb) AS s(value)`)
		if err != nil {
			t.Fatalf("seed prefixes: %v", err)
		}
		if _, err := s.QueryStringsForTest(ctx, "ANALYZE"); err != nil {
			t.Fatal(err)
		}
		return
	}
	// SQLite: a recursive CTE; the trigger writes the prefix rows.
	q := `WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < ?)
INSERT INTO issued_tokens (client_id, assertion_jti, token_jti, consumer_orgno, supplier_orgno, scopes, audience, issued_at, expires_at, client_amr)
SELECT 'seed' || (i % 3000), 'a' || i, 't' || printf('%09d', i), CAST(800000000 + i % 20000 AS TEXT),
 CASE WHEN i % 10 = 0 THEN CAST(810000000 + i % 5000 AS TEXT) ELSE '' END,
 '["p' || (i % 5000) || ':read","q' || (i % 4999) || ':write"]', '[]',
 strftime('%Y-%m-%d %H:%M:%S+00:00', ?, '+' || (i * 259200 / ?) || ' seconds'),
 strftime('%Y-%m-%d %H:%M:%S+00:00', ?, '+' || (i * 259200 / ? + 120) || ' seconds'),
 'private_key_jwt' FROM g`
	t0 := day0.Format("2006-01-02 15:04:05")
	if _, err := s.QueryStringsForTest(ctx, q, n, t0, n, t0, n); err != nil {
		t.Fatalf("seed: %v", err)
	}
	if _, err := s.QueryStringsForTest(ctx, "ANALYZE"); err != nil {
		t.Fatal(err)
	}
}

// GET /audit's token half for an org with a handful of tokens among many
// others, as consumer, vendor and provider: each answers in well under the
// request timeout, and the plan walks the indexes made for it.
func testAuditQueryAtScale(t *testing.T, b backend, driver string) {
	ctx := t.Context()
	now := day0
	cfg := b.config(t)
	cfg.Now = clock(&now)
	s := openStore(t, cfg)
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	n := auditRows(t)
	start := time.Now()
	seedIssuedTokens(t, s, driver, n)
	t.Logf("%s: seeded %d tokens in %s", driver, n, time.Since(start).Round(time.Millisecond))

	const org = "999999999"
	var mine []store.IssuedToken
	at := func(i int) time.Time { return day0.Add(time.Duration(i) * 3 * time.Hour) }
	for i := range 5 { // as consumer
		tok := token("mine-c", fmt.Sprintf("c%d", i), at(i), at(i).Add(2*time.Minute))
		tok.ConsumerOrgno = org
		mine = append(mine, tok)
	}
	for i := range 4 { // as vendor
		tok := token("mine-v", fmt.Sprintf("v%d", i), at(i+5), at(i+5).Add(2*time.Minute))
		tok.ConsumerOrgno, tok.SupplierOrgno = "800000001", org
		mine = append(mine, tok)
	}
	for i := range 6 { // as provider of "mineprov"
		tok := token("mine-p", fmt.Sprintf("p%d", i), at(i+9), at(i+9).Add(2*time.Minute))
		tok.ConsumerOrgno, tok.Scopes = "800000002", []string{"p1:read", "mineprov:x"}
		mine = append(mine, tok)
	}
	for _, tok := range mine {
		if err := s.InsertIssuedToken(ctx, tok); err != nil {
			t.Fatalf("insert: %v", err)
		}
	}
	if _, err := s.QueryStringsForTest(ctx, "ANALYZE"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		f     store.IssuedTokenFilter
		want  int
		index []string // in the plan
	}{
		{"ok/consumer", store.IssuedTokenFilter{Org: org}, 9, []string{"issued_tokens_consumer_orgno", "issued_tokens_supplier_orgno"}},
		{"ok/consumer-vendor-provider", store.IssuedTokenFilter{Org: org, ScopePrefixes: []string{"mineprov"}}, 15,
			[]string{"issued_tokens_consumer_orgno", "issued_tokens_supplier_orgno", "issued_token_prefixes"}},
		{"ok/provider-only", store.IssuedTokenFilter{ScopePrefixes: []string{"mineprov"}}, 6, []string{"issued_token_prefixes"}},
		{"ok/provider-page-2", store.IssuedTokenFilter{ScopePrefixes: []string{"mineprov"},
			BeforeIssuedAt: at(12), BeforeTokenJTI: "tok-mine-p-p3"}, 3, []string{"issued_token_prefixes"}},
		{"ok/busy-provider", store.IssuedTokenFilter{ScopePrefixes: []string{"p1"}, Limit: 51}, min(51, (n-1)/5000+1+6), []string{"issued_token_prefixes"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.f.Limit = cmpOr(tc.f.Limit, 51)
			start := time.Now()
			got, err := s.ListIssuedTokens(ctx, tc.f)
			took := time.Since(start)
			if err != nil {
				t.Fatalf("ListIssuedTokens: %v", err)
			}
			t.Logf("%s %s among %d: %d tokens in %s", driver, tc.name, n, len(got), took.Round(time.Microsecond))
			if len(got) != tc.want {
				t.Fatalf("%d tokens, want %d", len(got), tc.want)
			}
			if took > 2*time.Second {
				t.Fatalf("took %s, want well under the 5 s request timeout", took)
			}
			q, args := s.IssuedTokensQueryForTest(tc.f)
			explain := "EXPLAIN QUERY PLAN "
			if driver == sqlstore.DriverPostgres {
				explain = "EXPLAIN "
			}
			plan, err := s.QueryStringsForTest(ctx, explain+q, args...)
			if err != nil {
				t.Fatalf("EXPLAIN: %v", err)
			}
			text := strings.Join(plan, "\n")
			for _, ix := range tc.index {
				if ix = planName(driver, ix); !strings.Contains(text, ix) {
					t.Fatalf("plan does not use %s:\n%s", ix, text)
				}
			}
			if bad := fullScan(driver, plan); bad != "" {
				t.Fatalf("plan scans a whole table (%s):\n%s", bad, text)
			}
		})
	}
}

// planName is how an index shows in the engine's plan: SQLite names the
// index (the prefix table's is its primary key), PostgreSQL the partition's
// index, named by its columns.
func planName(driver, index string) string {
	if driver == sqlstore.DriverSQLite {
		if index == "issued_token_prefixes" {
			return "SEARCH p USING PRIMARY KEY (prefix=?"
		}
		return "USING INDEX " + index + " ("
	}
	return map[string]string{
		"issued_tokens_consumer_orgno": "consumer_orgno_issued_at_token_jti_idx",
		"issued_tokens_supplier_orgno": "supplier_orgno_issued_at_token_jti_idx",
		"issued_token_prefixes":        "prefix_issued_at_token_jti_idx",
	}[index]
}

func cmpOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

// seqCost is the total cost of a PostgreSQL plan line, "cost=a..b".
func seqCost(line string) float64 {
	_, c, ok := strings.Cut(line, "cost=")
	if !ok {
		return 0
	}
	_, c, _ = strings.Cut(c, "..")
	c, _, _ = strings.Cut(c, " ")
	f, _ := strconv.ParseFloat(c, 64)
	return f
}

// fullScan returns a plan line that reads a whole table of issued tokens
// or prefixes, if any.
func fullScan(driver string, plan []string) string {
	for _, l := range plan {
		switch driver {
		case sqlstore.DriverSQLite:
			// "SCAN t" without an index; SCAN of a subquery or CTE is fine.
			if strings.Contains(l, "SCAN t") && !strings.Contains(l, "INDEX") || strings.Contains(l, "SCAN p") && !strings.Contains(l, "INDEX") {
				return l
			}
		case sqlstore.DriverPostgres:
			// The planner reads a nearly empty partition whole, which is
			// fine: only a scan it costs as large is a table's full scan.
			if strings.Contains(l, "Seq Scan on issued_token") && seqCost(l) > 1000 {
				return l
			}
		}
	}
	return ""
}
