package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
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
 (client_id, assertion_jti, token_jti, consumer_orgno, supplier_orgno, scopes, audience, issued_at, expires_at, client_amr)
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
		scopes, aud, ts(t.IssuedAt), ts(t.ExpiresAt), t.ClientAMR}
	r := s.batch.submit(ctx, issuedKey{t.ClientID, t.AssertionJTI}, row)
	return func() error { return s.batch.wait(r) }
}

func failed(err error) func() error { return func() error { return err } }

// ListIssuedTokens reads issued-token rows, newest first (see
// store.IssuedTokenFilter). The scope filters are LIKE over the JSON text of
// the scopes column: no index helps them, so they only ever narrow a walk
// down the issued_at index, one page at a time.
func (s *Store) ListIssuedTokens(ctx context.Context, f store.IssuedTokenFilter) ([]store.IssuedToken, error) {
	q := s.reader.db.WithContext(ctx)
	var who []string
	var whoArgs []any
	if f.Org != "" {
		who = append(who, "consumer_orgno = ?", "supplier_orgno = ?")
		whoArgs = append(whoArgs, f.Org, f.Org)
	}
	if f.ManagedBy != "" {
		// Through the partial index clients_managed_by (00003).
		who = append(who, "client_id IN (SELECT client_id FROM clients WHERE managed_by = ?)")
		whoArgs = append(whoArgs, f.ManagedBy)
	}
	for _, p := range f.ScopePrefixes {
		who = append(who, scopesLike)
		whoArgs = append(whoArgs, jsonLikePattern(p+":", false))
	}
	if len(who) > 0 {
		q = q.Where("("+strings.Join(who, " OR ")+")", whoArgs...)
	}
	if f.ClientID != "" {
		q = q.Where("client_id = ?", f.ClientID)
	}
	if f.Scope != "" {
		q = q.Where(scopesLike, jsonLikePattern(f.Scope, true))
	}
	if !f.From.IsZero() {
		q = q.Where("issued_at >= ?", ts(f.From))
	}
	if !f.To.IsZero() {
		q = q.Where("issued_at < ?", ts(f.To))
	}
	if !f.BeforeIssuedAt.IsZero() {
		q = q.Where("(issued_at < ? OR (issued_at = ? AND token_jti < ?))",
			ts(f.BeforeIssuedAt), ts(f.BeforeIssuedAt), f.BeforeTokenJTI)
	}
	var rows []issuedTokenRow
	err := q.Order("issued_at DESC, token_jti DESC").Limit(listLimit(f.Limit)).Find(&rows).Error
	if err != nil {
		return nil, wrap(err, "list issued tokens")
	}
	out := make([]store.IssuedToken, len(rows))
	for i, row := range rows {
		if out[i], err = row.record(); err != nil {
			return nil, wrap(err, "list issued tokens")
		}
	}
	return out, nil
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
// (tokens live at most 2 h, so the scan passes few unexpired rows).
func (s *Store) PurgeIssuedTokens(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	res := s.db.WithContext(ctx).Exec(`DELETE FROM issued_tokens WHERE (client_id, assertion_jti) IN
 (SELECT client_id, assertion_jti FROM issued_tokens WHERE issued_at < ? AND expires_at < ? ORDER BY issued_at LIMIT ?)`,
		ts(cutoff), ts(cutoff), limit)
	if res.Error != nil {
		return 0, wrap(res.Error, "purge issued tokens")
	}
	return int(res.RowsAffected), nil
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
