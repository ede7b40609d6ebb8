package rules

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/go-jose/go-jose/v4"

	"github.com/portvakt/portvakt/internal/store"
)

type accessKey struct{ scope, consumer string }

type delegationKey struct{ scope, consumer, supplier string }

type supplierKey struct{ scope, supplier string }

// parsedKey is a registered key's JWK, parsed: the public key, or why the
// stored JWK does not parse.
type parsedKey struct {
	key any
	err error
}

// clientEntry is a client and the memo of its parsed JWKs (kid →
// parsedKey): a key is parsed the first time an assertion names it, not on
// every assertion and not for every key at every reload. The entry is
// shared by every snapshot until the client changes, so the memo survives
// changes to other records and goes with the client's old version. Only
// registered keys are kept, so what clients send cannot grow it.
type clientEntry struct {
	client store.Client
	keys   sync.Map
}

// Snapshot is an immutable in-memory copy of the access rules. It implements
// access.Records and access.SupplierRecords. Records it returns share their
// slices with the snapshot: callers must not modify them.
//
// Its indexes are persistent maps (pmap): a snapshot made by applying
// changes to another shares with it everything the changes did not touch.
type Snapshot struct {
	gen   int64
	state uint64 // the Cache's invalidation state the snapshot was loaded at

	scopes     pmap[string, store.Scope]
	approved   pmap[accessKey, struct{}]
	active     pmap[delegationKey, struct{}]
	delegators pmap[supplierKey, []string]
	clients    pmap[string, *clientEntry]
}

// Build indexes the records. It takes ownership of the slices inside them.
// Only APPROVED access rows and ACTIVE delegations are kept: the others
// grant nothing. When a key repeats, the last record wins.
func Build(scopes []store.Scope, access []store.Access, dels []store.Delegation, clients []store.Client) *Snapshot {
	sc := editorFor[string, store.Scope](len(scopes))
	for _, x := range scopes {
		sc.Set(x.Name, x)
	}
	ap := editorFor[accessKey, struct{}](len(access))
	for _, a := range access {
		k := accessKey{a.Scope, a.ConsumerOrgno}
		if a.State == store.AccessApproved {
			ap.Set(k, struct{}{})
		} else {
			ap.Delete(k)
		}
	}
	ac := editorFor[delegationKey, struct{}](len(dels))
	for _, d := range dels {
		k := delegationKey{d.Scope, d.ConsumerOrgno, d.SupplierOrgno}
		if d.State == store.DelegationActive {
			ac.Set(k, struct{}{})
		} else {
			ac.Delete(k)
		}
	}
	active := ac.Map()
	byKey := make(map[supplierKey][]string)
	active.All(func(k delegationKey, _ struct{}) bool {
		sk := supplierKey{k.scope, k.supplier}
		byKey[sk] = append(byKey[sk], k.consumer)
		return true
	})
	dg := editorFor[supplierKey, []string](len(byKey))
	for k, v := range byKey {
		dg.Set(k, v)
	}
	cl := editorFor[string, *clientEntry](len(clients))
	for _, c := range clients {
		cl.Set(c.ClientID, &clientEntry{client: c})
	}
	return &Snapshot{scopes: sc.Map(), approved: ap.Map(), active: active, delegators: dg.Map(), clients: cl.Map()}
}

// changes are the records to apply to a snapshot, fetched by their keys
// after the change log named them. A record that is gone is absent from
// the maps that hold records and false in those that hold grants.
type changes struct {
	scopes  map[string]*store.Scope // nil: no such scope
	access  map[accessKey]bool      // APPROVED
	dels    map[delegationKey]bool  // ACTIVE
	clients map[string]*store.Client
}

// apply returns a new snapshot: s with ch applied, sharing with s all that
// ch does not touch. Each changed key costs a copied path in its map; the
// delegators index changes only where a delegation turned active or
// inactive; a changed client gets a fresh entry (and so an empty key memo),
// the others keep theirs.
func (s *Snapshot) apply(ch *changes) *Snapshot {
	n := *s
	if len(ch.scopes) > 0 {
		e := s.scopes.edit()
		for name, sc := range ch.scopes {
			if sc == nil {
				e.Delete(name)
			} else {
				e.Set(name, *sc)
			}
		}
		n.scopes = e.Map()
	}
	if len(ch.access) > 0 {
		e := s.approved.edit()
		for k, ok := range ch.access {
			if ok {
				e.Set(k, struct{}{})
			} else {
				e.Delete(k)
			}
		}
		n.approved = e.Map()
	}
	if len(ch.dels) > 0 {
		act := s.active.edit()
		var dg *pmEditor[supplierKey, []string]
		for k, now := range ch.dels {
			_, was := s.active.Get(k)
			if was == now {
				continue
			}
			if dg == nil {
				dg = s.delegators.edit()
			}
			sk := supplierKey{k.scope, k.supplier}
			cur, _ := dg.m.Get(sk)
			if now {
				act.Set(k, struct{}{})
				dg.Set(sk, append(slices.Clip(cur), k.consumer)) // a new array: cur is shared
			} else {
				act.Delete(k)
				next := slices.DeleteFunc(slices.Clone(cur), func(c string) bool { return c == k.consumer })
				if len(next) == 0 {
					dg.Delete(sk)
				} else {
					dg.Set(sk, next)
				}
			}
		}
		n.active = act.Map()
		if dg != nil {
			n.delegators = dg.Map()
		}
	}
	if len(ch.clients) > 0 {
		e := s.clients.edit()
		for id, c := range ch.clients {
			if c == nil {
				e.Delete(id)
			} else {
				e.Set(id, &clientEntry{client: *c})
			}
		}
		n.clients = e.Map()
	}
	return &n
}

// Generation is the store generation the snapshot was loaded at (0 for a
// snapshot made by Build directly).
func (s *Snapshot) Generation() int64 { return s.gen }

// Scope returns the scope named name, active or not.
func (s *Snapshot) Scope(name string) (store.Scope, bool) {
	return s.scopes.Get(name)
}

// HasAccess reports whether an APPROVED access row (scope, consumerOrg) exists.
func (s *Snapshot) HasAccess(scope, consumerOrg string) bool {
	_, ok := s.approved.Get(accessKey{scope, consumerOrg})
	return ok
}

// HasDelegation reports whether an ACTIVE delegation (scope, consumerOrg,
// supplierOrg) exists.
func (s *Snapshot) HasDelegation(scope, consumerOrg, supplierOrg string) bool {
	_, ok := s.active.Get(delegationKey{scope, consumerOrg, supplierOrg})
	return ok
}

// Delegators returns the consumers with an ACTIVE delegation of scope to
// supplierOrg, in no particular order.
func (s *Snapshot) Delegators(scope, supplierOrg string) []string {
	d, _ := s.delegators.Get(supplierKey{scope, supplierOrg})
	return d
}

// Client returns the client with id, active or not: the caller decides what
// an inactive client means.
func (s *Snapshot) Client(id string) (store.Client, bool) {
	e, ok := s.clients.Get(id)
	if !ok {
		return store.Client{}, false
	}
	return e.client, true
}

// ErrNoClientKey: the client has no registered key with that kid.
var ErrNoClientKey = errors.New("rules: no such client key")

// ClientPublicKey returns the public key (an *rsa.PublicKey,
// *ecdsa.PublicKey, ...) of the client's first registered key named kid,
// the one whose expiry the caller checks, or why its JWK does not parse.
func (s *Snapshot) ClientPublicKey(clientID, kid string) (any, error) {
	e, ok := s.clients.Get(clientID)
	if !ok {
		return nil, fmt.Errorf("client %s key %s: %w", clientID, kid, ErrNoClientKey)
	}
	if v, ok := e.keys.Load(kid); ok {
		pk := v.(parsedKey)
		return pk.key, pk.err
	}
	i := slices.IndexFunc(e.client.Keys, func(k store.ClientKey) bool { return k.KID == kid })
	if i < 0 {
		return nil, fmt.Errorf("client %s key %s: %w", clientID, kid, ErrNoClientKey)
	}
	var jwk jose.JSONWebKey
	pk := parsedKey{}
	if err := jwk.UnmarshalJSON(e.client.Keys[i].JWK); err != nil {
		pk.err = fmt.Errorf("client %s key %s: %w", clientID, kid, err)
	} else {
		pk.key = jwk.Key
	}
	e.keys.Store(kid, pk)
	return pk.key, pk.err
}
