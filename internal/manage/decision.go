package manage

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/portvakt/portvakt/internal/access"
	"github.com/portvakt/portvakt/internal/store"
)

// recordSet holds the records a self-service rule asks package access
// about, read up front from the write transaction, so the pure decision
// runs over exactly what the write commits against (not the rules cache: a
// revoke committed a moment ago, or on another replica, cannot slip
// through), and a read error is an error before any decision is made.
//
// It answers for the scopes it was loaded with and the org it was loaded
// for (and the consumers that delegate those scopes to that org); anything
// else it was not asked to load is "no": a rule that asks more than it
// loaded is refused, not granted.
type recordSet struct {
	scopes      map[string]store.Scope
	access      map[[2]string]bool     // (scope, org) with APPROVED access
	delegations map[[3]string]bool     // (scope, consumer, supplier) ACTIVE
	delegators  map[[2]string][]string // (scope, supplier) -> consumers
}

var _ access.SupplierRecords = (*recordSet)(nil)

// loadRecords reads, for each scope name, the scope, org's access row, the
// ACTIVE delegations of it to org and the access rows of their consumers:
// everything access.ClientMayList, access.CanGet and delegationRefusal ask
// for that org. The names are bounded by the caller (a client lists at most
// records.MaxClientScopes).
func loadRecords(ctx context.Context, rd store.Reader, org string, names []string) (*recordSet, error) {
	rs := &recordSet{
		scopes:      map[string]store.Scope{},
		access:      map[[2]string]bool{},
		delegations: map[[3]string]bool{},
		delegators:  map[[2]string][]string{},
	}
	hasAccess := func(scope, consumer string) error {
		a, err := rd.GetAccess(ctx, scope, consumer)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return err
		default:
			rs.access[[2]string{scope, consumer}] = a.State == store.AccessApproved
		}
		return nil
	}
	for _, name := range names {
		if _, done := rs.scopes[name]; done {
			continue
		}
		s, err := rd.GetScope(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		rs.scopes[name] = s
		if err := hasAccess(name, org); err != nil {
			return nil, err
		}
		if !s.Delegable() {
			continue
		}
		ds, err := rd.ListDelegations(ctx, store.DelegationFilter{Scope: name, SupplierOrgno: org, States: []string{store.DelegationActive}})
		if err != nil {
			return nil, err
		}
		for _, d := range ds {
			rs.delegations[[3]string{name, d.ConsumerOrgno, org}] = true
			rs.delegators[[2]string{name, org}] = append(rs.delegators[[2]string{name, org}], d.ConsumerOrgno)
			if err := hasAccess(name, d.ConsumerOrgno); err != nil {
				return nil, err
			}
		}
	}
	return rs, nil
}

func (r *recordSet) Scope(name string) (store.Scope, bool) {
	s, ok := r.scopes[name]
	return s, ok
}

func (r *recordSet) HasAccess(scope, consumerOrg string) bool {
	return r.access[[2]string{scope, consumerOrg}]
}

func (r *recordSet) HasDelegation(scope, consumerOrg, supplierOrg string) bool {
	return r.delegations[[3]string{scope, consumerOrg, supplierOrg}]
}

func (r *recordSet) Delegators(scope, supplierOrg string) []string {
	return slices.Clone(r.delegators[[2]string{scope, supplierOrg}])
}

// delegationRefusal says why org may not delegate scope name to a vendor, or
// "" when it may: org must be able to get the scope itself, and the scope
// must name this server (issuer) as its delegation source.
func delegationRefusal(recs access.Records, issuer, org, name string) string {
	s, ok := recs.Scope(name)
	switch {
	case !access.CanGet(recs, name, org):
		return fmt.Sprintf("organisation %s cannot get scope %s (it does not exist, is not active, or you have no access to it), so it cannot delegate it", org, name)
	case !ok || s.DelegationSource != issuer:
		return fmt.Sprintf("scope %s does not allow delegation", name)
	}
	return ""
}
