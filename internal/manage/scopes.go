package manage

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/portvakt/portvakt/internal/access"
	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/store"
)

// --- prefixes (platform admin) ---

// PrefixInput assigns a prefix. Prefix, when given, must be the prefix
// assigned (an answer sent back); the record's times are the server's.
type PrefixInput struct {
	OwnerOrg    string          `json:"owner_org"`
	Prefix      *string         `json:"prefix"`
	Created     json.RawMessage `json:"created"`
	LastUpdated json.RawMessage `json:"last_updated"`
}

// AssignPrefix gives the prefix name to in.OwnerOrg, creating it or moving
// it. A prefix with scopes stays with their owner.
func (s *Service) AssignPrefix(ctx context.Context, a *Actor, name string, in PrefixInput) (store.Prefix, error) {
	if err := authorize(ctx, s.store, a, NeedAdmin); err != nil {
		return store.Prefix{}, err
	}
	errs := records.ValidatePrefix(store.Prefix{Prefix: name, OwnerOrg: in.OwnerOrg})
	if in.Prefix != nil && *in.Prefix != name {
		errs = append(errs, field("prefix", "the body's prefix differs from the one in the path"))
	}
	if len(errs) > 0 {
		return store.Prefix{}, invalid(errs)
	}
	var out store.Prefix
	err := s.commit(ctx, a, NeedAdmin, func(tx store.Tx, now time.Time) (change, error) {
		before, err := tx.GetPrefix(ctx, name)
		var prev any
		switch {
		case errors.Is(err, store.ErrNotFound):
			out = store.Prefix{Prefix: name, OwnerOrg: in.OwnerOrg, Created: now}
		case err != nil:
			return change{}, err
		default:
			prev = before
			out = before
			if before.OwnerOrg != in.OwnerOrg {
				// One scope is enough to refuse: a page of one.
				scopes, err := tx.PageScopes(ctx, store.ScopeFilter{Prefix: name}, store.Page{Limit: 1})
				if err != nil {
					return change{}, err
				}
				if len(scopes) > 0 {
					return change{}, conflict("prefix %s has scopes owned by %s; it cannot be given to another organisation", name, before.OwnerOrg)
				}
			}
			out.OwnerOrg = in.OwnerOrg
		}
		out.LastUpdated = now
		if err := tx.PutPrefix(ctx, out); err != nil {
			return change{}, err
		}
		return change{action: "prefix.assign", kind: "prefix", target: name,
			orgs: []string{before.OwnerOrg, in.OwnerOrg}, before: prev, after: out}, nil
	})
	return out, err
}

// ListPrefixes is a page of every prefix.
func (s *Service) ListPrefixes(ctx context.Context, a *Actor, p store.Page) ([]store.Prefix, error) {
	if err := authorize(ctx, s.store, a, NeedAdmin); err != nil {
		return nil, err
	}
	return s.store.PagePrefixes(ctx, p)
}

// OwnPrefixes are the prefixes the actor's org owns: where it may create
// scopes. Prefixes are few (one or two per provider), so this reads them
// all.
func (s *Service) OwnPrefixes(ctx context.Context, a *Actor) ([]store.Prefix, error) {
	if err := authorize(ctx, s.store, a, NeedScopesRead); err != nil {
		return nil, err
	}
	all, err := s.store.ListPrefixes(ctx)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(p store.Prefix) bool { return p.OwnerOrg != a.Org }), nil
}

// --- scopes ---

// ScopeInput is a scope as its owner writes it. The read-only fields are
// accepted so that a record read can be sent back as an update; when given
// they must not differ from the record.
type ScopeInput struct {
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

// content checks the fields an owner may change (records.ValidateScopeContent).
func (in *ScopeInput) content(issuer string) []FieldError {
	var sc store.Scope
	in.apply(&sc)
	return records.ValidateScopeContent(sc, issuer)
}

// apply copies the mutable fields onto sc.
func (in *ScopeInput) apply(sc *store.Scope) {
	sc.Description = in.Description
	sc.LongDescription = in.LongDescription
	sc.AccessibleForAll = in.AccessibleForAll
	sc.DelegationSource = in.DelegationSource
	sc.AllowedIntegrationTypes = nonNil(in.AllowedIntegrationTypes)
	sc.ATMaxAge = in.ATMaxAge
	sc.Visibility = cmp.Or(in.Visibility, store.VisibilityPublic)
	sc.RequiresAudience = in.RequiresAudience
	sc.Audiences = nonNil(in.Audiences)
	if in.Active != nil {
		sc.Active = *in.Active
	}
}

// CreateScope creates prefix:subscope under a prefix the actor's org owns.
func (s *Service) CreateScope(ctx context.Context, a *Actor, in ScopeInput) (store.Scope, error) {
	if err := authorize(ctx, s.store, a, NeedScopesWrite); err != nil {
		return store.Scope{}, err
	}
	name := in.Prefix + ":" + in.Subscope
	errs := records.ValidateScopeName(in.Prefix, in.Subscope)
	if in.Name != nil && *in.Name != name {
		errs = append(errs, field("name", "is made from prefix and subscope (%q); leave it out", name))
	}
	if in.OwnerOrgno != nil && *in.OwnerOrgno != a.Org {
		errs = append(errs, field("owner_orgno", "is the owner of the prefix, your organisation; leave it out"))
	}
	errs = append(errs, in.content(s.cfg.Issuer)...)
	if len(errs) > 0 {
		return store.Scope{}, invalid(errs)
	}
	var out store.Scope
	err := s.commit(ctx, a, NeedScopesWrite, func(tx store.Tx, now time.Time) (change, error) {
		p, err := tx.GetPrefix(ctx, in.Prefix)
		if errors.Is(err, store.ErrNotFound) || (err == nil && p.OwnerOrg != a.Org) {
			return change{}, forbidden("the prefix %s is not assigned to your organisation (%s); ask the platform admin to assign you a prefix", in.Prefix, a.Org)
		}
		if err != nil {
			return change{}, err
		}
		out = store.Scope{Name: name, Prefix: in.Prefix, Subscope: in.Subscope, Active: true, OwnerOrgno: a.Org, Created: now, LastUpdated: now}
		in.apply(&out)
		if err := tx.CreateScope(ctx, out); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return change{}, conflict("the scope %s exists (perhaps deactivated); scope names are never reused", name)
			}
			return change{}, err
		}
		return change{action: "scope.create", kind: "scope", target: name, orgs: []string{a.Org}, after: out}, nil
	})
	return out, err
}

// ownScope reads a scope the actor's org owns; another org's scope is
// missing, exactly as a scope that does not exist.
func ownScope(ctx context.Context, rd store.Reader, a *Actor, name string) (store.Scope, error) {
	sc, err := rd.GetScope(ctx, name)
	if errors.Is(err, store.ErrNotFound) || (err == nil && sc.OwnerOrgno != a.Org) {
		return store.Scope{}, notFound("your organisation has no scope %q", name)
	}
	return sc, err
}

// GetScope reads one of the actor's org's scopes.
func (s *Service) GetScope(ctx context.Context, a *Actor, name string) (store.Scope, error) {
	if err := authorize(ctx, s.store, a, NeedScopesRead); err != nil {
		return store.Scope{}, err
	}
	return ownScope(ctx, s.store, a, name)
}

// ListScopes is a page of the actor's org's scopes, the deactivated ones
// too when inactive.
func (s *Service) ListScopes(ctx context.Context, a *Actor, inactive bool, p store.Page) ([]store.Scope, error) {
	if err := authorize(ctx, s.store, a, NeedScopesRead); err != nil {
		return nil, err
	}
	return s.store.PageScopes(ctx, store.ScopeFilter{OwnerOrgno: a.Org, ActiveOnly: !inactive}, p)
}

// UpdateScope replaces the mutable fields of one of the actor's org's
// scopes.
func (s *Service) UpdateScope(ctx context.Context, a *Actor, name string, in ScopeInput) (store.Scope, error) {
	if err := authorize(ctx, s.store, a, NeedScopesWrite); err != nil {
		return store.Scope{}, err
	}
	inputErrs := in.content(s.cfg.Issuer)
	var out store.Scope
	err := s.commit(ctx, a, NeedScopesWrite, func(tx store.Tx, now time.Time) (change, error) {
		errs := slices.Clone(inputErrs)
		before, err := ownScope(ctx, tx, a, name)
		if err != nil {
			return change{}, err
		}
		// Immutable fields, checked against the record so that a record
		// read can be sent back unchanged.
		if in.Name != nil && *in.Name != before.Name {
			errs = append(errs, field("name", "cannot change"))
		}
		if in.Prefix != "" && in.Prefix != before.Prefix {
			errs = append(errs, field("prefix", "cannot change"))
		}
		if in.Subscope != "" && in.Subscope != before.Subscope {
			errs = append(errs, field("subscope", "cannot change"))
		}
		if in.OwnerOrgno != nil && *in.OwnerOrgno != before.OwnerOrgno {
			errs = append(errs, field("owner_orgno", "cannot change"))
		}
		if len(errs) > 0 {
			return change{}, invalid(errs)
		}
		out = before
		in.apply(&out)
		out.LastUpdated = now
		if err := tx.UpdateScope(ctx, out); err != nil {
			return change{}, err
		}
		return change{action: "scope.update", kind: "scope", target: name, orgs: []string{a.Org}, before: before, after: out}, nil
	})
	return out, err
}

// DeactivateScope deactivates one of the actor's org's scopes. Scopes are
// never deleted: their names are never reused.
func (s *Service) DeactivateScope(ctx context.Context, a *Actor, name string) error {
	if err := authorize(ctx, s.store, a, NeedScopesWrite); err != nil {
		return err
	}
	return s.commit(ctx, a, NeedScopesWrite, func(tx store.Tx, now time.Time) (change, error) {
		before, err := ownScope(ctx, tx, a, name)
		if err != nil {
			return change{}, err
		}
		after := before
		after.Active = false
		after.LastUpdated = now
		if err := tx.UpdateScope(ctx, after); err != nil {
			return change{}, err
		}
		return change{action: "scope.deactivate", kind: "scope", target: name, orgs: []string{a.Org}, before: before, after: after}, nil
	})
}

// MaxQuery bounds the catalogue's search text.
const MaxQuery = 255

// Catalogue is a page of the scope catalogue: the active public scopes, and
// for an actor (nil: anyone) also the private ones its org owns or can get;
// query searches names and descriptions. The store filters and pages; the
// private scopes the actor may not see are left out here, reading further
// pages until this one has p.Size() scopes (each read is a page, so the
// walk costs what it passes).
func (s *Service) Catalogue(ctx context.Context, a *Actor, query string, p store.Page) ([]store.Scope, error) {
	if len(query) > MaxQuery {
		return nil, invalid([]FieldError{field("q", "must be at most %d characters", MaxQuery)})
	}
	snap, err := s.rules.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	f := store.ScopeFilter{ActiveOnly: true, Query: query}
	visible := func(sc store.Scope) bool {
		return sc.Visibility != store.VisibilityPrivate ||
			(a != nil && (sc.OwnerOrgno == a.Org || access.ClientMayList(snap, sc.Name, a.Org)))
	}
	out := []store.Scope{}
	read := p
	for len(out) < p.Size() {
		got, err := s.store.PageScopes(ctx, f, read)
		if err != nil {
			return nil, err
		}
		for _, sc := range got {
			if visible(sc) && len(out) < p.Size() {
				out = append(out, sc)
			}
		}
		if len(got) < read.Size() {
			break
		}
		read.After = got[len(got)-1].Key()
	}
	return out, nil
}

// --- access (the provider's allow-list) ---

// AccessInput is what an owner may say with a decision on a row of its
// allow-list, and a consumer with its request.
type AccessInput struct {
	// Reason is free text kept on the row: why it was asked for, granted
	// or denied.
	Reason string `json:"reason"`
}

// GrantAccess puts org on the allow-list of one of the actor's org's scopes
// (APPROVED): an answer to its request, or a grant unasked.
func (s *Service) GrantAccess(ctx context.Context, a *Actor, scope, org string, in AccessInput) (store.Access, error) {
	return s.setAccess(ctx, a, scope, org, store.AccessApproved, in)
}

// RevokeAccess takes org off the allow-list, or denies its request
// (DENIED); the row stays.
func (s *Service) RevokeAccess(ctx context.Context, a *Actor, scope, org string, in AccessInput) (store.Access, error) {
	return s.setAccess(ctx, a, scope, org, store.AccessDenied, in)
}

func (s *Service) setAccess(ctx context.Context, a *Actor, name, org, state string, in AccessInput) (store.Access, error) {
	if err := authorize(ctx, s.store, a, NeedScopesWrite); err != nil {
		return store.Access{}, err
	}
	errs := records.CheckOrg("org", org)
	errs = append(errs, records.CheckReason("reason", in.Reason)...)
	if len(errs) > 0 {
		return store.Access{}, invalid(errs)
	}
	if a.Supplier != "" && org == a.Supplier && state == store.AccessApproved {
		// As a delegation to itself (vendor.go): the provider's allow-list
		// is the provider's to extend to its vendor.
		return store.Access{}, forbidden("you act for organisation %s as its vendor %s: a vendor cannot grant itself access; organisation %s must do that", a.Org, a.Supplier, a.Org)
	}
	var out store.Access
	err := s.commit(ctx, a, NeedScopesWrite, func(tx store.Tx, now time.Time) (change, error) {
		if _, err := ownScope(ctx, tx, a, name); err != nil {
			return change{}, err
		}
		before, err := tx.GetAccess(ctx, name, org)
		var prev any
		switch {
		case errors.Is(err, store.ErrNotFound):
			if state == store.AccessDenied {
				return change{}, notFound("organisation %s has no access row for scope %q", org, name)
			}
			out = store.Access{Scope: name, ConsumerOrgno: org, OwnerOrgno: a.Org, Created: now}
		case err != nil:
			return change{}, err
		default:
			prev, out = before, before
		}
		out.State = state
		out.Reason = in.Reason
		out.LastUpdated = now
		if err := tx.PutAccess(ctx, out); err != nil {
			return change{}, err
		}
		ch := change{action: "access.grant", event: store.EventAccessApproved, kind: "access", target: name, orgs: []string{a.Org, org}, before: prev, after: out}
		if state == store.AccessDenied {
			ch.action, ch.event = "access.revoke", store.EventAccessDenied
		}
		return ch, nil
	})
	return out, err
}

// RequestAccess asks the owner of a public, active scope that is not
// accessible for all to put the actor's org on its allow-list: the org's row
// becomes REQUESTED, created or reopened (after a denial or a withdrawal),
// with the reason. A row that grants already, or asks already, is a
// conflict; a private, unknown or inactive scope is not found.
func (s *Service) RequestAccess(ctx context.Context, a *Actor, scope string, in AccessInput) (store.Access, error) {
	if err := authorize(ctx, s.store, a, NeedAccessRequest); err != nil {
		return store.Access{}, err
	}
	errs := records.CheckScopeRef("scope", scope)
	errs = append(errs, records.CheckReason("reason", in.Reason)...)
	if len(errs) > 0 {
		return store.Access{}, invalid(errs)
	}
	var out store.Access
	err := s.commit(ctx, a, NeedAccessRequest, func(tx store.Tx, now time.Time) (change, error) {
		sc, err := tx.GetScope(ctx, scope)
		switch {
		case errors.Is(err, store.ErrNotFound) || (err == nil && (!sc.Active || sc.Visibility == store.VisibilityPrivate)):
			// A private scope is not there for those who cannot see it.
			return change{}, notFound("there is no active public scope %q to ask for", scope)
		case err != nil:
			return change{}, err
		case sc.AccessibleForAll:
			return change{}, conflict("scope %s is accessible for all: every organisation may get it without asking", scope)
		case sc.OwnerOrgno == a.Org:
			return change{}, conflict("your organisation %s owns scope %s: grant access to it on its allow-list instead of asking", a.Org, scope)
		}
		before, err := tx.GetAccess(ctx, scope, a.Org)
		var prev any
		switch {
		case errors.Is(err, store.ErrNotFound):
			out = store.Access{Scope: scope, ConsumerOrgno: a.Org, OwnerOrgno: sc.OwnerOrgno, Created: now}
		case err != nil:
			return change{}, err
		case before.State == store.AccessApproved:
			return change{}, conflict("your organisation %s already has access to scope %s", a.Org, scope)
		case before.State == store.AccessRequested:
			return change{}, conflict("your organisation %s has asked for scope %s already; the owner has not answered yet", a.Org, scope)
		default:
			prev, out = before, before
		}
		out.State = store.AccessRequested
		out.Reason = in.Reason
		out.LastUpdated = now
		if err := tx.PutAccess(ctx, out); err != nil {
			return change{}, err
		}
		return change{action: "access.request", event: store.EventAccessRequested, kind: "access", target: scope,
			orgs: []string{a.Org, sc.OwnerOrgno}, before: prev, after: out}, nil
	})
	return out, err
}

// WithdrawRequest withdraws the actor's org's request for scope
// (WITHDRAWN). Only a REQUESTED row can be withdrawn: any other is a
// conflict and stays as it is.
func (s *Service) WithdrawRequest(ctx context.Context, a *Actor, scope string) (store.Access, error) {
	if err := authorize(ctx, s.store, a, NeedAccessRequest); err != nil {
		return store.Access{}, err
	}
	if errs := records.CheckScopeRef("scope", scope); len(errs) > 0 {
		return store.Access{}, invalid(errs)
	}
	var out store.Access
	err := s.commit(ctx, a, NeedAccessRequest, func(tx store.Tx, now time.Time) (change, error) {
		before, err := tx.GetAccess(ctx, scope, a.Org)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return change{}, notFound("your organisation %s has not asked for scope %q", a.Org, scope)
		case err != nil:
			return change{}, err
		case before.State != store.AccessRequested:
			return change{}, conflict("your organisation's row for scope %s is %s, not REQUESTED: there is no open request to withdraw", scope, before.State)
		}
		out = before
		out.State = store.AccessWithdrawn
		out.LastUpdated = now
		if err := tx.PutAccess(ctx, out); err != nil {
			return change{}, err
		}
		return change{action: "access.withdraw", event: store.EventAccessWithdrawn, kind: "access", target: scope,
			orgs: []string{a.Org, before.OwnerOrgno}, before: before, after: out}, nil
	})
	return out, err
}

// AccessStates are the states of an access row, as a filter names them.
var AccessStates = []string{store.AccessApproved, store.AccessDenied, store.AccessRequested, store.AccessWithdrawn}

// AccessQuery selects rows of an allow-list. With no States, APPROVED rows
// only, or every state when Inactive.
type AccessQuery struct {
	Inactive bool
	States   []string
}

func (q AccessQuery) filter(f store.AccessFilter) (store.AccessFilter, error) {
	if len(q.States) > len(AccessStates) {
		// Bounded by count before any is looked at.
		return f, invalid([]FieldError{field("state", "give each state at most once")})
	}
	var errs []FieldError
	for i, st := range q.States {
		switch {
		case !slices.Contains(AccessStates, st):
			errs = append(errs, field("state", "%q is not a state; use one of %s", records.Clip(st), strings.Join(AccessStates, ", ")))
		case slices.Index(q.States, st) < i:
			errs = append(errs, field("state", "%s is given twice", st))
		}
	}
	if len(errs) > 0 {
		return f, invalid(errs)
	}
	switch {
	case len(q.States) > 0:
		f.States = slices.Clone(q.States)
	case !q.Inactive:
		f.States = []string{store.AccessApproved}
	}
	return f, nil
}

// ListAccess is a page of the allow-list of one of the actor's org's scopes,
// or with scope "" of all of them (the inbox, with States REQUESTED).
func (s *Service) ListAccess(ctx context.Context, a *Actor, scope string, q AccessQuery, p store.Page) ([]store.Access, error) {
	if err := authorize(ctx, s.store, a, NeedScopesRead); err != nil {
		return nil, err
	}
	f, err := q.filter(store.AccessFilter{Scope: scope, OwnerOrgno: a.Org})
	if err != nil {
		return nil, err
	}
	if scope != "" {
		if _, err := ownScope(ctx, s.store, a, scope); err != nil {
			return nil, err
		}
	}
	return s.store.PageAccess(ctx, f, p)
}

// MyAccess is a page of the actor's org's own access rows: what it has,
// and (with States) what it asked for.
func (s *Service) MyAccess(ctx context.Context, a *Actor, q AccessQuery, p store.Page) ([]store.Access, error) {
	if err := authorize(ctx, s.store, a, NeedScopesRead); err != nil {
		return nil, err
	}
	f, err := q.filter(store.AccessFilter{ConsumerOrgno: a.Org})
	if err != nil {
		return nil, err
	}
	return s.store.PageAccess(ctx, f, p)
}
