package manage

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/store"
)

// keyLifetime is how long an uploaded key is valid, in years.
const keyLifetime = 1

// JWKS is a client's key set as shown: {"keys":[...]}, each key the
// uploaded JWK plus its expiry (exp, Unix seconds) and who uploaded it
// (uploaded_by; "" = the client's own org).
type JWKS struct {
	Keys []json.RawMessage `json:"keys"`
}

// KeySet is the key set of cl as shown.
func KeySet(cl store.Client) JWKS {
	keys := make([]json.RawMessage, 0, len(cl.Keys))
	for _, k := range cl.Keys {
		keys = append(keys, publicJWK(k))
	}
	return JWKS{Keys: keys}
}

// publicJWK is a stored key as shown.
func publicJWK(k store.ClientKey) json.RawMessage {
	var m map[string]any
	if err := json.Unmarshal(k.JWK, &m); err != nil {
		return json.RawMessage(`{}`) // never the raw bytes: they are not known to be public
	}
	for name := range m {
		if records.PrivateMember(name) {
			delete(m, name) // a key stored before uploads were checked
		}
	}
	m["exp"] = k.Expires.Unix()
	m["uploaded_by"] = k.UploadedBy
	b, err := json.Marshal(m)
	if err != nil {
		return k.JWK
	}
	return b
}

// ReplaceKeys replaces the key set of one of the actor's org's clients
// with raw (an empty list removes every key; nil is refused). A key already
// registered with the same kid and material keeps its upload time, expiry
// and uploader, so sending the set again does not extend old keys or change
// who answers for them. A new key is uploaded_by the actor's org, or the
// vendor's when delegated (vendor.go bounds what a vendor may do).
func (s *Service) ReplaceKeys(ctx context.Context, a *Actor, id string, raw []json.RawMessage) (store.Client, error) {
	if err := authorize(ctx, s.store, a, NeedClientsWrite); err != nil {
		return store.Client{}, err
	}
	if _, err := ownClient(ctx, s.store, a, id); err != nil {
		return store.Client{}, err
	}
	if raw == nil {
		return store.Client{}, invalid([]FieldError{field("keys", `is required: send {"keys":[...]} (an empty list removes every key)`)})
	}
	keys, errs := records.ValidateClientKeys("keys", raw)
	if len(errs) > 0 {
		return store.Client{}, invalid(errs)
	}
	var out store.Client
	err := s.commit(ctx, a, NeedClientsWrite, func(tx store.Tx, now time.Time) (change, error) {
		before, err := ownClient(ctx, tx, a, id)
		if err != nil {
			return change{}, err
		}
		next := make([]store.ClientKey, len(keys))
		for i, k := range keys {
			k.Created, k.Expires, k.UploadedBy = now, now.AddDate(keyLifetime, 0, 0), a.uploader()
			for _, old := range before.Keys {
				if old.KID == k.KID && sameKey(old.JWK, k.JWK) {
					k.Created, k.Expires, k.UploadedBy = old.Created, old.Expires, old.UploadedBy
				}
			}
			next[i] = k
		}
		if err := vendorKeysRefusal(a, before, next); err != nil {
			return change{}, err
		}
		out = before
		out.Keys = next
		out.LastUpdated = now
		if err := tx.UpdateClient(ctx, out); err != nil {
			return change{}, err
		}
		return change{action: "client.keys.replace", kind: "client", target: out.ClientID, orgs: []string{out.ClientOrgno},
			before: KeySet(before), after: KeySet(out)}, nil
	})
	return out, err
}

// DeleteKeys removes every key of one of the actor's org's clients.
func (s *Service) DeleteKeys(ctx context.Context, a *Actor, id string) error {
	if err := authorize(ctx, s.store, a, NeedClientsWrite); err != nil {
		return err
	}
	return s.commit(ctx, a, NeedClientsWrite, func(tx store.Tx, now time.Time) (change, error) {
		before, err := ownClient(ctx, tx, a, id)
		if err != nil {
			return change{}, err
		}
		if err := vendorKeysRefusal(a, before, nil); err != nil {
			return change{}, err
		}
		out := before
		out.Keys = []store.ClientKey{}
		out.LastUpdated = now
		if err := tx.UpdateClient(ctx, out); err != nil {
			return change{}, err
		}
		return change{action: "client.keys.delete", kind: "client", target: out.ClientID, orgs: []string{out.ClientOrgno},
			before: KeySet(before), after: KeySet(out)}, nil
	})
}

// sameKey compares two JWKs by their public key material.
func sameKey(a, b json.RawMessage) bool {
	var ka, kb jose.JSONWebKey
	if ka.UnmarshalJSON(a) != nil || kb.UnmarshalJSON(b) != nil {
		return false
	}
	ta, err1 := ka.Thumbprint(crypto.SHA256)
	tb, err2 := kb.Thumbprint(crypto.SHA256)
	return err1 == nil && err2 == nil && bytes.Equal(ta, tb)
}
