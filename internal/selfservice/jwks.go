package selfservice

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/portvakt/portvakt/internal/store"
)

// maxKeys is the most keys a client may register (SPEC 1).
const maxKeys = 5

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
		return k.JWK
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

// parseKeys validates an uploaded key set, every problem at once: at most
// five keys, public only, RSA of at least 2048 bits or EC P-256/P-384, a
// unique kid, use sig when given, alg matching the key when given.
func parseKeys(raw []json.RawMessage) ([]store.ClientKey, []FieldError) {
	var errs []FieldError
	if len(raw) > maxKeys {
		errs = append(errs, FieldError{"keys", fmt.Sprintf("%d keys; a client may have at most %d", len(raw), maxKeys)})
	}
	var keys []store.ClientKey
	var kids []string
	for i, r := range raw {
		field := fmt.Sprintf("keys[%d]", i)
		bad := func(format string, args ...any) {
			errs = append(errs, FieldError{field, fmt.Sprintf(format, args...)})
		}
		var members map[string]json.RawMessage
		if err := json.Unmarshal(r, &members); err != nil {
			bad("is not a JSON object")
			continue
		}
		if _, ok := members["d"]; ok {
			bad("holds a private key (member d); upload only the public key")
			continue
		}
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(r); err != nil {
			bad("is not a valid JWK: %v", joseMessage(err))
			continue
		}
		if !k.IsPublic() {
			bad("holds a private key; upload only the public key")
			continue
		}
		if k.KeyID == "" {
			bad("needs a kid")
		} else if slices.Contains(kids, k.KeyID) {
			bad("kid %q is used by another key in the set", k.KeyID)
		}
		kids = append(kids, k.KeyID)
		if k.Use != "" && k.Use != "sig" {
			bad("use is %q; a client key signs grants, so use must be sig", k.Use)
		}
		switch pub := k.Key.(type) {
		case *rsa.PublicKey:
			if pub.N.BitLen() < 2048 {
				bad("RSA key of %d bits; at least 2048 are required", pub.N.BitLen())
			}
			if k.Algorithm != "" && !slices.Contains([]string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}, k.Algorithm) {
				bad("alg %q does not fit an RSA key", k.Algorithm)
			}
		case *ecdsa.PublicKey:
			want := map[elliptic.Curve]string{elliptic.P256(): "ES256", elliptic.P384(): "ES384"}[pub.Curve]
			if want == "" {
				bad("EC key on curve %s; use P-256 or P-384", pub.Curve.Params().Name)
			} else if k.Algorithm != "" && k.Algorithm != want {
				bad("alg %q does not fit an EC %s key; use %s", k.Algorithm, pub.Curve.Params().Name, want)
			}
		default:
			bad("key type %T is not allowed; use RSA (2048 bits or more) or EC P-256/P-384", k.Key)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, r); err != nil {
			bad("is not valid JSON")
			continue
		}
		keys = append(keys, store.ClientKey{KID: k.KeyID, JWK: compact.Bytes()})
	}
	return keys, errs
}

// joseMessage strips go-jose's package prefix from a parse error.
func joseMessage(err error) string {
	return strings.TrimPrefix(err.Error(), "go-jose/go-jose: ")
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
	keys, errs := parseKeys(b.Keys)
	if len(errs) > 0 {
		return invalid(errs)
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
