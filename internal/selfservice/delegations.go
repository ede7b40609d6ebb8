package selfservice

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/portvakt/portvakt/internal/norid"
	"github.com/portvakt/portvakt/internal/store"
)

// putDelegation is PUT /delegations/{supplier_org}?scope=: the caller's org
// (the consumer) lets the supplier (a vendor) get the scope on its behalf.
// The scope must be delegable here and one the consumer can get itself.
func (h *handler) putDelegation(w http.ResponseWriter, r *http.Request, c *caller) error {
	supplier := r.PathValue("supplier_org")
	name, err := scopeParam(r)
	errs := fieldErrors(err)
	switch {
	case !norid.ValidOrg(supplier):
		errs = append(errs, FieldError{"supplier_org", fmt.Sprintf("%q is not a valid organisation number (9 digits, mod-11)", supplier)})
	case supplier == c.Org:
		errs = append(errs, FieldError{"supplier_org", "is your own organisation; delegate to another one"})
	}
	if err != nil {
		// No scope to check.
		return invalid(errs)
	}
	switch {
	case c.Supplier != "" && supplier == c.Supplier:
		// A vendor acting for the consumer would grant itself what only the
		// consumer may give (vendor.go).
		return forbidden("you act for organisation %s as its vendor %s: a vendor cannot delegate anything to itself; organisation %s must delegate %s to you", c.Org, c.Supplier, c.Org, name)
	case c.Supplier != "" && isAdminScope(name):
		// It would hand its power on to an org of its choosing.
		return forbidden("you act for organisation %s as its vendor %s: a vendor cannot delegate the %s admin scope %s; organisation %s must do that itself", c.Org, c.Supplier, adminPrefix, name, c.Org)
	}
	var out store.Delegation
	err = h.commit(r.Context(), c, func(tx store.Tx, now time.Time) (change, error) {
		// The scope rule reads the transaction, so a concurrent revoke of the
		// consumer's access cannot slip through.
		recs := newTxRecords(r.Context(), tx)
		why := delegationRefusal(recs, h.cfg.Issuer, c.Org, name)
		if recs.err != nil {
			return change{}, recs.err
		}
		errs := slices.Clone(errs)
		if why != "" {
			errs = append(errs, FieldError{"scope", why})
		}
		if len(errs) > 0 {
			return change{}, invalid(errs)
		}
		before, err := tx.GetDelegation(r.Context(), name, c.Org, supplier)
		var prev any
		switch {
		case errors.Is(err, store.ErrNotFound):
			out = store.Delegation{Scope: name, ConsumerOrgno: c.Org, SupplierOrgno: supplier, Created: now}
		case err != nil:
			return change{}, err
		default:
			prev, out = before, before
		}
		out.State = store.DelegationActive
		out.LastUpdated = now
		if err := tx.PutDelegation(r.Context(), out); err != nil {
			return change{}, err
		}
		return change{action: "delegation.create", kind: "delegation", target: name, orgs: []string{c.Org, supplier}, before: prev, after: out}, nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *handler) revokeDelegation(w http.ResponseWriter, r *http.Request, c *caller) error {
	supplier := r.PathValue("supplier_org")
	name, err := scopeParam(r)
	errs := fieldErrors(err)
	if !norid.ValidOrg(supplier) {
		errs = append(errs, FieldError{"supplier_org", fmt.Sprintf("%q is not a valid organisation number (9 digits, mod-11)", supplier)})
	}
	if len(errs) > 0 {
		return invalid(errs)
	}
	err = h.commit(r.Context(), c, func(tx store.Tx, now time.Time) (change, error) {
		before, err := tx.GetDelegation(r.Context(), name, c.Org, supplier)
		if errors.Is(err, store.ErrNotFound) {
			return change{}, notFound("your organisation has not delegated scope %q to %s", name, supplier)
		}
		if err != nil {
			return change{}, err
		}
		after := before
		after.State = store.DelegationRevoked
		after.LastUpdated = now
		if err := tx.PutDelegation(r.Context(), after); err != nil {
			return change{}, err
		}
		ch := change{action: "delegation.revoke", kind: "delegation", target: name, orgs: []string{c.Org, supplier}, before: before, after: after}
		if name == clientsWriteScope {
			// Take back what the vendor put in place, in this transaction
			// (vendor.go); the commit invalidates the rules cache, so the
			// token endpoint refuses the vendor's keys at once.
			if ch.also, err = revokeVendorClients(r.Context(), tx, c.Org, supplier, now); err != nil {
				return change{}, err
			}
		}
		return ch, nil
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// listDelegations is GET /delegations: those the caller's org gave (as the
// consumer) and those it received (as the supplier).
func (h *handler) listDelegations(w http.ResponseWriter, r *http.Request, c *caller) error {
	inactive, err := inactiveParam(r)
	if err != nil {
		return err
	}
	p, err := pageParam(r)
	if err != nil {
		return err
	}
	f := store.DelegationFilter{Org: c.Org}
	if !inactive {
		f.States = []string{store.DelegationActive}
	}
	got, err := h.store.PageDelegations(r.Context(), f, more(p))
	if err != nil {
		return err
	}
	writePage(w, r, h.cfg.Issuer, p, got)
	return nil
}
