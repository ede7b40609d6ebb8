package conformance

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/store"
)

func signingKeyCases() []testCase {
	return []testCase{
		{"ok/signingkey/create-list-rotate-delete", testSigningKeyLifecycle},
		{"fail/signingkey/second-next-or-current", testSigningKeyUnique},
		{"fail/signingkey/stale-step", testSigningKeyStale},
		{"ok/signingkey/no-generation", testSigningKeyNoGeneration},
		{"ok/lease/take-renew-expire", testLease},
		{"ok/signingkey/event-commits-with-the-change", testSigningKeyEvent},
	}
}

func signingKey(kid, state string, published time.Time) store.SigningKey {
	return store.SigningKey{KID: kid, Alg: "ES256", PublicJWK: []byte(`{"kty":"EC","kid":"` + kid + `"}`),
		PrivateSealed: []byte{0, 1, 2, 0xff, byte(len(kid))}, State: state, PublishedAt: published}
}

func listKeys(t *testing.T, s store.Store) []store.SigningKey {
	t.Helper()
	ks, err := s.ListSigningKeys(t.Context())
	noErr(t, err, "ListSigningKeys")
	return ks
}

func keyStates(ks []store.SigningKey) []string {
	var out []string
	for _, k := range ks {
		out = append(out, k.KID+"="+k.State)
	}
	return out
}

// A key is created CURRENT, a NEXT joins it, a rotation retires one and
// activates the other in one change, and the retired key is deleted.
func testSigningKeyLifecycle(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := signingKey("a", store.SigningKeyCurrent, t0)
	a.ActivatedAt = t0
	noErr(t, s.ChangeSigningKeys(ctx, store.SigningKeyChange{Create: []store.SigningKey{a}}), "create a")
	got := listKeys(t, s)
	if len(got) != 1 {
		t.Fatalf("after create: %v", keyStates(got))
	}
	want := a
	want.PublishedAt = t0.UTC().Truncate(time.Microsecond)
	want.ActivatedAt = want.PublishedAt
	equal(t, got[0], want, "the stored key")

	t1 := t0.Add(time.Hour)
	noErr(t, s.ChangeSigningKeys(ctx, store.SigningKeyChange{Create: []store.SigningKey{signingKey("b", store.SigningKeyNext, t1)}}), "create b")
	equal(t, keyStates(listKeys(t, s)), []string{"a=CURRENT", "b=NEXT"}, "keys, oldest first")

	t2 := t1.Add(time.Hour).Truncate(time.Microsecond)
	retA := store.SigningKey{KID: "a", State: store.SigningKeyRetired, ActivatedAt: t0, RetiredAt: t2, RemoveAfter: t2.Add(time.Hour)}
	actB := store.SigningKey{KID: "b", State: store.SigningKeyCurrent, ActivatedAt: t2}
	// The activation comes first on purpose: the store orders the steps.
	noErr(t, s.ChangeSigningKeys(ctx, store.SigningKeyChange{Update: []store.SigningKeyUpdate{
		{From: store.SigningKeyNext, Key: actB}, {From: store.SigningKeyCurrent, Key: retA}}}), "rotate")
	got = listKeys(t, s)
	equal(t, keyStates(got), []string{"a=RETIRED", "b=CURRENT"}, "after the rotation")
	if !got[0].RemoveAfter.Equal(t2.Add(time.Hour)) || !got[0].RetiredAt.Equal(t2) || !got[1].ActivatedAt.Equal(t2) {
		t.Errorf("times after the rotation: %+v", got)
	}
	if !slices.Equal(got[1].PrivateSealed, signingKey("b", "", t0).PrivateSealed) {
		t.Errorf("the update changed the sealed key: %x", got[1].PrivateSealed)
	}
	noErr(t, s.ChangeSigningKeys(ctx, store.SigningKeyChange{Delete: []string{"a"}}), "delete a")
	equal(t, keyStates(listKeys(t, s)), []string{"b=CURRENT"}, "after the delete")
}

func testSigningKeyUnique(t *testing.T, s store.Store) {
	ctx := t.Context()
	noErr(t, s.ChangeSigningKeys(ctx, store.SigningKeyChange{Create: []store.SigningKey{
		signingKey("a", store.SigningKeyCurrent, t0), signingKey("b", store.SigningKeyNext, t0)}}), "create")
	for _, k := range []store.SigningKey{signingKey("c", store.SigningKeyNext, t0), signingKey("d", store.SigningKeyCurrent, t0), signingKey("a", store.SigningKeyRetired, t0)} {
		err := s.ChangeSigningKeys(ctx, store.SigningKeyChange{Create: []store.SigningKey{k}})
		if !errors.Is(err, store.ErrConflict) {
			t.Errorf("create %s %s: %v, want ErrConflict", k.KID, k.State, err)
		}
	}
	equal(t, keyStates(listKeys(t, s)), []string{"a=CURRENT", "b=NEXT"}, "nothing written")
}

// A step computed from a stale view fails whole: the second of two
// replicas applying the same rotation writes nothing.
func testSigningKeyStale(t *testing.T, s store.Store) {
	ctx := t.Context()
	noErr(t, s.ChangeSigningKeys(ctx, store.SigningKeyChange{Create: []store.SigningKey{
		signingKey("a", store.SigningKeyCurrent, t0), signingKey("b", store.SigningKeyNext, t0)}}), "create")
	step := store.SigningKeyChange{Update: []store.SigningKeyUpdate{
		{From: store.SigningKeyCurrent, Key: store.SigningKey{KID: "a", State: store.SigningKeyRetired, RetiredAt: t0, RemoveAfter: t0}},
		{From: store.SigningKeyNext, Key: store.SigningKey{KID: "b", State: store.SigningKeyCurrent, ActivatedAt: t0}}}}
	noErr(t, s.ChangeSigningKeys(ctx, step), "first rotation")
	step.Create = []store.SigningKey{signingKey("c", store.SigningKeyNext, t0)}
	if err := s.ChangeSigningKeys(ctx, step); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("the same rotation again: %v, want ErrConflict", err)
	}
	if err := s.ChangeSigningKeys(ctx, store.SigningKeyChange{Delete: []string{"b"}}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("deleting the CURRENT key: %v, want ErrConflict", err)
	}
	equal(t, keyStates(listKeys(t, s)), []string{"a=RETIRED", "b=CURRENT"}, "the failed steps wrote nothing")
}

func testSigningKeyNoGeneration(t *testing.T, s store.Store) {
	ctx := t.Context()
	g0, err := s.Generation(ctx)
	noErr(t, err, "Generation")
	noErr(t, s.ChangeSigningKeys(ctx, store.SigningKeyChange{Create: []store.SigningKey{signingKey("a", store.SigningKeyCurrent, t0)}}), "create")
	g1, err := s.Generation(ctx)
	noErr(t, err, "Generation")
	if g1 != g0 {
		t.Errorf("generation %d -> %d: signing keys are not access rules", g0, g1)
	}
}

func testLease(t *testing.T, s store.Store) {
	ctx := t.Context()
	take := func(owner string, now time.Time) bool {
		t.Helper()
		ok, err := s.TakeLease(ctx, store.Lease{Name: store.LeaseSigningKeyRotation, Owner: owner, Now: now, TTL: time.Minute})
		noErr(t, err, "TakeLease "+owner)
		return ok
	}
	steps := []struct {
		owner string
		at    time.Duration
		want  bool
	}{
		{"r1", 0, true},
		{"r2", 10 * time.Second, false},
		{"r1", 30 * time.Second, true}, // renewal, until 1m30s
		{"r2", 80 * time.Second, false},
		{"r2", 91 * time.Second, true}, // r1's lease ran out
		{"r1", 100 * time.Second, false},
	}
	for _, st := range steps {
		if got := take(st.owner, t0.Add(st.at)); got != st.want {
			t.Fatalf("%s at +%v: holds %v, want %v", st.owner, st.at, got, st.want)
		}
	}
	if _, err := s.TakeLease(ctx, store.Lease{Name: "x", Owner: "r1", Now: t0}); err == nil {
		t.Error("a lease without a TTL was taken")
	}
}

// The events of a change are appended in its transaction: a change that
// fails leaves none.
func testSigningKeyEvent(t *testing.T, s store.Store) {
	ctx := t.Context()
	noErr(t, s.Update(ctx, func(tx store.Tx) error {
		return tx.CreateWebhook(ctx, store.Webhook{ID: "w1", Org: "310000019", URL: "https://hook.example/", Active: true,
			Events: []string{store.EventSigningKeyRotated}, Created: t0, LastUpdated: t0})
	}), "create webhook")
	ev := store.Event{Name: store.EventSigningKeyRotated, Time: t0, Orgs: []string{store.AllOrgs}, Record: []byte(`{"kid":"a"}`)}
	bad := store.SigningKeyChange{Delete: []string{"nope"}, Events: []store.Event{ev}}
	if err := s.ChangeSigningKeys(ctx, bad); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a failing change: %v, want ErrConflict", err)
	}
	claim := store.DeliveryClaim{Now: t0.Add(time.Minute), Owner: "r1", Lease: time.Minute, Limit: 10}
	ds, err := s.ClaimDeliveries(ctx, claim)
	noErr(t, err, "ClaimDeliveries")
	if len(ds) != 0 {
		t.Fatalf("the failed change left %d deliveries", len(ds))
	}
	good := store.SigningKeyChange{Create: []store.SigningKey{signingKey("a", store.SigningKeyCurrent, t0)}, Events: []store.Event{ev}}
	noErr(t, s.ChangeSigningKeys(ctx, good), "change with an event")
	ds, err = s.ClaimDeliveries(ctx, claim)
	noErr(t, err, "ClaimDeliveries")
	if len(ds) != 1 || ds[0].Event.Name != store.EventSigningKeyRotated || ds[0].Webhook.ID != "w1" {
		t.Fatalf("deliveries %+v, want one signing_key.rotated to w1", ds)
	}
}
