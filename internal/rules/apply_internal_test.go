package rules

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"maps"
	mrand "math/rand/v2"
	"slices"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/portvakt/portvakt/internal/store"
)

// Applying changes batch after batch must give the snapshot that Build
// gives over the final records, derived delegators index included.
func TestApplyMatchesBuild(t *testing.T) {
	r := mrand.New(mrand.NewPCG(7, 7))
	const scopesN, orgsN = 6, 8
	scope := func() string { return fmt.Sprint("acme:", r.IntN(scopesN)) }
	org := func() string { return fmt.Sprint("9", r.IntN(orgsN)) }
	scopes := map[string]store.Scope{}
	access := map[accessKey]store.Access{}
	dels := map[delegationKey]store.Delegation{}
	clients := map[string]store.Client{}
	snap := Build(nil, nil, nil, nil)
	for batch := range 300 {
		ch := &changes{scopes: map[string]*store.Scope{}, access: map[accessKey]bool{}, dels: map[delegationKey]bool{}, clients: map[string]*store.Client{}}
		for range 1 + r.IntN(6) {
			switch r.IntN(4) {
			case 0:
				name := scope()
				if r.IntN(5) == 0 {
					delete(scopes, name)
					ch.scopes[name] = nil
				} else {
					sc := store.Scope{Name: name, Active: r.IntN(2) == 0, Description: fmt.Sprint(batch)}
					scopes[name] = sc
					ch.scopes[name] = &sc
				}
			case 1:
				a := store.Access{Scope: scope(), ConsumerOrgno: org(), State: store.AccessApproved}
				if r.IntN(2) == 0 {
					a.State = store.AccessDenied
				}
				k := accessKey{a.Scope, a.ConsumerOrgno}
				access[k] = a
				ch.access[k] = a.State == store.AccessApproved
			case 2:
				d := store.Delegation{Scope: scope(), ConsumerOrgno: org(), SupplierOrgno: org(), State: store.DelegationActive}
				if r.IntN(2) == 0 {
					d.State = store.DelegationRevoked
				}
				k := delegationKey{d.Scope, d.ConsumerOrgno, d.SupplierOrgno}
				dels[k] = d
				ch.dels[k] = d.State == store.DelegationActive
			case 3:
				id := fmt.Sprint("c", r.IntN(5))
				if r.IntN(5) == 0 {
					delete(clients, id)
					ch.clients[id] = nil
				} else {
					c := store.Client{ClientID: id, Active: r.IntN(2) == 0, ClientName: fmt.Sprint(batch)}
					clients[id] = c
					ch.clients[id] = &c
				}
			}
		}
		prev := snap
		snap = snap.apply(ch)
		want := Build(slices.Collect(maps.Values(scopes)), slices.Collect(maps.Values(access)),
			slices.Collect(maps.Values(dels)), slices.Collect(maps.Values(clients)))
		sameRules(t, fmt.Sprintf("batch %d", batch), snap, want, scopesN, orgsN)
		if batch == 150 {
			// An older snapshot is untouched by later batches.
			defer sameRules(t, "batch 149 after all batches", prev, Build(nil, nil, nil, nil).apply(flatten(prev)), scopesN, orgsN)
		}
	}
}

// flatten turns a snapshot into changes that rebuild it from nothing.
func flatten(s *Snapshot) *changes {
	ch := &changes{scopes: map[string]*store.Scope{}, access: map[accessKey]bool{}, dels: map[delegationKey]bool{}, clients: map[string]*store.Client{}}
	s.scopes.All(func(k string, v store.Scope) bool { ch.scopes[k] = &v; return true })
	s.approved.All(func(k accessKey, _ struct{}) bool { ch.access[k] = true; return true })
	s.active.All(func(k delegationKey, _ struct{}) bool { ch.dels[k] = true; return true })
	s.clients.All(func(k string, v *clientEntry) bool { c := v.client; ch.clients[k] = &c; return true })
	return ch
}

func sameRules(t *testing.T, what string, got, want *Snapshot, scopesN, orgsN int) {
	t.Helper()
	if got.scopes.Len() != want.scopes.Len() || got.approved.Len() != want.approved.Len() ||
		got.active.Len() != want.active.Len() || got.delegators.Len() != want.delegators.Len() || got.clients.Len() != want.clients.Len() {
		t.Fatalf("%s: sizes differ", what)
	}
	for i := range scopesN {
		sc := fmt.Sprint("acme:", i)
		g, gok := got.Scope(sc)
		w, wok := want.Scope(sc)
		if gok != wok || g.Description != w.Description || g.Active != w.Active {
			t.Fatalf("%s: Scope(%s) = %+v, %v; want %+v, %v", what, sc, g, gok, w, wok)
		}
		for a := range orgsN {
			oa := fmt.Sprint("9", a)
			if got.HasAccess(sc, oa) != want.HasAccess(sc, oa) {
				t.Fatalf("%s: HasAccess(%s, %s) differs", what, sc, oa)
			}
			g, w := slices.Sorted(slices.Values(got.Delegators(sc, oa))), slices.Sorted(slices.Values(want.Delegators(sc, oa)))
			if !slices.Equal(g, w) {
				t.Fatalf("%s: Delegators(%s, %s) = %v, want %v", what, sc, oa, g, w)
			}
			for b := range orgsN {
				ob := fmt.Sprint("9", b)
				if got.HasDelegation(sc, oa, ob) != want.HasDelegation(sc, oa, ob) {
					t.Fatalf("%s: HasDelegation(%s, %s, %s) differs", what, sc, oa, ob)
				}
			}
		}
	}
	for i := range 5 {
		id := fmt.Sprint("c", i)
		g, gok := got.Client(id)
		w, wok := want.Client(id)
		if gok != wok || g.Active != w.Active || g.ClientName != w.ClientName {
			t.Fatalf("%s: Client(%s) = %+v, %v; want %+v, %v", what, id, g, gok, w, wok)
		}
	}
}

// The parsed keys of a client survive changes to other records and go with
// a change to the client itself.
func TestApplyKeepsKeyMemoOfUnchangedClients(t *testing.T) {
	keyOf := func(kid string) (json.RawMessage, *ecdsa.PublicKey) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		b, err := jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid}.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		return b, &k.PublicKey
	}
	ja, _ := keyOf("k")
	jb, _ := keyOf("k")
	jb2, pb2 := keyOf("k")
	s0 := Build(nil, nil, nil, []store.Client{
		{ClientID: "a", Keys: []store.ClientKey{{KID: "k", JWK: ja}}},
		{ClientID: "b", Keys: []store.ClientKey{{KID: "k", JWK: jb}}},
	})
	for _, id := range []string{"a", "b"} {
		if _, err := s0.ClientPublicKey(id, "k"); err != nil {
			t.Fatal(err)
		}
	}
	s1 := s0.apply(&changes{
		clients: map[string]*store.Client{"b": {ClientID: "b", Keys: []store.ClientKey{{KID: "k", JWK: jb2}}}},
		access:  map[accessKey]bool{{"acme:a", "9"}: true},
	})
	ea0, _ := s0.clients.Get("a")
	ea1, _ := s1.clients.Get("a")
	if ea0 != ea1 {
		t.Error("ok/unchanged client: its entry (and parsed keys) were not carried over")
	}
	if _, ok := ea1.keys.Load("k"); !ok {
		t.Error("ok/unchanged client: the parsed key is gone")
	}
	eb1, _ := s1.clients.Get("b")
	if _, ok := eb1.keys.Load("k"); ok {
		t.Error("fail/changed client: the old parsed key was kept")
	}
	got, err := s1.ClientPublicKey("b", "k")
	if pub, ok := got.(*ecdsa.PublicKey); err != nil || !ok || !pub.Equal(pb2) {
		t.Errorf("fail/changed client: key = %v, %v; want the new key", got, err)
	}
}
