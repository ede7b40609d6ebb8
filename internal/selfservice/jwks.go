package selfservice

import (
	"bytes"
	"crypto"
	"encoding/json"
	"net/http"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/store"
)

// keyLifetime is how long an uploaded key is valid (SPEC 1: one year).
const keyLifetime = 1

// jwksBody is the JWKS as uploaded: {"keys":[...]}.
type jwksBody struct {
	Keys []json.RawMessage `json:"keys"`
}

// publicJWK is a stored key as answered: the uploaded JWK plus its expiry
// (exp, Unix seconds) as Maskinporten shows it, and who uploaded it
// (uploaded_by; "" = the client's own org, see store.ClientKey).
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

func jwksOf(cl store.Client) map[string][]json.RawMessage {
	keys := make([]json.RawMessage, 0, len(cl.Keys))
	for _, k := range cl.Keys {
		keys = append(keys, publicJWK(k))
	}
	return map[string][]json.RawMessage{"keys": keys}
}

func (h *handler) getJWKS(w http.ResponseWriter, r *http.Request, c *caller) error {
	cl, err := ownClient(r, h.store, c)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, jwksOf(cl))
	return nil
}

// putJWKS is POST /clients/{id}/jwks: the set replaces the client's keys.
// A key already registered with the same kid and material keeps its upload
// time, expiry and uploader, so re-sending the set does not extend old keys
// or change who answers for them. A new key is uploaded_by the caller's org,
// or the vendor's when delegated (vendor.go bounds what a vendor may do).
func (h *handler) putJWKS(w http.ResponseWriter, r *http.Request, c *caller) error {
	var b jwksBody
	if err := decodeBody(w, r, &b); err != nil {
		return err
	}
	if _, err := ownClient(r, h.store, c); err != nil {
		return err
	}
	if b.Keys == nil {
		return invalid([]FieldError{{"keys", "is required: send {\"keys\":[...]} (an empty list removes every key)"}})
	}
	keys, errs := records.ValidateClientKeys("keys", b.Keys)
	if len(errs) > 0 {
		return invalid(fromRecords(errs))
	}
	var out store.Client
	err := h.commit(r.Context(), c, func(tx store.Tx, now time.Time) (change, error) {
		before, err := ownClient(r, tx, c)
		if err != nil {
			return change{}, err
		}
		next := make([]store.ClientKey, len(keys))
		for i, k := range keys {
			k.Created, k.Expires, k.UploadedBy = now, now.AddDate(keyLifetime, 0, 0), c.uploader()
			for _, old := range before.Keys {
				if old.KID == k.KID && sameKey(old.JWK, k.JWK) {
					k.Created, k.Expires, k.UploadedBy = old.Created, old.Expires, old.UploadedBy
				}
			}
			next[i] = k
		}
		if err := vendorKeysRefusal(c, before, next); err != nil {
			return change{}, err
		}
		out = before
		out.Keys = next
		out.LastUpdated = now
		if err := tx.UpdateClient(r.Context(), out); err != nil {
			return change{}, err
		}
		return change{action: "client.keys.replace", kind: "client", target: out.ClientID, orgs: []string{out.ClientOrgno},
			before: jwksOf(before), after: jwksOf(out)}, nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, jwksOf(out))
	return nil
}

func (h *handler) deleteJWKS(w http.ResponseWriter, r *http.Request, c *caller) error {
	err := h.commit(r.Context(), c, func(tx store.Tx, now time.Time) (change, error) {
		before, err := ownClient(r, tx, c)
		if err != nil {
			return change{}, err
		}
		if err := vendorKeysRefusal(c, before, nil); err != nil {
			return change{}, err
		}
		out := before
		out.Keys = []store.ClientKey{}
		out.LastUpdated = now
		if err := tx.UpdateClient(r.Context(), out); err != nil {
			return change{}, err
		}
		return change{action: "client.keys.delete", kind: "client", target: out.ClientID, orgs: []string{out.ClientOrgno},
			before: jwksOf(before), after: jwksOf(out)}, nil
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
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
