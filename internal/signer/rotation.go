package signer

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/portvakt/portvakt/internal/store"
)

// Policy is the schedule of automatic rotation.
type Policy struct {
	// Interval is how long a key is CURRENT before the next one takes
	// over.
	Interval time.Duration
	// PrePublish is how long a NEXT key is published before it signs: at
	// least as long as any verifier caches the JWKS.
	PrePublish time.Duration
	// Retain is how long a RETIRED key stays published: the longest token
	// lifetime plus the clock skew, so every token it signed expires first.
	Retain time.Duration
	// Propagation is how long a stored change takes to reach every
	// replica (their poll interval). A NEXT key signs PrePublish after
	// the last replica publishes it, so PrePublish + Propagation after it
	// was stored.
	Propagation time.Duration
}

// NewKeyFunc makes a new stored key in state at now (Keeper uses
// Record over Generate).
type NewKeyFunc func(state string, now time.Time) (store.SigningKey, error)

// ErrNoCurrentKey: the store holds no CURRENT signing key.
var ErrNoCurrentKey = errors.New("signer: no CURRENT signing key in the store")

func byState(keys []store.SigningKey) (cur, next *store.SigningKey) {
	for i := range keys {
		switch keys[i].State {
		case store.SigningKeyCurrent:
			cur = &keys[i]
		case store.SigningKeyNext:
			next = &keys[i]
		}
	}
	return cur, next
}

// Step is the change that brings keys to where the policy wants them at now
// (empty when there is nothing to do): retired keys past RemoveAfter leave;
// a NEXT key published for PrePublish (+ Propagation) becomes CURRENT and the CURRENT one
// RETIRED until now + Retain; with no NEXT key and a CURRENT one older than
// Interval - PrePublish, a NEXT key is made; with no key at all, a CURRENT
// one. It is pure but for newKey.
func (p Policy) Step(keys []store.SigningKey, now time.Time, newKey NewKeyFunc) (store.SigningKeyChange, error) {
	var c store.SigningKeyChange
	for _, k := range keys {
		if k.State == store.SigningKeyRetired && !now.Before(k.RemoveAfter) {
			c.Delete = append(c.Delete, k.KID)
		}
	}
	cur, next := byState(keys)
	switch {
	case next != nil && (cur == nil || !now.Before(next.PublishedAt.Add(p.PrePublish+p.Propagation))):
		if cur != nil {
			c.Update = append(c.Update, p.retire(*cur, now, now.Add(p.Retain)))
		}
		a := *next
		a.State, a.ActivatedAt = store.SigningKeyCurrent, now
		c.Update = append(c.Update, store.SigningKeyUpdate{From: store.SigningKeyNext, Key: a})
		e, err := rotatedEvent(a, cur, now)
		if err != nil {
			return store.SigningKeyChange{}, err
		}
		c.Events = append(c.Events, e)
	case cur == nil:
		k, err := newKey(store.SigningKeyCurrent, now)
		if err != nil {
			return store.SigningKeyChange{}, err
		}
		c.Create = append(c.Create, k)
	case next == nil && !now.Before(cur.ActivatedAt.Add(p.Interval-p.PrePublish)):
		k, err := newKey(store.SigningKeyNext, now)
		if err != nil {
			return store.SigningKeyChange{}, err
		}
		c.Create = append(c.Create, k)
	}
	return c, nil
}

func (Policy) retire(k store.SigningKey, now, removeAfter time.Time) store.SigningKeyUpdate {
	from := k.State
	k.State, k.RetiredAt, k.RemoveAfter = store.SigningKeyRetired, now, removeAfter
	return store.SigningKeyUpdate{From: from, Key: k}
}

// Rotate is `keys rotate`: a NEXT key now, which the schedule activates
// after PrePublish. It fails when there is a NEXT key already.
func (p Policy) Rotate(keys []store.SigningKey, now time.Time, newKey NewKeyFunc) (store.SigningKeyChange, error) {
	if _, next := byState(keys); next != nil {
		return store.SigningKeyChange{}, fmt.Errorf("signer: key %s is NEXT already; it becomes CURRENT on schedule", next.KID)
	}
	k, err := newKey(store.SigningKeyNext, now)
	if err != nil {
		return store.SigningKeyChange{}, err
	}
	return store.SigningKeyChange{Create: []store.SigningKey{k}}, nil
}

// RotateNow is `keys rotate --now`, for a compromised key: a new key signs
// at once and the CURRENT one is retired and unpublished at once (its
// tokens stop verifying). A NEXT key stays NEXT.
func (p Policy) RotateNow(keys []store.SigningKey, now time.Time, newKey NewKeyFunc) (store.SigningKeyChange, error) {
	var c store.SigningKeyChange
	if cur, _ := byState(keys); cur != nil {
		c.Update = append(c.Update, p.retire(*cur, now, now))
	}
	k, err := newKey(store.SigningKeyCurrent, now)
	if err != nil {
		return store.SigningKeyChange{}, err
	}
	k.ActivatedAt = now
	c.Create = append(c.Create, k)
	cur, _ := byState(keys)
	e, err := rotatedEvent(k, cur, now)
	if err != nil {
		return store.SigningKeyChange{}, err
	}
	c.Events = append(c.Events, e)
	return c, nil
}

// rotatedEvent is signing_key.rotated for the activation of k (after
// previous, nil for none), for every org's webhooks: its record is the new
// key as /jwk publishes it and the kid it replaces. Once keeps it to one
// event per key.
func rotatedEvent(k store.SigningKey, previous *store.SigningKey, now time.Time) (store.Event, error) {
	rec := struct {
		KID         string          `json:"kid"`
		Alg         string          `json:"alg"`
		JWK         json.RawMessage `json:"jwk"`
		PreviousKID string          `json:"previous_kid,omitempty"`
		ActivatedAt time.Time       `json:"activated_at"`
	}{KID: k.KID, Alg: k.Alg, JWK: k.PublicJWK, ActivatedAt: now.UTC()}
	if previous != nil {
		rec.PreviousKID = previous.KID
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return store.Event{}, fmt.Errorf("signer: %w", err)
	}
	return store.Event{Name: store.EventSigningKeyRotated, Time: now, Orgs: []string{store.AllOrgs}, Record: b,
		Once: store.EventSigningKeyRotated + ":" + k.KID}, nil
}

// Retire is `keys retire KID`: a NEXT or RETIRED key leaves the JWKS now.
// The CURRENT key is retired by RotateNow instead, which puts another in
// its place.
func (p Policy) Retire(keys []store.SigningKey, kid string, now time.Time) (store.SigningKeyChange, error) {
	for _, k := range keys {
		if k.KID != kid {
			continue
		}
		switch k.State {
		case store.SigningKeyCurrent:
			return store.SigningKeyChange{}, fmt.Errorf("signer: key %s is CURRENT; `keys rotate --now` replaces and retires it", kid)
		case store.SigningKeyRetired:
			return store.SigningKeyChange{Delete: []string{kid}}, nil
		}
		return store.SigningKeyChange{Update: []store.SigningKeyUpdate{p.retire(k, now, now)}}, nil
	}
	return store.SigningKeyChange{}, fmt.Errorf("signer: no signing key %q: %w", kid, store.ErrNotFound)
}

// Published reports whether k is in the JWKS at now.
func Published(k store.SigningKey, now time.Time) bool {
	return k.State != store.SigningKeyRetired || now.Before(k.RemoveAfter)
}

// Record seals k under kek as a stored key in state, published at now (and
// activated at now when CURRENT).
func Record(k *Key, kek *KEK, state string, now time.Time) (store.SigningKey, error) {
	sealed, err := kek.Seal(k.ID, k.Private)
	if err != nil {
		return store.SigningKey{}, err
	}
	return record(k, sealed, state, now)
}

// record is k as a stored key whose private part the store keeps as kept.
func record(k *Key, kept []byte, state string, now time.Time) (store.SigningKey, error) {
	jwk, err := json.Marshal(jose.JSONWebKey{Key: k.Private.Public(), KeyID: k.ID, Algorithm: k.Alg, Use: "sig"})
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("signer: %w", err)
	}
	r := store.SigningKey{KID: k.ID, Alg: k.Alg, PublicJWK: jwk, PrivateSealed: kept, State: state, PublishedAt: now}
	if state == store.SigningKeyCurrent {
		r.ActivatedAt = now
	}
	return r, nil
}

// SetFromStore is the Set of the stored keys at now: it signs with the
// CURRENT key (the only one opened in v) and publishes the others until
// they leave.
func SetFromStore(keys []store.SigningKey, v Vault, now time.Time) (*Set, error) {
	cur, _ := byState(keys)
	if cur == nil {
		return nil, ErrNoCurrentKey
	}
	priv, err := v.Open(cur.KID, cur.PrivateSealed)
	if err != nil {
		return nil, err
	}
	active, err := NewKey(priv, cur.Alg)
	if err != nil {
		return nil, err
	}
	if active.ID != cur.KID {
		return nil, fmt.Errorf("signer: stored key %s holds a key with thumbprint %s", cur.KID, active.ID)
	}
	var pubs []PublicKey
	for _, k := range keys {
		if k.KID == cur.KID || !Published(k, now) {
			continue
		}
		var jwk jose.JSONWebKey
		if err := json.Unmarshal(k.PublicJWK, &jwk); err != nil {
			return nil, fmt.Errorf("signer: stored key %s: public JWK: %w", k.KID, err)
		}
		if !jwk.IsPublic() || jwk.KeyID != k.KID {
			return nil, fmt.Errorf("signer: stored key %s: the public JWK is not a public key of that kid", k.KID)
		}
		pubs = append(pubs, PublicKey{ID: k.KID, Alg: k.Alg, Key: jwk.Key})
	}
	return NewPublishedSet(active, pubs...)
}
