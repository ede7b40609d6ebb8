package selfservice

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/portvakt/portvakt/internal/access"
	"github.com/portvakt/portvakt/internal/norid"
	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/store"
)

// --- prefixes (platform admin) ---

type prefixBody struct {
	OwnerOrg    string          `json:"owner_org"`
	Prefix      *string         `json:"prefix"`
	Created     json.RawMessage `json:"created"`
	LastUpdated json.RawMessage `json:"last_updated"`
}

func (h *handler) putPrefix(w http.ResponseWriter, r *http.Request, c *caller) error {
	name := r.PathValue("prefix")
	var b prefixBody
	if err := decodeBody(w, r, &b); err != nil {
		return err
	}
	var errs []FieldError
	if !records.ValidPrefix(name) {
		errs = append(errs, FieldError{"prefix", fmt.Sprintf("must match [a-z0-9]+, at most %d characters", records.MaxPrefix)})
	}
	if b.Prefix != nil && *b.Prefix != name {
		errs = append(errs, FieldError{"prefix", "the body's prefix differs from the one in the path"})
	}
	if !norid.ValidOrg(b.OwnerOrg) {
		errs = append(errs, FieldError{"owner_org", fmt.Sprintf("%q is not a valid organisation number (9 digits, mod-11)", b.OwnerOrg)})
	}
	if len(errs) > 0 {
		return invalid(errs)
	}
	var out store.Prefix
	err := h.commit(r.Context(), c, func(tx store.Tx, now time.Time) (change, error) {
		before, err := tx.GetPrefix(r.Context(), name)
		var prev any
		switch {
		case errors.Is(err, store.ErrNotFound):
			out = store.Prefix{Prefix: name, OwnerOrg: b.OwnerOrg, Created: now}
		case err != nil:
			return change{}, err
		default:
			prev = before
			out = before
			if before.OwnerOrg != b.OwnerOrg {
				scopes, err := tx.ListScopes(r.Context())
				if err != nil {
					return change{}, err
				}
				if slices.ContainsFunc(scopes, func(s store.Scope) bool { return s.Prefix == name }) {
					return change{}, conflict("prefix %s has scopes owned by %s; it cannot be given to another organisation", name, before.OwnerOrg)
				}
			}
			out.OwnerOrg = b.OwnerOrg
		}
		out.LastUpdated = now
		if err := tx.PutPrefix(r.Context(), out); err != nil {
			return change{}, err
		}
		return change{action: "prefix.assign", kind: "prefix", target: name,
			orgs: []string{before.OwnerOrg, b.OwnerOrg}, before: prev, after: out}, nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *handler) listPrefixes(w http.ResponseWriter, r *http.Request, _ *caller) error {
	p, err := pageParam(r)
	if err != nil {
		return err
	}
	ps, err := h.store.PagePrefixes(r.Context(), more(p))
	if err != nil {
		return err
	}
	writePage(w, r, h.cfg.Issuer, p, ps)
	return nil
}

// --- scopes ---

// scopeBody is a scope as sent by a client. The read-only fields are
// accepted so that a GET result can be sent back as a PUT; when present
// they must not differ from the record.
type scopeBody struct {
	Name                    *string         `json:"name"`
	Prefix                  string          `json:"prefix"`
	Subscope                string          `json:"subscope"`
	Description             string          `json:"description"`
	LongDescription         string          `json:"long_description"`
	Active                  *bool           `json:"active"`
	AccessibleForAll        bool            `json:"accessible_for_all"`
	DelegationSource        string          `json:"delegation_source"`
	AllowedIntegrationTypes []string        `json:"allowed_integration_types"`
	ATMaxAge                int             `json:"at_max_age"`
	Visibility              string          `json:"visibility"`
	RequiresAudience        bool            `json:"requires_audience"`
	Audiences               []string        `json:"audiences"`
	OwnerOrgno              *string         `json:"owner_orgno"`
	Created                 json.RawMessage `json:"created"`
	LastUpdated             json.RawMessage `json:"last_updated"`
}

// validate checks the fields every scope body shares: the scope's content
// (records.ValidateScopeContent), this server being the only delegation
// source.
func (b *scopeBody) validate(issuer string) []FieldError {
	return fromRecords(records.ValidateScopeContent(store.Scope{
		Description: b.Description, LongDescription: b.LongDescription, DelegationSource: b.DelegationSource,
		AllowedIntegrationTypes: b.AllowedIntegrationTypes, ATMaxAge: b.ATMaxAge, Visibility: b.Visibility,
		Audiences: b.Audiences,
	}, issuer))
}

// apply copies the mutable fields onto s.
func (b *scopeBody) apply(s *store.Scope) {
	s.Description = b.Description
	s.LongDescription = b.LongDescription
	s.AccessibleForAll = b.AccessibleForAll
	s.DelegationSource = b.DelegationSource
	s.AllowedIntegrationTypes = nonNil(b.AllowedIntegrationTypes)
	s.ATMaxAge = b.ATMaxAge
	s.Visibility = cmp.Or(b.Visibility, store.VisibilityPublic)
	s.RequiresAudience = b.RequiresAudience
	s.Audiences = nonNil(b.Audiences)
	if b.Active != nil {
		s.Active = *b.Active
	}
}

func (h *handler) createScope(w http.ResponseWriter, r *http.Request, c *caller) error {
	var b scopeBody
	if err := decodeBody(w, r, &b); err != nil {
		return err
	}
	name := b.Prefix + ":" + b.Subscope
	errs := fromRecords(records.ValidateScopeName(b.Prefix, b.Subscope))
	if b.Name != nil && *b.Name != name {
		errs = append(errs, FieldError{"name", fmt.Sprintf("is made from prefix and subscope (%q); leave it out", name)})
	}
	if b.OwnerOrgno != nil && *b.OwnerOrgno != c.Org {
		errs = append(errs, FieldError{"owner_orgno", "is the owner of the prefix, your organisation; leave it out"})
	}
	errs = append(errs, b.validate(h.cfg.Issuer)...)
	if len(errs) > 0 {
		return invalid(errs)
	}
	var out store.Scope
	err := h.commit(r.Context(), c, func(tx store.Tx, now time.Time) (change, error) {
		p, err := tx.GetPrefix(r.Context(), b.Prefix)
		if errors.Is(err, store.ErrNotFound) || (err == nil && p.OwnerOrg != c.Org) {
			return change{}, forbidden("the prefix %s is not assigned to your organisation (%s); ask the platform admin to assign you a prefix", b.Prefix, c.Org)
		}
		if err != nil {
			return change{}, err
		}
		out = store.Scope{Name: name, Prefix: b.Prefix, Subscope: b.Subscope, Active: true, OwnerOrgno: c.Org, Created: now, LastUpdated: now}
		b.apply(&out)
		if err := tx.CreateScope(r.Context(), out); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return change{}, conflict("the scope %s exists (perhaps deactivated); scope names are never reused", name)
			}
			return change{}, err
		}
		return change{action: "scope.create", kind: "scope", target: name, orgs: []string{c.Org}, after: out}, nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// ownScope reads a scope the caller's org owns; another org's scope is
// missing, exactly as a scope that does not exist.
func ownScope(r *http.Request, rd store.Reader, c *caller, name string) (store.Scope, error) {
	s, err := rd.GetScope(r.Context(), name)
	if errors.Is(err, store.ErrNotFound) || (err == nil && s.OwnerOrgno != c.Org) {
		return store.Scope{}, notFound("your organisation has no scope %q", name)
	}
	return s, err
}

// getScopes is GET /scopes: one scope with ?scope=, else the caller's own.
func (h *handler) getScopes(w http.ResponseWriter, r *http.Request, c *caller) error {
	if r.URL.Query().Has("scope") {
		name, err := scopeParam(r)
		if err != nil {
			return err
		}
		s, err := ownScope(r, h.store, c, name)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, s)
		return nil
	}
	inactive, err := inactiveParam(r)
	if err != nil {
		return err
	}
	p, err := pageParam(r)
	if err != nil {
		return err
	}
	got, err := h.store.PageScopes(r.Context(), store.ScopeFilter{OwnerOrgno: c.Org, ActiveOnly: !inactive}, more(p))
	if err != nil {
		return err
	}
	writePage(w, r, h.cfg.Issuer, p, got)
	return nil
}

func (h *handler) updateScope(w http.ResponseWriter, r *http.Request, c *caller) error {
	name, err := scopeParam(r)
	if err != nil {
		return err
	}
	var b scopeBody
	if err := decodeBody(w, r, &b); err != nil {
		return err
	}
	bodyErrs := b.validate(h.cfg.Issuer)
	var out store.Scope
	err = h.commit(r.Context(), c, func(tx store.Tx, now time.Time) (change, error) {
		errs := slices.Clone(bodyErrs)
		before, err := ownScope(r, tx, c, name)
		if err != nil {
			return change{}, err
		}
		// Immutable fields, checked against the record so that a GET body
		// can be sent back unchanged.
		if b.Name != nil && *b.Name != before.Name {
			errs = append(errs, FieldError{"name", "cannot change"})
		}
		if b.Prefix != "" && b.Prefix != before.Prefix {
			errs = append(errs, FieldError{"prefix", "cannot change"})
		}
		if b.Subscope != "" && b.Subscope != before.Subscope {
			errs = append(errs, FieldError{"subscope", "cannot change"})
		}
		if b.OwnerOrgno != nil && *b.OwnerOrgno != before.OwnerOrgno {
			errs = append(errs, FieldError{"owner_orgno", "cannot change"})
		}
		if len(errs) > 0 {
			return change{}, invalid(errs)
		}
		out = before
		b.apply(&out)
		out.LastUpdated = now
		if err := tx.UpdateScope(r.Context(), out); err != nil {
			return change{}, err
		}
		return change{action: "scope.update", kind: "scope", target: name, orgs: []string{c.Org}, before: before, after: out}, nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *handler) deleteScope(w http.ResponseWriter, r *http.Request, c *caller) error {
	name, err := scopeParam(r)
	if err != nil {
		return err
	}
	err = h.commit(r.Context(), c, func(tx store.Tx, now time.Time) (change, error) {
		before, err := ownScope(r, tx, c, name)
		if err != nil {
			return change{}, err
		}
		after := before
		after.Active = false
		after.LastUpdated = now
		if err := tx.UpdateScope(r.Context(), after); err != nil {
			return change{}, err
		}
		return change{action: "scope.deactivate", kind: "scope", target: name, orgs: []string{c.Org}, before: before, after: after}, nil
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// allScopes is GET /scopes/all: the active public scopes, and with a token
// also the private ones the caller's org owns or can get; ?q= searches names
// and descriptions. The store filters and pages; the private scopes the
// caller may not see are left out here, reading further pages until this
// one is full (each read is a page, so the walk costs what it passes).
func (h *handler) allScopes(w http.ResponseWriter, r *http.Request, c *caller) error {
	p, err := pageParam(r)
	if err != nil {
		return err
	}
	query, err := queryParam(r)
	if err != nil {
		return err
	}
	snap, err := h.rules.Snapshot(r.Context())
	if err != nil {
		return err
	}
	f := store.ScopeFilter{ActiveOnly: true, Query: query}
	visible := func(s store.Scope) bool {
		return s.Visibility != store.VisibilityPrivate ||
			(c != nil && (s.OwnerOrgno == c.Org || access.ClientMayList(snap, s.Name, c.Org)))
	}
	out := []store.Scope{}
	read := more(p)
	for len(out) <= p.Size() {
		got, err := h.store.PageScopes(r.Context(), f, read)
		if err != nil {
			return err
		}
		for _, s := range got {
			if visible(s) && len(out) <= p.Size() {
				out = append(out, s)
			}
		}
		if len(got) < read.Size() {
			break
		}
		read.After = got[len(got)-1].Key()
	}
	writePage(w, r, h.cfg.Issuer, p, out)
	return nil
}

// maxQuery bounds the ?q= search text.
const maxQuery = 255

// queryParam reads the optional ?q= search of /scopes/all.
func queryParam(r *http.Request) (string, error) {
	vs := r.URL.Query()["q"]
	switch {
	case len(vs) == 0:
		return "", nil
	case len(vs) > 1 || len(vs[0]) > maxQuery:
		return "", invalid([]FieldError{{"q", fmt.Sprintf("must be given once, at most %d characters", maxQuery)}})
	}
	return vs[0], nil
}

// --- access (the provider's allow-list) ---

func (h *handler) grantAccess(w http.ResponseWriter, r *http.Request, c *caller) error {
	return h.setAccess(w, r, c, store.AccessApproved)
}

func (h *handler) revokeAccess(w http.ResponseWriter, r *http.Request, c *caller) error {
	return h.setAccess(w, r, c, store.AccessDenied)
}

func (h *handler) setAccess(w http.ResponseWriter, r *http.Request, c *caller, state string) error {
	org := r.PathValue("org")
	var errs []FieldError
	if !norid.ValidOrg(org) {
		errs = append(errs, FieldError{"org", fmt.Sprintf("%q is not a valid organisation number (9 digits, mod-11)", org)})
	}
	name, err := scopeParam(r)
	errs = append(errs, fieldErrors(err)...)
	if len(errs) > 0 {
		return invalid(errs)
	}
	if c.Supplier != "" && org == c.Supplier && state == store.AccessApproved {
		// As a delegation to itself (vendor.go): the provider's allow-list
		// is the provider's to extend to its vendor.
		return forbidden("you act for organisation %s as its vendor %s: a vendor cannot grant itself access; organisation %s must do that", c.Org, c.Supplier, c.Org)
	}
	var out store.Access
	err = h.commit(r.Context(), c, func(tx store.Tx, now time.Time) (change, error) {
		if _, err := ownScope(r, tx, c, name); err != nil {
			return change{}, err
		}
		before, err := tx.GetAccess(r.Context(), name, org)
		var prev any
		switch {
		case errors.Is(err, store.ErrNotFound):
			if state == store.AccessDenied {
				return change{}, notFound("organisation %s has no access row for scope %q", org, name)
			}
			out = store.Access{Scope: name, ConsumerOrgno: org, OwnerOrgno: c.Org, Created: now}
		case err != nil:
			return change{}, err
		default:
			prev, out = before, before
		}
		out.State = state
		out.LastUpdated = now
		if err := tx.PutAccess(r.Context(), out); err != nil {
			return change{}, err
		}
		action := "access.grant"
		if state == store.AccessDenied {
			action = "access.revoke"
		}
		return change{action: action, kind: "access", target: name, orgs: []string{c.Org, org}, before: prev, after: out}, nil
	})
	if err != nil {
		return err
	}
	if state == store.AccessDenied {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *handler) listAccess(w http.ResponseWriter, r *http.Request, c *caller) error {
	name, err := scopeParam(r)
	if err != nil {
		return err
	}
	inactive, err := inactiveParam(r)
	if err != nil {
		return err
	}
	if _, err := ownScope(r, h.store, c, name); err != nil {
		return err
	}
	return h.pageAccess(w, r, store.AccessFilter{Scope: name}, inactive)
}

// pageAccess writes a page of access rows matching f: APPROVED ones, or
// every state with ?inactive=true.
func (h *handler) pageAccess(w http.ResponseWriter, r *http.Request, f store.AccessFilter, inactive bool) error {
	p, err := pageParam(r)
	if err != nil {
		return err
	}
	if !inactive {
		f.States = []string{store.AccessApproved}
	}
	rows, err := h.store.PageAccess(r.Context(), f, more(p))
	if err != nil {
		return err
	}
	writePage(w, r, h.cfg.Issuer, p, rows)
	return nil
}

// myAccess is GET /scopes/access/all: the caller's org's own access rows.
func (h *handler) myAccess(w http.ResponseWriter, r *http.Request, c *caller) error {
	inactive, err := inactiveParam(r)
	if err != nil {
		return err
	}
	return h.pageAccess(w, r, store.AccessFilter{ConsumerOrgno: c.Org}, inactive)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
