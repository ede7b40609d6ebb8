package conformance

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/portvakt/portvakt/internal/store"
)

// The access-request states and reason, webhooks, the event outbox and its
// deliveries.

func eventCases() []testCase {
	return []testCase{
		{"ok/access/request-states-and-reason", testAccessRequestStates},
		{"ok/webhook/create-get-page-update", testWebhook},
		{"fail/webhook/conflict-and-notfound", testWebhookErrors},
		{"ok/event/append-fans-out-to-subscribers", testEventFanOut},
		{"ok/event/webhook-created-in-the-same-update", testEventSameUpdate},
		{"ok/event/all-orgs", testEventAllOrgs},
		{"fail/event/rolled-back-append-leaves-nothing", testEventRollback},
		{"fail/event/once-conflict", testEventOnce},
		{"ok/delivery/order-per-webhook", testDeliveryOrder},
		{"ok/delivery/lease-and-takeover", testDeliveryLease},
		{"ok/delivery/retry-waits-until-due", testDeliveryRetry},
		{"ok/delivery/given-up-unblocks-the-next", testDeliveryGiveUp},
		{"ok/delivery/attempts-kept-newest-first", testDeliveryAttempts},
		{"ok/delivery/concurrent-claimers-never-share", testDeliveryConcurrent},
		{"ok/delivery/purge", testDeliveryPurge},
	}
}

const (
	orgA = "910000011"
	orgB = "910000012"
	orgC = "910000013"
)

func hookRec(id, org string, events ...string) store.Webhook {
	return store.Webhook{ID: id, Org: org, URL: "https://hooks.example.no/" + id, Events: events,
		Active: true, Created: t0, LastUpdated: t0}
}

func createHooks(t *testing.T, s store.Store, hooks ...store.Webhook) {
	t.Helper()
	update(t, s, func(tx store.Tx) error {
		for _, h := range hooks {
			if err := tx.CreateWebhook(t.Context(), h); err != nil {
				return err
			}
		}
		return nil
	})
}

func appendEvent(t *testing.T, s store.Store, name string, orgs ...string) store.Event {
	t.Helper()
	var out store.Event
	update(t, s, func(tx store.Tx) error {
		var err error
		out, err = tx.AppendEvent(t.Context(), store.Event{Name: name, Time: t0, ActorOrg: orgs[0], Orgs: orgs,
			Record: json.RawMessage(`{"n":"` + name + `"}`)})
		return err
	})
	return out
}

func claim(t *testing.T, s store.Store, now time.Time, owner string, limit int) []store.Delivery {
	t.Helper()
	ds, err := s.ClaimDeliveries(t.Context(), store.DeliveryClaim{Now: now, Owner: owner, Lease: time.Minute, Limit: limit})
	noErr(t, err, "ClaimDeliveries")
	return ds
}

// pairs names claimed deliveries as "webhook/event id", sorted.
func pairs(ds []store.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = fmt.Sprintf("%s/%d", d.Webhook.ID, d.Event.ID)
	}
	slices.Sort(out)
	return out
}

func wantPairs(t *testing.T, ds []store.Delivery, want []string, what string) {
	t.Helper()
	got := pairs(ds)
	if want == nil {
		want = []string{}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s: claimed %v, want %v", what, got, want)
	}
}

func finish(t *testing.T, s store.Store, d store.Delivery, state string, at, next time.Time) {
	t.Helper()
	err := s.FinishDelivery(t.Context(), store.DeliveryResult{WebhookID: d.Webhook.ID, EventID: d.Event.ID,
		Owner: d.Owner, Attempt: d.Attempt, Time: at, Status: 200, State: state, NextAttempt: next})
	noErr(t, err, "FinishDelivery")
}

func testAccessRequestStates(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := store.Access{Scope: "acme:a", ConsumerOrgno: orgA, OwnerOrgno: orgB, State: store.AccessRequested,
		Reason: "we need the register for case work", Created: t0, LastUpdated: t0}
	update(t, s, func(tx store.Tx) error { return tx.PutAccess(ctx, a) })
	got, err := s.GetAccess(ctx, a.Scope, a.ConsumerOrgno)
	noErr(t, err, "GetAccess")
	equal(t, got, a, "GetAccess of a request")
	list, err := s.ListAccess(ctx, store.AccessFilter{OwnerOrgno: orgB, States: []string{store.AccessRequested}})
	noErr(t, err, "ListAccess REQUESTED")
	equal(t, list, []store.Access{a}, "the provider's inbox")
	a.State, a.Reason, a.LastUpdated = store.AccessWithdrawn, "", t0.Add(time.Hour)
	update(t, s, func(tx store.Tx) error { return tx.PutAccess(ctx, a) })
	got, err = s.GetAccess(ctx, a.Scope, a.ConsumerOrgno)
	noErr(t, err, "GetAccess")
	equal(t, got, a, "GetAccess after withdraw (reason cleared)")
	page, err := s.PageAccess(ctx, store.AccessFilter{States: []string{store.AccessRequested}}, store.Page{})
	noErr(t, err, "PageAccess REQUESTED")
	if len(page) != 0 {
		t.Fatalf("PageAccess REQUESTED after withdraw: %+v, want none", page)
	}
}

func testWebhook(t *testing.T, s store.Store) {
	ctx := t.Context()
	hooks := []store.Webhook{
		hookRec("00000000-0000-4000-8000-000000000003", orgA),
		hookRec("00000000-0000-4000-8000-000000000001", orgA, store.EventAccessRequested, store.EventAccessApproved),
		hookRec("00000000-0000-4000-8000-000000000002", orgB),
	}
	createHooks(t, s, hooks...)
	got, err := s.GetWebhook(ctx, hooks[1].ID)
	noErr(t, err, "GetWebhook")
	equal(t, got, hooks[1], "GetWebhook")

	first, err := s.PageWebhooks(ctx, store.WebhookFilter{Org: orgA}, store.Page{Limit: 1})
	noErr(t, err, "PageWebhooks")
	equal(t, first, []store.Webhook{hooks[1]}, "first page of orgA")
	rest, err := s.PageWebhooks(ctx, store.WebhookFilter{Org: orgA}, store.Page{After: first[0].Key()})
	noErr(t, err, "PageWebhooks after")
	equal(t, rest, []store.Webhook{hooks[0]}, "second page of orgA")

	w := hooks[0]
	w.Active, w.URL, w.Events, w.LastUpdated = false, "http://127.0.0.1:8080/hook", []string{store.EventClientDeactivated}, t0.Add(time.Hour)
	update(t, s, func(tx store.Tx) error { return tx.UpdateWebhook(ctx, w) })
	got, err = s.GetWebhook(ctx, w.ID)
	noErr(t, err, "GetWebhook after update")
	equal(t, got, w, "GetWebhook after update")
	active, err := s.PageWebhooks(ctx, store.WebhookFilter{Org: orgA, ActiveOnly: true}, store.Page{})
	noErr(t, err, "PageWebhooks active")
	equal(t, active, []store.Webhook{hooks[1]}, "active webhooks of orgA")
	all, err := s.PageWebhooks(ctx, store.WebhookFilter{}, store.Page{})
	noErr(t, err, "PageWebhooks all")
	if len(all) != 3 {
		t.Fatalf("PageWebhooks of everyone: %d, want 3", len(all))
	}
}

func testWebhookErrors(t *testing.T, s store.Store) {
	ctx := t.Context()
	h := hookRec("00000000-0000-4000-8000-000000000001", orgA)
	createHooks(t, s, h)
	err := s.Update(ctx, func(tx store.Tx) error { return tx.CreateWebhook(ctx, h) })
	wantErr(t, err, store.ErrConflict, "CreateWebhook of an existing id")
	_, err = s.GetWebhook(ctx, "00000000-0000-4000-8000-00000000000f")
	wantErr(t, err, store.ErrNotFound, "GetWebhook of an unknown id")
	h.ID = "00000000-0000-4000-8000-00000000000f"
	err = s.Update(ctx, func(tx store.Tx) error { return tx.UpdateWebhook(ctx, h) })
	wantErr(t, err, store.ErrNotFound, "UpdateWebhook of an unknown id")
}

func testEventFanOut(t *testing.T, s store.Store) {
	all := hookRec("a-all", orgA)
	req := hookRec("a-req", orgA, store.EventAccessRequested)
	off := hookRec("a-off", orgA)
	off.Active = false
	other := hookRec("c-all", orgC)
	b := hookRec("b-all", orgB, store.EventAccessRequested, store.EventAccessDenied)
	createHooks(t, s, all, req, off, other, b)

	e1 := appendEvent(t, s, store.EventAccessRequested, orgA, orgB, orgA) // orgA twice: one delivery each
	e2 := appendEvent(t, s, store.EventDelegationGiven, orgA)
	if e1.ID <= 0 || e2.ID <= e1.ID {
		t.Fatalf("event ids %d then %d, want increasing from 1", e1.ID, e2.ID)
	}
	if e1.JTI == "" || e1.JTI == e2.JTI {
		t.Fatalf("event jtis %q and %q, want distinct and set", e1.JTI, e2.JTI)
	}
	ds := claim(t, s, t0, "w1", 100)
	wantPairs(t, ds, []string{
		fmt.Sprintf("a-all/%d", e1.ID), fmt.Sprintf("a-req/%d", e1.ID), fmt.Sprintf("b-all/%d", e1.ID),
	}, "first claim (a-all has e2 queued behind e1)")
	for _, d := range ds {
		equal(t, d.Event, e1, "claimed event")
		if d.Attempt != 1 || d.Owner != "w1" {
			t.Fatalf("claimed %+v, want attempt 1 of w1", d)
		}
		finish(t, s, d, store.DeliveryDelivered, t0, time.Time{})
	}
	wantPairs(t, claim(t, s, t0, "w1", 100), []string{fmt.Sprintf("a-all/%d", e2.ID)}, "second claim")
}

func testEventSameUpdate(t *testing.T, s store.Store) {
	ctx := t.Context()
	var e store.Event
	update(t, s, func(tx store.Tx) error {
		if err := tx.CreateWebhook(ctx, hookRec("a-all", orgA)); err != nil {
			return err
		}
		var err error
		e, err = tx.AppendEvent(ctx, store.Event{Name: store.EventClientDeactivated, Orgs: []string{orgA}})
		return err
	})
	if e.Time.IsZero() {
		t.Fatal("AppendEvent did not stamp the time")
	}
	wantPairs(t, claim(t, s, e.Time, "w1", 10), []string{fmt.Sprintf("a-all/%d", e.ID)}, "claim")
}

func testEventAllOrgs(t *testing.T, s store.Store) {
	off := hookRec("c-off", orgC)
	off.Active = false
	createHooks(t, s, hookRec("a-all", orgA), hookRec("b-rot", orgB, store.EventSigningKeyRotated),
		hookRec("b-req", orgB, store.EventAccessRequested), off)
	e := appendEvent(t, s, store.EventSigningKeyRotated, store.AllOrgs)
	wantPairs(t, claim(t, s, t0, "w1", 10), []string{fmt.Sprintf("a-all/%d", e.ID), fmt.Sprintf("b-rot/%d", e.ID)},
		"claim of an event for every org")
}

func testEventRollback(t *testing.T, s store.Store) {
	ctx := t.Context()
	createHooks(t, s, hookRec("a-all", orgA))
	err := s.Update(ctx, func(tx store.Tx) error {
		_, err := tx.AppendEvent(ctx, store.Event{Name: store.EventAccessApproved, Time: t0, Orgs: []string{orgA}})
		noErr(t, err, "AppendEvent")
		return errBoom
	})
	wantErr(t, err, errBoom, "Update")
	wantPairs(t, claim(t, s, t0.Add(time.Hour), "w1", 10), nil, "claim after a rolled back event")
	// The next event is delivered alone.
	e := appendEvent(t, s, store.EventAccessDenied, orgA)
	ds := claim(t, s, t0.Add(time.Hour), "w1", 10)
	wantPairs(t, ds, []string{fmt.Sprintf("a-all/%d", e.ID)}, "claim after the next event")
	if ds[0].Event.Name != store.EventAccessDenied {
		t.Fatalf("claimed %s, want the committed event", ds[0].Event.Name)
	}
}

func testEventOnce(t *testing.T, s store.Store) {
	ctx := t.Context()
	createHooks(t, s, hookRec("a-all", orgA))
	once := store.Event{Name: store.EventClientKeysExpiring, Time: t0, Orgs: []string{orgA}, Once: "c1/k1/30"}
	update(t, s, func(tx store.Tx) error { _, err := tx.AppendEvent(ctx, once); return err })
	err := s.Update(ctx, func(tx store.Tx) error { _, err := tx.AppendEvent(ctx, once); return err })
	wantErr(t, err, store.ErrConflict, "a second event with the same Once")
	// The transaction stays usable after the conflict.
	update(t, s, func(tx store.Tx) error {
		_, err := tx.AppendEvent(ctx, once)
		wantErr(t, err, store.ErrConflict, "the same Once again, in a Tx")
		o := once
		o.Once = "c1/k1/7"
		_, err = tx.AppendEvent(ctx, o)
		return err
	})
	ds := claim(t, s, t0, "w1", 10)
	if len(ds) != 1 || ds[0].Event.Once != "c1/k1/30" {
		t.Fatalf("claimed %+v, want the first event once", ds)
	}
	finish(t, s, ds[0], store.DeliveryDelivered, t0, time.Time{})
	ds = claim(t, s, t0, "w1", 10)
	if len(ds) != 1 || ds[0].Event.Once != "c1/k1/7" {
		t.Fatalf("claimed %+v, want the 7-day event", ds)
	}
	finish(t, s, ds[0], store.DeliveryDelivered, t0, time.Time{})
	wantPairs(t, claim(t, s, t0, "w1", 10), nil, "claim after both")
}

func testDeliveryOrder(t *testing.T, s store.Store) {
	createHooks(t, s, hookRec("a", orgA), hookRec("b", orgB))
	var ids []int64
	for i := range 5 {
		org := orgA
		if i%2 == 1 {
			org = orgB
		}
		ids = append(ids, appendEvent(t, s, store.EventAccessRequested, org, orgA).ID)
	}
	got := map[string][]int64{}
	for round := 0; round < 20; round++ {
		ds := claim(t, s, t0, "w1", 10)
		if len(ds) == 0 {
			break
		}
		seen := map[string]bool{}
		for _, d := range ds {
			if seen[d.Webhook.ID] {
				t.Fatalf("round %d: two deliveries of webhook %s out at once", round, d.Webhook.ID)
			}
			seen[d.Webhook.ID] = true
			got[d.Webhook.ID] = append(got[d.Webhook.ID], d.Event.ID)
			finish(t, s, d, store.DeliveryDelivered, t0, time.Time{})
		}
	}
	if !slices.Equal(got["a"], ids) {
		t.Fatalf("webhook a got %v, want %v in order", got["a"], ids)
	}
	if want := []int64{ids[1], ids[3]}; !slices.Equal(got["b"], want) {
		t.Fatalf("webhook b got %v, want %v in order", got["b"], want)
	}
}

func testDeliveryLease(t *testing.T, s store.Store) {
	ctx := t.Context()
	createHooks(t, s, hookRec("a", orgA))
	e := appendEvent(t, s, store.EventAccessRequested, orgA)
	ds := claim(t, s, t0, "w1", 10)
	wantPairs(t, ds, []string{fmt.Sprintf("a/%d", e.ID)}, "first claim")
	if !ds[0].LeaseUntil.Equal(t0.Add(time.Minute).UTC().Truncate(time.Microsecond)) {
		t.Fatalf("lease until %v, want now + lease", ds[0].LeaseUntil)
	}
	wantPairs(t, claim(t, s, t0.Add(59*time.Second), "w2", 10), nil, "claim by another while leased")
	taken := claim(t, s, t0.Add(time.Minute), "w2", 10)
	wantPairs(t, taken, []string{fmt.Sprintf("a/%d", e.ID)}, "claim once the lease ran out")
	if taken[0].Attempt != 2 || taken[0].Owner != "w2" {
		t.Fatalf("taken over: %+v, want attempt 2 of w2", taken[0])
	}
	err := s.FinishDelivery(ctx, store.DeliveryResult{WebhookID: "a", EventID: e.ID, Owner: "w1", Attempt: 1,
		Time: t0.Add(time.Minute), Status: 202, State: store.DeliveryDelivered})
	wantErr(t, err, store.ErrConflict, "FinishDelivery by the claimer whose lease ran out")
	finish(t, s, taken[0], store.DeliveryDelivered, t0.Add(time.Minute), time.Time{})
	wantPairs(t, claim(t, s, t0.Add(time.Hour), "w1", 10), nil, "claim after delivered")
	at, err := s.ListDeliveryAttempts(ctx, "a", 0)
	noErr(t, err, "ListDeliveryAttempts")
	if len(at) != 1 || at[0].Attempt != 2 || at[0].State != store.DeliveryDelivered || at[0].EventJTI != e.JTI {
		t.Fatalf("attempts %+v, want only w2's delivered attempt 2", at)
	}
}

func testDeliveryRetry(t *testing.T, s store.Store) {
	ctx := t.Context()
	createHooks(t, s, hookRec("a", orgA))
	e := appendEvent(t, s, store.EventAccessRequested, orgA)
	e2 := appendEvent(t, s, store.EventAccessApproved, orgA)
	ds := claim(t, s, t0, "w1", 10)
	wantPairs(t, ds, []string{fmt.Sprintf("a/%d", e.ID)}, "first claim")
	next := t0.Add(10 * time.Second)
	err := s.FinishDelivery(ctx, store.DeliveryResult{WebhookID: "a", EventID: e.ID, Owner: "w1", Attempt: 1,
		Time: t0, Status: 500, Error: "status 500", State: store.DeliveryPending, NextAttempt: next})
	noErr(t, err, "FinishDelivery pending")
	wantPairs(t, claim(t, s, next.Add(-time.Microsecond), "w1", 10), nil, "claim before due (the next event waits too)")
	ds = claim(t, s, next, "w1", 10)
	wantPairs(t, ds, []string{fmt.Sprintf("a/%d", e.ID)}, "claim when due")
	if ds[0].Attempt != 2 {
		t.Fatalf("attempt %d, want 2", ds[0].Attempt)
	}
	finish(t, s, ds[0], store.DeliveryDelivered, next, time.Time{})
	wantPairs(t, claim(t, s, next, "w1", 10), []string{fmt.Sprintf("a/%d", e2.ID)}, "then the next event")
	at, err := s.ListDeliveryAttempts(ctx, "a", 10)
	noErr(t, err, "ListDeliveryAttempts")
	if len(at) != 2 || at[0].Attempt != 2 || at[1].Status != 500 || at[1].Error != "status 500" ||
		at[1].State != store.DeliveryPending || !at[1].NextAttempt.Equal(next.UTC().Truncate(time.Microsecond)) {
		t.Fatalf("attempts %+v, want the delivered one over the failed one", at)
	}
}

func testDeliveryGiveUp(t *testing.T, s store.Store) {
	createHooks(t, s, hookRec("a", orgA))
	e := appendEvent(t, s, store.EventAccessRequested, orgA)
	e2 := appendEvent(t, s, store.EventAccessApproved, orgA)
	ds := claim(t, s, t0, "w1", 10)
	finish(t, s, ds[0], store.DeliveryFailed, t0, time.Time{})
	wantPairs(t, claim(t, s, t0, "w1", 10), []string{fmt.Sprintf("a/%d", e2.ID)}, "claim after giving up on the first")
	_ = e
}

func testDeliveryAttempts(t *testing.T, s store.Store) {
	ctx := t.Context()
	createHooks(t, s, hookRec("a", orgA), hookRec("b", orgB))
	appendEvent(t, s, store.EventAccessRequested, orgA, orgB)
	now := t0
	long := "bad\x00byte \xff then " + strings.Repeat("é", 2*store.MaxDeliveryError)
	for i := range store.DeliveryAttemptsKept + 5 {
		ds := claim(t, s, now, "w1", 10)
		if len(ds) != 2 {
			t.Fatalf("round %d: claimed %v, want both webhooks", i, pairs(ds))
		}
		for _, d := range ds {
			err := s.FinishDelivery(ctx, store.DeliveryResult{WebhookID: d.Webhook.ID, EventID: d.Event.ID,
				Owner: d.Owner, Attempt: d.Attempt, Time: now, Status: 503, Error: long,
				State: store.DeliveryPending, NextAttempt: now.Add(time.Second)})
			noErr(t, err, "FinishDelivery")
		}
		now = now.Add(time.Second)
	}
	at, err := s.ListDeliveryAttempts(ctx, "a", 0)
	noErr(t, err, "ListDeliveryAttempts")
	if len(at) != store.DeliveryAttemptsKept {
		t.Fatalf("%d attempts kept, want %d", len(at), store.DeliveryAttemptsKept)
	}
	for i, a := range at {
		if want := store.DeliveryAttemptsKept + 5 - i; a.Attempt != want || a.WebhookID != "a" {
			t.Fatalf("attempt #%d: %+v, want attempt %d of webhook a (newest first)", i, a, want)
		}
		if len(a.Error) > store.MaxDeliveryError || !utf8.ValidString(a.Error) || strings.ContainsRune(a.Error, 0) ||
			!strings.HasPrefix(a.Error, "bad byte") {
			t.Fatalf("error %q (%d bytes) kept, want valid text of at most %d bytes", a.Error, len(a.Error), store.MaxDeliveryError)
		}
	}
	few, err := s.ListDeliveryAttempts(ctx, "b", 3)
	noErr(t, err, "ListDeliveryAttempts limit 3")
	if len(few) != 3 || few[0].Attempt != store.DeliveryAttemptsKept+5 {
		t.Fatalf("attempts of b, limit 3: %+v", few)
	}
}

func testDeliveryConcurrent(t *testing.T, s store.Store) {
	const hooks, events, claimers = 6, 4, 4
	var hs []store.Webhook
	for i := range hooks {
		hs = append(hs, hookRec(fmt.Sprintf("h%d", i), orgA))
	}
	createHooks(t, s, hs...)
	for range events {
		appendEvent(t, s, store.EventAccessRequested, orgA)
	}
	var (
		mu   sync.Mutex
		out  = map[string]string{} // webhook/event -> claimer
		held = map[string]string{} // webhook -> claimer while out
		errs []error
		wg   sync.WaitGroup
	)
	for c := range claimers {
		owner := fmt.Sprintf("w%d", c)
		wg.Go(func() {
			for idle := 0; idle < 50; {
				ds, err := s.ClaimDeliveries(t.Context(), store.DeliveryClaim{Now: t0, Owner: owner, Lease: time.Hour, Limit: 2})
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				if len(ds) == 0 {
					idle++
					continue
				}
				for _, d := range ds {
					k := fmt.Sprintf("%s/%d", d.Webhook.ID, d.Event.ID)
					mu.Lock()
					if prev, dup := out[k]; dup {
						errs = append(errs, fmt.Errorf("%s claimed by %s and %s", k, prev, owner))
					}
					if other, busy := held[d.Webhook.ID]; busy {
						errs = append(errs, fmt.Errorf("webhook %s out to %s and %s at once", d.Webhook.ID, other, owner))
					}
					out[k], held[d.Webhook.ID] = owner, owner
					mu.Unlock()
				}
				for _, d := range ds {
					mu.Lock()
					delete(held, d.Webhook.ID)
					mu.Unlock()
					err := s.FinishDelivery(t.Context(), store.DeliveryResult{WebhookID: d.Webhook.ID, EventID: d.Event.ID,
						Owner: owner, Attempt: d.Attempt, Time: t0, Status: 204, State: store.DeliveryDelivered})
					if err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
					}
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	if len(out) != hooks*events {
		t.Fatalf("%d deliveries claimed, want %d", len(out), hooks*events)
	}
}

func testDeliveryPurge(t *testing.T, s store.Store) {
	ctx := t.Context()
	createHooks(t, s, hookRec("a", orgA))
	e1 := appendEvent(t, s, store.EventAccessRequested, orgA)
	e2 := appendEvent(t, s, store.EventAccessApproved, orgA)
	lonely := appendEvent(t, s, store.EventAccessDenied, orgC) // no webhook: no delivery
	ds := claim(t, s, t0, "w1", 10)
	finish(t, s, ds[0], store.DeliveryDelivered, t0, time.Time{}) // e1 done at t0; e2 pending
	n, err := s.PurgeEvents(ctx, store.EventPurge{DeliveriesBefore: t0, EventsBefore: t0.Add(time.Hour), Limit: 10})
	noErr(t, err, "PurgeEvents before anything finished")
	if n != 1 {
		t.Fatalf("purged %d rows, want 1 (the event without deliveries)", n)
	}
	n, err = s.PurgeEvents(ctx, store.EventPurge{DeliveriesBefore: t0.Add(time.Second), EventsBefore: t0.Add(time.Hour), Limit: 10})
	noErr(t, err, "PurgeEvents")
	if n != 2 {
		t.Fatalf("purged %d rows, want 2 (e1's delivery, then e1)", n)
	}
	ds = claim(t, s, t0, "w1", 10)
	wantPairs(t, ds, []string{fmt.Sprintf("a/%d", e2.ID)}, "the pending delivery survives the purge")
	// Ids are never reused after a purge.
	e4 := appendEvent(t, s, store.EventAccessDenied, orgA)
	if e4.ID <= lonely.ID || e4.ID <= e1.ID {
		t.Fatalf("event id %d after purging %d and %d, want a new one", e4.ID, e1.ID, lonely.ID)
	}
	at, err := s.ListDeliveryAttempts(ctx, "a", 0)
	noErr(t, err, "ListDeliveryAttempts")
	if len(at) != 1 || at[0].EventID != e1.ID {
		t.Fatalf("attempts after purge: %+v, want e1's attempt kept", at)
	}
}
