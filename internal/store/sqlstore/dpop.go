package sqlstore

import (
	"context"
	"time"

	"github.com/portvakt/portvakt/internal/store"
)

// insertDPoPProof is the replay check of DPoP proofs: a new key inserts, a
// live one conflicts (no row affected), and an expired one is taken over by
// the update, so a row the purge has not reached yet never refuses a proof.
const insertDPoPProof = `INSERT INTO dpop_proofs (jkt, jti, live_until) VALUES (?, ?, ?)
 ON CONFLICT (jkt, jti) DO UPDATE SET live_until = excluded.live_until WHERE dpop_proofs.live_until <= ?`

// InsertDPoPProof is one statement, atomic in the database also across
// replicas (see store.Store).
func (s *Store) InsertDPoPProof(ctx context.Context, p store.DPoPProof, now time.Time) error {
	res, err := s.writerDB().ExecContext(ctx, placeholders(s.driver, insertDPoPProof), p.JKT, p.JTI, ts(p.Until), ts(now))
	if err != nil {
		return wrap(err, "insert dpop proof")
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrap(err, "insert dpop proof")
	}
	if n == 0 {
		return store.ErrConflict
	}
	return nil
}

// PurgeDPoPProofs deletes at most limit proofs past their window, oldest
// first, by their key (both engines; neither has DELETE ... LIMIT in common).
func (s *Store) PurgeDPoPProofs(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	res, err := s.writerDB().ExecContext(ctx, placeholders(s.driver, `DELETE FROM dpop_proofs WHERE (jkt, jti) IN
 (SELECT jkt, jti FROM dpop_proofs WHERE live_until < ? ORDER BY live_until LIMIT ?)`), ts(cutoff), limit)
	if err != nil {
		return 0, wrap(err, "purge dpop proofs")
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, wrap(err, "purge dpop proofs")
	}
	return int(n), nil
}
