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

type clientKeyRef struct{ client, kid string }

// parsedKey is a registered key's JWK, parsed: the public key, or why the
// stored JWK does not parse.
type parsedKey struct {
	key any
	err error
}

// Snapshot is an immutable in-memory copy of the access rules. It implements
// access.Records and access.SupplierRecords. Records it returns share their
// slices with the snapshot: callers must not modify them.
type Snapshot struct {
	gen   int64
	state uint64 // the Cache's invalidation state the snapshot was loaded at

	scopes     map[string]store.Scope
	approved   map[accessKey]struct{}
	active     map[delegationKey]struct{}
	delegators map[supplierKey][]string
	clients    map[string]store.Client

	// keys memoizes the clients' parsed JWKs (clientKeyRef → parsedKey):
	// a key is parsed the first time an assertion names it, once per
	// snapshot, not on every assertion and not for every key at every
	// reload. Only registered keys are kept, so what clients send cannot
	// grow it.
	keys sync.Map
}

// Build indexes the records. It takes ownership of the slices inside them.
// Only APPROVED access rows and ACTIVE delegations are kept: the others
// grant nothing. When a key repeats, the last record wins.
func Build(scopes []store.Scope, access []store.Access, dels []store.Delegation, clients []store.Client) *Snapshot {
	s := &Snapshot{
		scopes:     make(map[string]store.Scope, len(scopes)),
		approved:   make(map[accessKey]struct{}, len(access)),
		active:     make(map[delegationKey]struct{}, len(dels)),
		delegators: make(map[supplierKey][]string),
		clients:    make(map[string]store.Client, len(clients)),
	}
	for _, sc := range scopes {
		s.scopes[sc.Name] = sc
	}
	for _, a := range access {
		k := accessKey{a.Scope, a.ConsumerOrgno}
		if a.State == store.AccessApproved {
			s.approved[k] = struct{}{}
		} else {
			delete(s.approved, k)
		}
	}
	for _, d := range dels {
		k := delegationKey{d.Scope, d.ConsumerOrgno, d.SupplierOrgno}
		if d.State == store.DelegationActive {
			s.active[k] = struct{}{}
		} else {
			delete(s.active, k)
		}
	}
	for k := range s.active {
		sk := supplierKey{k.scope, k.supplier}
		s.delegators[sk] = append(s.delegators[sk], k.consumer)
	}
	for _, c := range clients {
		s.clients[c.ClientID] = c
	}
	return s
}

// Generation is the store generation the snapshot was loaded at (0 for a
// snapshot made by Build directly).
func (s *Snapshot) Generation() int64 { return s.gen }

// Scope returns the scope named name, active or not.
func (s *Snapshot) Scope(name string) (store.Scope, bool) {
	sc, ok := s.scopes[name]
	return sc, ok
}

// HasAccess reports whether an APPROVED access row (scope, consumerOrg) exists.
func (s *Snapshot) HasAccess(scope, consumerOrg string) bool {
	_, ok := s.approved[accessKey{scope, consumerOrg}]
	return ok
}

// HasDelegation reports whether an ACTIVE delegation (scope, consumerOrg,
// supplierOrg) exists.
func (s *Snapshot) HasDelegation(scope, consumerOrg, supplierOrg string) bool {
	_, ok := s.active[delegationKey{scope, consumerOrg, supplierOrg}]
	return ok
}

// Delegators returns the consumers with an ACTIVE delegation of scope to
// supplierOrg, in no particular order.
func (s *Snapshot) Delegators(scope, supplierOrg string) []string {
	return s.delegators[supplierKey{scope, supplierOrg}]
}

// Client returns the client with id, active or not: the caller decides what
// an inactive client means.
func (s *Snapshot) Client(id string) (store.Client, bool) {
	c, ok := s.clients[id]
	return c, ok
}

// ErrNoClientKey: the client has no registered key with that kid.
var ErrNoClientKey = errors.New("rules: no such client key")

// ClientPublicKey returns the public key (an *rsa.PublicKey,
// *ecdsa.PublicKey, ...) of the client's first registered key named kid,
// the one whose expiry the caller checks, or why its JWK does not parse.
func (s *Snapshot) ClientPublicKey(clientID, kid string) (any, error) {
	ref := clientKeyRef{clientID, kid}
	if v, ok := s.keys.Load(ref); ok {
		pk := v.(parsedKey)
		return pk.key, pk.err
	}
	c := s.clients[clientID]
	i := slices.IndexFunc(c.Keys, func(k store.ClientKey) bool { return k.KID == kid })
	if i < 0 {
		return nil, fmt.Errorf("client %s key %s: %w", clientID, kid, ErrNoClientKey)
	}
	var jwk jose.JSONWebKey
	pk := parsedKey{}
	if err := jwk.UnmarshalJSON(c.Keys[i].JWK); err != nil {
		pk.err = fmt.Errorf("client %s key %s: %w", clientID, kid, err)
	} else {
		pk.key = jwk.Key
	}
	s.keys.Store(ref, pk)
	return pk.key, pk.err
}
