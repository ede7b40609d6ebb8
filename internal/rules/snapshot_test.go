package rules_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/portvakt/portvakt/internal/access"
	"github.com/portvakt/portvakt/internal/rules"
	"github.com/portvakt/portvakt/internal/store"
)

// The token endpoint and the self-service API decide over snapshots.
var _ access.SupplierRecords = (*rules.Snapshot)(nil)

const (
	consumer  = "222222222"
	vendor    = "333333333"
	vendor2   = "555555555"
	stranger  = "444444444"
	provider  = "111111111"
	clientID  = "0b8a4f5e-3c1d-4e2f-9a6b-7c8d9e0f1a2b"
	clientID2 = "1c9b5a6f-4d2e-4f3a-8b7c-8d9e0f1a2b3c"
)

func TestBuild(t *testing.T) {
	snap := rules.Build(
		[]store.Scope{
			{Name: "acme:a", Active: true, Description: "first"},
			{Name: "acme:b", Active: false},
			{Name: "acme:a", Active: true, Description: "last"}, // the last record wins
		},
		[]store.Access{
			{Scope: "acme:a", ConsumerOrgno: consumer, State: store.AccessApproved},
			{Scope: "acme:b", ConsumerOrgno: consumer, State: store.AccessDenied},
			{Scope: "acme:a", ConsumerOrgno: stranger, State: store.AccessApproved},
			{Scope: "acme:a", ConsumerOrgno: stranger, State: store.AccessDenied}, // later row denies
		},
		[]store.Delegation{
			{Scope: "acme:a", ConsumerOrgno: consumer, SupplierOrgno: vendor, State: store.DelegationActive},
			{Scope: "acme:a", ConsumerOrgno: stranger, SupplierOrgno: vendor, State: store.DelegationActive},
			{Scope: "acme:a", ConsumerOrgno: consumer, SupplierOrgno: vendor2, State: store.DelegationRevoked},
			{Scope: "acme:b", ConsumerOrgno: consumer, SupplierOrgno: vendor, State: store.DelegationRevoked},
		},
		[]store.Client{
			{ClientID: clientID, ClientOrgno: vendor, Active: true},
			{ClientID: clientID2, ClientOrgno: consumer, Active: false},
		},
	)

	if snap.Generation() != 0 {
		t.Errorf("Generation of a built snapshot = %d, want 0", snap.Generation())
	}
	if s, ok := snap.Scope("acme:a"); !ok || s.Description != "last" {
		t.Errorf("Scope(acme:a) = %+v, %v; want the last record", s, ok)
	}
	if s, ok := snap.Scope("acme:b"); !ok || s.Active {
		t.Errorf("Scope(acme:b) = %+v, %v; want the inactive scope", s, ok)
	}
	if _, ok := snap.Scope("acme:nope"); ok {
		t.Error("Scope(acme:nope) found")
	}

	for _, tc := range []struct {
		name         string
		scope, org   string
		wantApproved bool
	}{
		{"ok/approved", "acme:a", consumer, true},
		{"fail/denied row", "acme:b", consumer, false},
		{"fail/approved then denied", "acme:a", stranger, false},
		{"fail/no row", "acme:a", vendor, false},
	} {
		if got := snap.HasAccess(tc.scope, tc.org); got != tc.wantApproved {
			t.Errorf("%s: HasAccess(%s, %s) = %v", tc.name, tc.scope, tc.org, got)
		}
	}

	for _, tc := range []struct {
		name              string
		scope, cons, supp string
		wantActive        bool
	}{
		{"ok/active", "acme:a", consumer, vendor, true},
		{"fail/revoked", "acme:a", consumer, vendor2, false},
		{"fail/revoked other scope", "acme:b", consumer, vendor, false},
		{"fail/reversed roles", "acme:a", vendor, consumer, false},
	} {
		if got := snap.HasDelegation(tc.scope, tc.cons, tc.supp); got != tc.wantActive {
			t.Errorf("%s: HasDelegation(%s, %s, %s) = %v", tc.name, tc.scope, tc.cons, tc.supp, got)
		}
	}

	got := slices.Sorted(slices.Values(snap.Delegators("acme:a", vendor)))
	if want := []string{consumer, stranger}; !slices.Equal(got, want) {
		t.Errorf("Delegators(acme:a, vendor) = %v, want %v", got, want)
	}
	if got := snap.Delegators("acme:a", vendor2); len(got) != 0 {
		t.Errorf("Delegators(acme:a, vendor2) = %v, want none (revoked)", got)
	}

	if c, ok := snap.Client(clientID); !ok || c.ClientOrgno != vendor {
		t.Errorf("Client(%s) = %+v, %v", clientID, c, ok)
	}
	if c, ok := snap.Client(clientID2); !ok || c.Active {
		t.Errorf("Client(%s) = %+v, %v; want the inactive client", clientID2, c, ok)
	}
	if _, ok := snap.Client("nope"); ok {
		t.Error("Client(nope) found")
	}
}

func TestBuildEmpty(t *testing.T) {
	snap := rules.Build(nil, nil, nil, nil)
	if _, ok := snap.Scope("acme:a"); ok || snap.HasAccess("acme:a", consumer) || snap.HasDelegation("acme:a", consumer, vendor) {
		t.Error("an empty snapshot grants something")
	}
}

func TestClientPublicKeyParsesTheFirstKeyWithTheKidOnce(t *testing.T) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwkOf := func(pub any, kid string) json.RawMessage {
		b, err := jose.JSONWebKey{Key: pub, KeyID: kid}.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	snap := rules.Build(nil, nil, nil, []store.Client{
		{ClientID: clientID, Keys: []store.ClientKey{{KID: "old", JWK: jwkOf(&ek.PublicKey, "old")}}},
		// The last record of a client wins, its keys with it.
		{ClientID: clientID, Keys: []store.ClientKey{
			{KID: "rsa", JWK: jwkOf(&rk.PublicKey, "rsa")},
			{KID: "ec", JWK: jwkOf(&ek.PublicKey, "ec")},
			{KID: "broken", JWK: json.RawMessage(`{"kty":"RSA","n":"!"}`)},
			// A repeated kid: the exchange checks the first one's expiry, so
			// the first one's key is the one returned.
			{KID: "rsa", JWK: jwkOf(&ek.PublicKey, "rsa")},
		}},
	})

	for range 2 { // parsed, then from the memo
		got, err := snap.ClientPublicKey(clientID, "rsa")
		if pub, ok := got.(*rsa.PublicKey); err != nil || !ok || !pub.Equal(&rk.PublicKey) {
			t.Errorf("rsa key = %T %v, %v; want the uploaded RSA key", got, got, err)
		}
	}
	if n := testing.AllocsPerRun(20, func() { _, _ = snap.ClientPublicKey(clientID, "rsa") }); n > 1 {
		t.Errorf("a parsed key costs %v allocations, want at most 1 (no JWK parse)", n)
	}
	got, err := snap.ClientPublicKey(clientID, "ec")
	if pub, ok := got.(*ecdsa.PublicKey); err != nil || !ok || !pub.Equal(&ek.PublicKey) {
		t.Errorf("ec key = %T %v, %v; want the uploaded P-256 key", got, got, err)
	}
	if got, err := snap.ClientPublicKey(clientID, "broken"); got != nil || err == nil || !strings.Contains(err.Error(), "broken") {
		t.Errorf("broken JWK = %v, %v; want no key and an error naming the key", got, err)
	}
	for _, kid := range []string{"old", "nope"} {
		if got, err := snap.ClientPublicKey(clientID, kid); got != nil || !errors.Is(err, rules.ErrNoClientKey) {
			t.Errorf("kid %q = %v, %v; want ErrNoClientKey", kid, got, err)
		}
	}
	if _, err := snap.ClientPublicKey(clientID2, "rsa"); !errors.Is(err, rules.ErrNoClientKey) {
		t.Errorf("another client's kid = %v; want ErrNoClientKey", err)
	}
}
