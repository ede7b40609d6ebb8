package manage

import (
	"context"
	"errors"
	"time"

	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/store"
)

// GiveDelegation lets supplier (a vendor) get scope for the actor's org (the
// consumer). The scope must be delegable here and one the consumer can get
// itself.
func (s *Service) GiveDelegation(ctx context.Context, a *Actor, scope, supplier string) (store.Delegation, error) {
	if err := authorize(ctx, s.store, a, NeedDelegationsWrite); err != nil {
		return store.Delegation{}, err
	}
	errs := records.CheckOrg("supplier_org", supplier)
	if len(errs) == 0 && supplier == a.Org {
		errs = append(errs, field("supplier_org", "is your own organisation; delegate to another one"))
	}
	switch {
	case a.Supplier != "" && supplier == a.Supplier:
		// A vendor acting for the consumer would grant itself what only the
		// consumer may give (vendor.go).
		return store.Delegation{}, forbidden("you act for organisation %s as its vendor %s: a vendor cannot delegate anything to itself; organisation %s must delegate %s to you", a.Org, a.Supplier, a.Org, scope)
	case a.Supplier != "" && records.IsAdminScope(scope):
		// It would hand its power on to an org of its choosing.
		return store.Delegation{}, forbidden("you act for organisation %s as its vendor %s: a vendor cannot delegate the %s admin scope %s; organisation %s must do that itself", a.Org, a.Supplier, records.BuiltinPrefix, scope, a.Org)
	}
	var out store.Delegation
	err := s.commit(ctx, a, NeedDelegationsWrite, func(tx store.Tx, now time.Time) (change, error) {
		// The scope rule reads the transaction, so a concurrent revoke of the
		// consumer's access cannot slip through.
		recs, err := loadRecords(ctx, tx, a.Org, []string{scope})
		if err != nil {
			return change{}, err
		}
		errs := errs
		if why := delegationRefusal(recs, s.cfg.Issuer, a.Org, scope); why != "" {
			errs = append(errs[:len(errs):len(errs)], field("scope", "%s", why))
		}
		if len(errs) > 0 {
			return change{}, invalid(errs)
		}
		before, err := tx.GetDelegation(ctx, scope, a.Org, supplier)
		var prev any
		switch {
		case errors.Is(err, store.ErrNotFound):
			out = store.Delegation{Scope: scope, ConsumerOrgno: a.Org, SupplierOrgno: supplier, Created: now}
		case err != nil:
			return change{}, err
		default:
			prev, out = before, before
		}
		out.State = store.DelegationActive
		out.LastUpdated = now
		if err := tx.PutDelegation(ctx, out); err != nil {
			return change{}, err
		}
		return change{action: "delegation.create", event: store.EventDelegationGiven, kind: "delegation", target: scope, orgs: []string{a.Org, supplier}, before: prev, after: out}, nil
	})
	return out, err
}

// RevokeDelegation revokes a delegation the actor's org gave; the row stays.
// Revoking portvakt:clients.write also takes back what the vendor put in
// place (vendor.go).
func (s *Service) RevokeDelegation(ctx context.Context, a *Actor, scope, supplier string) error {
	if err := authorize(ctx, s.store, a, NeedDelegationsWrite); err != nil {
		return err
	}
	if errs := records.CheckOrg("supplier_org", supplier); len(errs) > 0 {
		return invalid(errs)
	}
	return s.commit(ctx, a, NeedDelegationsWrite, func(tx store.Tx, now time.Time) (change, error) {
		before, err := tx.GetDelegation(ctx, scope, a.Org, supplier)
		if errors.Is(err, store.ErrNotFound) {
			return change{}, notFound("your organisation has not delegated scope %q to %s", scope, supplier)
		}
		if err != nil {
			return change{}, err
		}
		after := before
		after.State = store.DelegationRevoked
		after.LastUpdated = now
		if err := tx.PutDelegation(ctx, after); err != nil {
			return change{}, err
		}
		ch := change{action: "delegation.revoke", event: store.EventDelegationRevoked, kind: "delegation", target: scope, orgs: []string{a.Org, supplier}, before: before, after: after}
		if scope == records.ClientsWrite {
			// Take back what the vendor put in place, in this transaction;
			// the commit invalidates the rules cache, so the token endpoint
			// refuses the vendor's keys at once.
			if ch.also, err = revokeVendorClients(ctx, tx, a.Org, supplier, now); err != nil {
				return change{}, err
			}
		}
		return ch, nil
	})
}

// GetDelegation reads a delegation the actor's org gave to supplier, in
// whatever state it is.
func (s *Service) GetDelegation(ctx context.Context, a *Actor, scope, supplier string) (store.Delegation, error) {
	if err := authorize(ctx, s.store, a, NeedDelegationsRead); err != nil {
		return store.Delegation{}, err
	}
	errs := records.CheckScopeRef("scope", scope)
	errs = append(errs, records.CheckOrg("supplier_org", supplier)...)
	if len(errs) > 0 {
		return store.Delegation{}, invalid(errs)
	}
	row, err := s.store.GetDelegation(ctx, scope, a.Org, supplier)
	if errors.Is(err, store.ErrNotFound) {
		return store.Delegation{}, notFound("your organisation has not delegated scope %q to %s", scope, supplier)
	}
	return row, err
}

// ListDelegations is a page of the delegations the actor's org gave (as the
// consumer) and received (as the supplier): ACTIVE ones, or every state when
// inactive.
func (s *Service) ListDelegations(ctx context.Context, a *Actor, inactive bool, p store.Page) ([]store.Delegation, error) {
	if err := authorize(ctx, s.store, a, NeedDelegationsRead); err != nil {
		return nil, err
	}
	f := store.DelegationFilter{Org: a.Org}
	if !inactive {
		f.States = []string{store.DelegationActive}
	}
	return s.store.PageDelegations(ctx, f, p)
}
