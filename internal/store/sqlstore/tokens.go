package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portvakt/portvakt/internal/store"
)

const defaultListLimit = 100

func listLimit(n int) int {
	if n <= 0 {
		return defaultListLimit
	}
	return n
}

const insertIssuedTokenPrefix = `INSERT INTO issued_tokens
 (client_id, assertion_jti, token_jti, consumer_orgno, supplier_orgno, scopes, audience, issued_at, expires_at, client_amr, cnf_jkt, cnf_x5t)
 VALUES `

// placeholders rewrites ? into PostgreSQL's $n.
func placeholders(driver, query string) string {
	if driver != DriverPostgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// InsertIssuedToken is the replay check: INSERT ... ON CONFLICT DO NOTHING,
// atomic in the database also across replicas. No row inserted means
// (ClientID, AssertionJTI) was there: ErrConflict. It is on the path of
// every token, so it skips gorm, and on both engines concurrent inserts
// share one statement and one transaction (see groupcommit.go): a commit per
// token would cost SQLite's one writer a WAL append of each page the row
// touches, and PostgreSQL a round trip and a commit in a backend that shares
// the machine's CPU with the signatures.
func (s *Store) InsertIssuedToken(ctx context.Context, t store.IssuedToken) error {
	return s.StartInsertIssuedToken(ctx, t)()
}

// StartInsertIssuedToken queues the row for the group commit and returns at
// once; wait waits for its batch (see groupcommit.go).
func (s *Store) StartInsertIssuedToken(ctx context.Context, t store.IssuedToken) (wait func() error) {
	scopes, err := jsonText(t.Scopes)
	if err != nil {
		return failed(wrap(err, "insert issued token"))
	}
	aud, err := jsonText(t.Audience)
	if err != nil {
		return failed(wrap(err, "insert issued token"))
	}
	row := []any{t.ClientID, t.AssertionJTI, t.TokenJTI, t.ConsumerOrgno, t.SupplierOrgno,
		scopes, aud, ts(t.IssuedAt), ts(t.ExpiresAt), t.ClientAMR, t.CnfJKT, t.CnfX5T}
	r := s.batch.submit(ctx, issuedKey{t.ClientID, t.AssertionJTI}, row)
	return func() error { return s.batch.wait(r) }
}

func failed(err error) func() error { return func() error { return err } }

// ListIssuedTokens reads issued-token rows, newest first (see
// store.IssuedTokenFilter).
//
// Whose tokens (Org, ScopePrefixes) is a disjunction that no one index
// serves, and an OR over it would walk the whole table by time. Each
// disjunct is instead its own walk down an index in (issued_at, token_jti)
// order: the consumer's, the supplier's (issued_tokens), and each prefix's
// (issued_token_prefixes, joined back to the row). Every walk applies all
// the other filters and stops after Limit rows; the union of the walks,
// sorted and cut to Limit, is the answer. So a page costs at most Limit
// rows per disjunct, however many other tokens the table holds. The Scope
// filter is a LIKE over the JSON of the scopes: it only narrows a walk.
func (s *Store) ListIssuedTokens(ctx context.Context, f store.IssuedTokenFilter) ([]store.IssuedToken, error) {
	q, args := issuedTokensQuery(f)
	var rows []issuedTokenRow
	if err := s.reader.db.WithContext(ctx).Raw(q, args...).Scan(&rows).Error; err != nil {
		return nil, wrap(err, "list issued tokens")
	}
	out := make([]store.IssuedToken, len(rows))
	for i, row := range rows {
		var err error
		if out[i], err = row.record(); err != nil {
			return nil, wrap(err, "list issued tokens")
		}
	}
	return out, nil
}

// issuedTokensQuery is ListIssuedTokens' SQL, with ? placeholders.
func issuedTokensQuery(f store.IssuedTokenFilter) (string, []any) {
	limit := listLimit(f.Limit)
	var walks []string
	var walkArgs []any
	// walk adds one disjunct's walk: time rides on tc's columns (the index
	// walked), the rest on the row's.
	walk := func(from, tc, cond string, condArg any) {
		where, args := issuedTokenNarrowing("t.", tc, f)
		walks = append(walks, "SELECT * FROM (SELECT t.issued_at, t.token_jti, t.expires_at FROM "+from+" WHERE "+
			strings.Join(append([]string{cond}, where...), " AND ")+
			" ORDER BY "+tc+"issued_at DESC, "+tc+"token_jti DESC LIMIT "+strconv.Itoa(limit)+") w")
		walkArgs = append(walkArgs, condArg)
		walkArgs = append(walkArgs, args...)
	}
	if f.Org != "" {
		walk("issued_tokens t", "t.", "t.consumer_orgno = ?", f.Org)
		walk("issued_tokens t", "t.", "t.supplier_orgno = ? AND t.supplier_orgno <> ''", f.Org)
	}
	if f.ManagedBy != "" {
		// The tokens of the clients a vendor manages (clients_managed_by,
		// 00003): few clients, each found by the key's client_id.
		walk("issued_tokens t", "t.", "t.client_id IN (SELECT client_id FROM clients WHERE managed_by = ?)", f.ManagedBy)
	}
	for _, p := range slices.Compact(slices.Sorted(slices.Values(f.ScopePrefixes))) {
		walk("issued_token_prefixes p JOIN issued_tokens t ON t.issued_at = p.issued_at AND t.token_jti = p.token_jti AND t.expires_at = p.expires_at",
			"p.", "p.prefix = ?", p)
	}
	order := " ORDER BY t.issued_at DESC, t.token_jti DESC LIMIT " + strconv.Itoa(limit)
	var q string
	if len(walks) == 0 {
		where, args := issuedTokenNarrowing("t.", "t.", f)
		q = "SELECT " + issuedTokenSelect + " FROM issued_tokens t WHERE " + strings.Join(append([]string{"1 = 1"}, where...), " AND ") + order
		walkArgs = args
	} else {
		q = "SELECT " + issuedTokenSelect + " FROM issued_tokens t JOIN (" + strings.Join(walks, " UNION ") +
			") k ON t.issued_at = k.issued_at AND t.token_jti = k.token_jti AND t.expires_at = k.expires_at" + order
	}
	return q, walkArgs
}

const issuedTokenSelect = "t.client_id, t.assertion_jti, t.token_jti, t.consumer_orgno, t.supplier_orgno, t.scopes, t.audience, t.issued_at, t.expires_at, t.client_amr, t.cnf_jkt, t.cnf_x5t"

// issuedTokenNarrowing is the SQL of the filters other than whose tokens:
// on the issued_tokens columns named with p, but the times on those named
// with tc (the index being walked).
func issuedTokenNarrowing(p, tc string, f store.IssuedTokenFilter) (where []string, args []any) {
	if f.ClientID != "" {
		where, args = append(where, p+"client_id = ?"), append(args, f.ClientID)
	}
	if f.Scope != "" {
		where, args = append(where, p+scopesLike), append(args, jsonLikePattern(f.Scope, true))
	}
	if !f.From.IsZero() {
		where, args = append(where, tc+"issued_at >= ?"), append(args, ts(f.From))
	}
	if !f.To.IsZero() {
		where, args = append(where, tc+"issued_at < ?"), append(args, ts(f.To))
	}
	if !f.BeforeIssuedAt.IsZero() {
		where = append(where, "("+tc+"issued_at < ? OR ("+tc+"issued_at = ? AND "+tc+"token_jti < ?))")
		args = append(args, ts(f.BeforeIssuedAt), ts(f.BeforeIssuedAt), f.BeforeTokenJTI)
	}
	return where, args
}

// scopesLike matches the scopes column, a JSON array of strings, against a
// jsonLikePattern. '!' is the escape character on both engines (PostgreSQL's
// default would be the backslash, SQLite has none).
const scopesLike = "scopes LIKE ? ESCAPE '!'"

// jsonLikePattern is the LIKE pattern finding s as a JSON string inside the
// scopes column: the whole string when whole, else a string starting with s.
// s is encoded as jsonText encodes it, and LIKE's wildcards in it are
// escaped, so that "a_b" does not also find "axb".
func jsonLikePattern(s string, whole bool) string {
	b, _ := json.Marshal(s) // a string always encodes
	enc := string(b)
	if !whole {
		enc = strings.TrimSuffix(enc, `"`)
	}
	enc = strings.NewReplacer("!", "!!", "%", "!%", "_", "!_").Replace(enc)
	return "%" + enc + "%"
}

// PurgeIssuedTokens deletes at most limit rows that expired before cutoff,
// oldest first, by their key (works on both engines, which have no DELETE
// ... LIMIT in common). A row that expired before cutoff was issued before
// it: that redundant bound lets the issued_at index find the candidates
// (tokens live at most 2 h, so the scan passes few unexpired rows). On
// SQLite the prefix rows go with them (a trigger).
//
// On PostgreSQL rows go with their partition (MaintainIssuedTokens): this
// deletes only from the default partition, the one place rows are deleted,
// and replay keys whose live_until is before cutoff.
func (s *Store) PurgeIssuedTokens(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	if s.driver == DriverPostgres {
		return s.purgeDefaultPartition(ctx, cutoff, limit)
	}
	res := s.db.WithContext(ctx).Exec(`DELETE FROM issued_tokens WHERE (client_id, assertion_jti) IN
 (SELECT client_id, assertion_jti FROM issued_tokens WHERE issued_at < ? AND expires_at < ? ORDER BY issued_at LIMIT ?)`,
		ts(cutoff), ts(cutoff), limit)
	if res.Error != nil {
		return 0, wrap(res.Error, "purge issued tokens")
	}
	return int(res.RowsAffected), nil
}

func (s *Store) purgeDefaultPartition(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	var n int64
	err := s.inPartitionTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM issued_tokens_default WHERE ctid IN
 (SELECT ctid FROM issued_tokens_default WHERE expires_at < $1 LIMIT $2)`, cutoff.UTC(), limit)
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		_, err = tx.ExecContext(ctx, `DELETE FROM issued_token_prefixes_default WHERE ctid IN
 (SELECT ctid FROM issued_token_prefixes_default WHERE expires_at < $1 LIMIT $2)`, cutoff.UTC(), 4*limit)
		if err != nil {
			return err
		}
		// Replay keys dead before cutoff are dead now too (the purger
		// removes those dead before now: MaintainIssuedTokens).
		_, err = tx.ExecContext(ctx, `DELETE FROM issued_token_replay WHERE (client_id, assertion_jti) IN
 (SELECT client_id, assertion_jti FROM issued_token_replay WHERE live_until < $1 ORDER BY live_until LIMIT $2)`, cutoff.UTC(), limit)
		return err
	})
	if err != nil {
		return 0, wrap(err, "purge issued tokens")
	}
	return int(n), nil
}

// ReclaimSpace gives up to pages free pages of the SQLite file back to the
// file system (PRAGMA incremental_vacuum; the database is in auto_vacuum
// INCREMENTAL mode, see migration 7) and returns how many free pages are
// left. The purge calls it in small steps, paced like its deletes. On
// PostgreSQL, where dropped partitions give their files back at once, it
// does nothing.
func (s *Store) ReclaimSpace(ctx context.Context, pages int) (left int, err error) {
	if s.driver != DriverSQLite || pages <= 0 {
		return 0, nil
	}
	conn, err := s.writerDB().Conn(ctx)
	if err != nil {
		return 0, wrap(err, "incremental vacuum")
	}
	defer conn.Close()
	// The pragma frees pages as its rows are stepped: read them all.
	rows, err := conn.QueryContext(ctx, "PRAGMA incremental_vacuum("+strconv.Itoa(pages)+")")
	if err != nil {
		return 0, wrap(err, "incremental vacuum")
	}
	for rows.Next() {
	}
	if err := rows.Close(); err != nil {
		return 0, wrap(err, "incremental vacuum")
	}
	if err := conn.QueryRowContext(ctx, "PRAGMA freelist_count").Scan(&left); err != nil {
		return 0, wrap(err, "incremental vacuum")
	}
	return left, nil
}

// ListAudit reads audit events, newest first. From is inclusive, To
// exclusive, both on Time.
func (s *Store) ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, error) {
	q := s.reader.db.WithContext(ctx)
	if f.Org != "" {
		q = q.Where("id IN (SELECT event_id FROM audit_event_orgs WHERE org = ?)", f.Org)
	}
	if f.Action != "" {
		q = q.Where("action = ?", f.Action)
	}
	if f.Target != "" {
		q = q.Where("target = ?", f.Target)
	}
	if !f.From.IsZero() {
		q = q.Where("event_time >= ?", ts(f.From))
	}
	if !f.To.IsZero() {
		q = q.Where("event_time < ?", ts(f.To))
	}
	if f.BeforeID > 0 {
		q = q.Where("id < ?", f.BeforeID)
	}
	var rows []auditRow
	if err := q.Order("id DESC").Limit(listLimit(f.Limit)).Find(&rows).Error; err != nil {
		return nil, wrap(err, "list audit")
	}
	out := make([]store.AuditEvent, len(rows))
	for i, row := range rows {
		var err error
		if out[i], err = row.record(); err != nil {
			return nil, wrap(err, "list audit")
		}
	}
	return out, nil
}
