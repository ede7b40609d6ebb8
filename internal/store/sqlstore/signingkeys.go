package sqlstore

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"

	"github.com/portvakt/portvakt/internal/store"
)

// Signing keys and leases (00009_signing_keys.sql). Both live outside
// Update: they are not access rules, so writing them neither advances the
// generation nor enters the change log.

type signingKeyRow struct {
	KID           string `gorm:"column:kid;primaryKey"`
	Alg           string
	PublicJWK     string `gorm:"column:public_jwk"`
	PrivateSealed string
	State         string
	PublishedAt   dbTime
	ActivatedAt   dbTime
	RetiredAt     dbTime
	RemoveAfter   dbTime
}

func (signingKeyRow) TableName() string { return "signing_keys" }

func (r signingKeyRow) record() (store.SigningKey, error) {
	sealed, err := base64.StdEncoding.DecodeString(r.PrivateSealed)
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("signing key %q: sealed private key: %w", r.KID, err)
	}
	return store.SigningKey{KID: r.KID, Alg: r.Alg, PublicJWK: []byte(r.PublicJWK), PrivateSealed: sealed,
		State: r.State, PublishedAt: r.PublishedAt.Time, ActivatedAt: r.ActivatedAt.Time,
		RetiredAt: r.RetiredAt.Time, RemoveAfter: r.RemoveAfter.Time}, nil
}

// ListSigningKeys: see store.Store.
func (s *Store) ListSigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	return find(s.reader.db.WithContext(ctx).Order("published_at, kid"), "list signing keys", signingKeyRow.record)
}

// stateRank orders updates so that a key leaves CURRENT (or NEXT) before
// another enters it: the unique indexes are checked per statement.
func stateRank(state string) int {
	switch state {
	case store.SigningKeyRetired:
		return 0
	case store.SigningKeyCurrent:
		return 1
	}
	return 2
}

// ChangeSigningKeys: see store.Store.
func (s *Store) ChangeSigningKeys(ctx context.Context, c store.SigningKeyChange) error {
	updates := slices.Clone(c.Update)
	slices.SortStableFunc(updates, func(a, b store.SigningKeyUpdate) int {
		return cmp.Compare(stateRank(a.Key.State), stateRank(b.Key.State))
	})
	return s.inTx(ctx, "change signing keys", func(db *gorm.DB) error {
		for _, kid := range c.Delete {
			res := db.Where("kid = ? AND state = ?", kid, store.SigningKeyRetired).Delete(&signingKeyRow{})
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected != 1 {
				return fmt.Errorf("delete %q: no such retired key: %w", kid, store.ErrConflict)
			}
		}
		for _, u := range updates {
			k := u.Key
			res := db.Model(&signingKeyRow{}).Where("kid = ? AND state = ?", k.KID, u.From).
				Updates(map[string]any{"state": k.State, "activated_at": ts(k.ActivatedAt),
					"retired_at": ts(k.RetiredAt), "remove_after": ts(k.RemoveAfter)})
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected != 1 {
				return fmt.Errorf("update %q: not %s: %w", k.KID, u.From, store.ErrConflict)
			}
		}
		for _, k := range c.Create {
			if k.KID == "" || len(k.PrivateSealed) == 0 || len(k.PublicJWK) == 0 {
				return errors.New("create signing key: a kid, a public JWK and a sealed private key are required")
			}
			row := signingKeyRow{KID: k.KID, Alg: k.Alg, PublicJWK: string(k.PublicJWK),
				PrivateSealed: base64.StdEncoding.EncodeToString(k.PrivateSealed), State: k.State,
				PublishedAt: ts(k.PublishedAt), ActivatedAt: ts(k.ActivatedAt), RetiredAt: ts(k.RetiredAt),
				RemoveAfter: ts(k.RemoveAfter)}
			if err := db.Create(&row).Error; err != nil {
				return fmt.Errorf("create %q: %w", k.KID, classify(err))
			}
		}
		t := &tx{reader: reader{db: db}, now: s.now}
		for _, e := range c.Events {
			if _, err := t.AppendEvent(ctx, e); err != nil {
				return err
			}
		}
		return nil
	})
}

// leaseSQL takes a free, expired or own lease in one statement; the
// conflict branch writes nothing (no row affected) when another owner holds
// a live lease. PostgreSQL and SQLite both speak this upsert.
const leaseSQL = `INSERT INTO leases (name, owner, expires_at) VALUES (?, ?, ?)
 ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
 WHERE leases.owner = excluded.owner OR leases.expires_at <= ?`

// TakeLease: see store.Store.
func (s *Store) TakeLease(ctx context.Context, l store.Lease) (bool, error) {
	if l.Name == "" || l.Owner == "" || l.TTL <= 0 {
		return false, errors.New("sqlstore: take lease: a name, an owner and a TTL are required")
	}
	now := l.Now.UTC().Truncate(time.Microsecond)
	res, err := s.writerDB().ExecContext(ctx, placeholders(s.driver, leaseSQL), l.Name, l.Owner, ts(now.Add(l.TTL)), ts(now))
	if err != nil {
		return false, wrap(err, "take lease %q", l.Name)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, wrap(err, "take lease %q", l.Name)
	}
	return n == 1, nil
}
