package sqlstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/store"
	"github.com/portvakt/portvakt/internal/store/sqlstore"
)

// BenchmarkClaimPastFailingBacklog measures a claim while one webhook is
// failing with a backlog behind its head: FinishDelivery makes the backlog
// due with the head's retry ("bumped"), so a claim passes over it; the
// baseline has the backlog due at once (as rows would be without that), so
// every claim walks it. The two stores are claimed from in turns, in the
// same run; ratio = baseline / bumped.
func BenchmarkClaimPastFailingBacklog(b *testing.B) {
	const backlog = 2000
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	open := func(bump bool) *sqlstore.Store {
		s, err := sqlstore.Open(b.Context(), sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: b.TempDir() + "/bench.db"})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		if err := s.Migrate(b.Context()); err != nil {
			b.Fatal(err)
		}
		err = s.Update(b.Context(), func(tx store.Tx) error {
			if err := tx.CreateWebhook(b.Context(), store.Webhook{ID: "dead", Org: "910000002", URL: "https://h.example.no/", Active: true}); err != nil {
				return err
			}
			for range backlog {
				if _, err := tx.AppendEvent(b.Context(), store.Event{Name: store.EventAccessRequested, Time: t0, Orgs: []string{"910000002"}}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		ds, err := s.ClaimDeliveries(b.Context(), store.DeliveryClaim{Now: t0, Owner: "w", Lease: time.Minute, Limit: 1})
		if err != nil || len(ds) != 1 {
			b.Fatalf("claim the head: %v, %v", ds, err)
		}
		err = s.FinishDelivery(b.Context(), store.DeliveryResult{WebhookID: "dead", EventID: ds[0].Event.ID, Owner: "w",
			Attempt: 1, Time: t0, Status: 503, State: store.DeliveryPending, NextAttempt: t0.Add(time.Hour)})
		if err != nil {
			b.Fatal(err)
		}
		if !bump {
			if err := s.ExecForTest(b.Context(), fmt.Sprintf(
				"UPDATE event_deliveries SET next_attempt = '%s' WHERE event_id > %d", t0.Format("2006-01-02 15:04:05-07:00"), ds[0].Event.ID)); err != nil {
				b.Fatal(err)
			}
		}
		return s
	}
	stores := []*sqlstore.Store{open(true), open(false)}
	var took [2]time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		for j, s := range stores {
			start := time.Now()
			ds, err := s.ClaimDeliveries(b.Context(), store.DeliveryClaim{Now: t0.Add(time.Minute), Owner: "w", Lease: time.Minute, Limit: 8})
			took[j] += time.Since(start)
			if err != nil || len(ds) != 0 {
				b.Fatalf("claim: %v, %v; want nothing due", ds, err)
			}
		}
	}
	b.ReportMetric(float64(took[0].Nanoseconds())/float64(b.N), "ns/claim-bumped")
	b.ReportMetric(float64(took[1].Nanoseconds())/float64(b.N), "ns/claim-baseline")
	b.ReportMetric(float64(took[1])/float64(took[0]), "ratio")
}
