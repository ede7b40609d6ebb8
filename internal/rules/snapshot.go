package rules

import (
	"errors"
	"fmt"

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
	keys       map[clientKeyRef]parsedKey
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
		keys:       make(map[clientKeyRef]parsedKey),
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
	// Every key's JWK is parsed here, once per snapshot, not on every
	// assertion that names it.
	for _, c := range s.clients {
		for _, k := range c.Keys {
			var jwk jose.JSONWebKey
			pk := parsedKey{}
			if err := jwk.UnmarshalJSON(k.JWK); err != nil {
				pk.err = fmt.Errorf("client %s key %s: %w", c.ClientID, k.KID, err)
			} else {
				pk.key = jwk.Key
			}
			s.keys[clientKeyRef{c.ClientID, k.KID}] = pk
		}
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

// ClientPublicKey returns the public key of the client's registered key kid,
// parsed from its JWK when the snapshot was built (an *rsa.PublicKey,
// *ecdsa.PublicKey, ...), or why that JWK does not parse. The caller checks
// the key's expiry and kind.
func (s *Snapshot) ClientPublicKey(clientID, kid string) (any, error) {
	pk, ok := s.keys[clientKeyRef{clientID, kid}]
	if !ok {
		return nil, fmt.Errorf("client %s key %s: %w", clientID, kid, ErrNoClientKey)
	}
	return pk.key, pk.err
}
