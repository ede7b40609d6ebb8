package sqlstore

import (
	"context"
	"time"

	"github.com/portvakt/portvakt/internal/store"
)

// The web console's sessions (00011_console_sessions.sql) live outside
// Update, like the signing keys: they are not access rules. Every call is
// one statement on the writer, so a session written by one replica is read
// at once by another (and a logout holds at once everywhere).

type consoleSessionRow struct {
	IDHash    string `gorm:"column:id_hash;primaryKey"`
	Kind      string
	Subject   string
	Org       string
	Data      string
	Created   dbTime
	LastSeen  dbTime
	ExpiresAt dbTime
}

func (consoleSessionRow) TableName() string { return "console_sessions" }

func (r consoleSessionRow) record() store.ConsoleSession {
	s := store.ConsoleSession{IDHash: r.IDHash, Kind: r.Kind, Subject: r.Subject, Org: r.Org,
		Created: r.Created.Time, LastSeen: r.LastSeen.Time, Expires: r.ExpiresAt.Time}
	if r.Data != "" {
		s.Data = []byte(r.Data)
	}
	return s
}

// CreateConsoleSession: see store.ConsoleSessions.
func (s *Store) CreateConsoleSession(ctx context.Context, cs store.ConsoleSession) error {
	row := consoleSessionRow{IDHash: cs.IDHash, Kind: cs.Kind, Subject: cs.Subject, Org: cs.Org, Data: string(cs.Data),
		Created: ts(cs.Created), LastSeen: ts(cs.LastSeen), ExpiresAt: ts(cs.Expires)}
	return wrap(s.db.WithContext(ctx).Create(&row).Error, "create console session")
}

// GetConsoleSession: see store.ConsoleSessions.
func (s *Store) GetConsoleSession(ctx context.Context, idHash string) (store.ConsoleSession, error) {
	var row consoleSessionRow
	if err := s.db.WithContext(ctx).Where("id_hash = ?", idHash).Take(&row).Error; err != nil {
		return store.ConsoleSession{}, wrap(err, "get console session")
	}
	return row.record(), nil
}

// UpdateConsoleSession: see store.ConsoleSessions.
func (s *Store) UpdateConsoleSession(ctx context.Context, cs store.ConsoleSession) error {
	res := s.db.WithContext(ctx).Model(&consoleSessionRow{}).Where("id_hash = ?", cs.IDHash).Updates(map[string]any{
		"org": cs.Org, "data": string(cs.Data), "last_seen": ts(cs.LastSeen), "expires_at": ts(cs.Expires),
	})
	if res.Error != nil {
		return wrap(res.Error, "update console session")
	}
	if res.RowsAffected == 0 {
		return wrap(store.ErrNotFound, "update console session")
	}
	return nil
}

// DeleteConsoleSession: see store.ConsoleSessions.
func (s *Store) DeleteConsoleSession(ctx context.Context, idHash string) error {
	return wrap(s.db.WithContext(ctx).Where("id_hash = ?", idHash).Delete(&consoleSessionRow{}).Error, "delete console session")
}

// PurgeConsoleSessions deletes at most limit expired rows, oldest first, by
// their key (as PurgeDPoPProofs does).
func (s *Store) PurgeConsoleSessions(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	res, err := s.writerDB().ExecContext(ctx, placeholders(s.driver, `DELETE FROM console_sessions WHERE id_hash IN
 (SELECT id_hash FROM console_sessions WHERE expires_at < ? ORDER BY expires_at LIMIT ?)`), ts(cutoff), limit)
	if err != nil {
		return 0, wrap(err, "purge console sessions")
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, wrap(err, "purge console sessions")
	}
	return int(n), nil
}
