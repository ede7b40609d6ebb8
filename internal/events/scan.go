package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/portvakt/portvakt/internal/store"
)

// ExpiringKey is the record of a client.keys.expiring event: which key of
// which client expires when, and which warning this is (30 or 7 days
// before, by default).
type ExpiringKey struct {
	ClientID    string    `json:"client_id"`
	ClientOrgno string    `json:"client_orgno"`
	ClientName  string    `json:"client_name"`
	KID         string    `json:"kid"`
	Expires     time.Time `json:"expires"`
	DaysBefore  int       `json:"days_before"`
}

// scanPage is how many clients the scan reads at a time.
const scanPage = 200

// ScanKeys sends client.keys.expiring for every key of an active client
// that has come within a warning (KeyWarnings) of its expiry, once per key
// and warning: the event's Once key (client, kid, expiry, warning) makes a
// second send, by this replica or another, a conflict that writes nothing,
// so every replica may scan. A key that comes within several warnings at
// once (a scan missed for weeks) gets only the nearest. The scan pages
// through the clients and returns how many events it appended.
func (w *Worker) ScanKeys(ctx context.Context) (int, error) {
	now := w.c.Now()
	warnings := slices.Sorted(slices.Values(w.c.KeyWarnings)) // nearest first
	sent := 0
	var after []string
	for {
		page, err := w.st.PageClients(ctx, store.ClientFilter{ActiveOnly: true}, store.Page{After: after, Limit: scanPage})
		if err != nil {
			return sent, err
		}
		for _, c := range page {
			for _, k := range c.Keys {
				n, err := w.warnKey(ctx, c, k, now, warnings)
				sent += n
				if err != nil {
					return sent, err
				}
			}
		}
		if len(page) < scanPage {
			return sent, nil
		}
		after = page[len(page)-1].Key()
	}
}

// ScanKeysIfDue runs ScanKeys when no replica has begun one within
// KeyScanInterval, and reports whether it did. A scan first takes the
// store's lease for the interval under an owner of its own that never
// renews it, so the replicas of a fleet scan once per interval between
// them, and a rolling restart does not make each one read every client
// again.
func (w *Worker) ScanKeysIfDue(ctx context.Context) (bool, int, error) {
	owner := make([]byte, 16)
	rand.Read(owner)
	due, err := w.st.TakeLease(ctx, store.Lease{Name: store.LeaseClientKeyScan, Owner: hex.EncodeToString(owner),
		Now: w.c.Now(), TTL: w.c.KeyScanInterval})
	if err != nil || !due {
		return false, 0, err
	}
	n, err := w.ScanKeys(ctx)
	return true, n, err
}

func (w *Worker) warnKey(ctx context.Context, c store.Client, k store.ClientKey, now time.Time, warnings []time.Duration) (int, error) {
	left := k.Expires.Sub(now)
	if left <= 0 {
		return 0, nil
	}
	i := slices.IndexFunc(warnings, func(d time.Duration) bool { return left <= d })
	if i < 0 {
		return 0, nil
	}
	days := int(warnings[i] / (24 * time.Hour))
	rec, err := json.Marshal(ExpiringKey{ClientID: c.ClientID, ClientOrgno: c.ClientOrgno, ClientName: c.ClientName,
		KID: k.KID, Expires: k.Expires.UTC(), DaysBefore: days})
	if err != nil {
		return 0, err
	}
	orgs := []string{c.ClientOrgno}
	for _, o := range []string{c.ManagedBy, k.UploadedBy} {
		if o != "" && !slices.Contains(orgs, o) {
			orgs = append(orgs, o)
		}
	}
	e := store.Event{
		Name: store.EventClientKeysExpiring, Time: now, Orgs: orgs, Record: rec,
		Once: fmt.Sprintf("%s/%s/%s/%d/%dd", store.EventClientKeysExpiring, c.ClientID, k.KID, k.Expires.Unix(), days),
	}
	err = w.st.Update(ctx, func(tx store.Tx) error {
		_, err := tx.AppendEvent(ctx, e)
		return err
	})
	switch {
	case errors.Is(err, store.ErrConflict):
		return 0, nil // sent before
	case err != nil:
		return 0, fmt.Errorf("events: key %s of client %s: %w", k.KID, c.ClientID, err)
	}
	return 1, nil
}
