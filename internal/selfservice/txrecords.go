package selfservice

import (
	"context"
	"errors"
	"fmt"

	"github.com/portvakt/portvakt/internal/access"
	"github.com/portvakt/portvakt/internal/store"
)

// txRecords reads the access rules straight from a store.Reader (in practice
// the write transaction), so a check sees exactly what the write will commit
// against, not the rules cache: a revoke committed a moment ago, or on
// another replica, cannot slip through. access.Records cannot fail, so the
// first read error is kept in err, every lookup after it answers false, and
// the caller must check err.
type txRecords struct {
	ctx    context.Context
	rd     store.Reader
	err    error
	scopes map[string]scopeLookup // ClientMayList asks for a scope several times
}

type scopeLookup struct {
	s  store.Scope
	ok bool
}

var _ access.SupplierRecords = (*txRecords)(nil)

func newTxRecords(ctx context.Context, rd store.Reader) *txRecords {
	return &txRecords{ctx: ctx, rd: rd, scopes: map[string]scopeLookup{}}
}

// found reports whether a lookup found a record, keeping an error other than
// ErrNotFound.
func (r *txRecords) found(err error) bool {
	switch {
	case err == nil:
		return true
	case !errors.Is(err, store.ErrNotFound) && r.err == nil:
		r.err = err
	}
	return false
}

func (r *txRecords) Scope(name string) (store.Scope, bool) {
	if r.err != nil {
		return store.Scope{}, false
	}
	if l, ok := r.scopes[name]; ok {
		return l.s, l.ok
	}
	s, err := r.rd.GetScope(r.ctx, name)
	ok := r.found(err)
	if r.err == nil {
		r.scopes[name] = scopeLookup{s, ok}
	}
	return s, ok
}

func (r *txRecords) HasAccess(scope, consumerOrg string) bool {
	if r.err != nil {
		return false
	}
	a, err := r.rd.GetAccess(r.ctx, scope, consumerOrg)
	return r.found(err) && a.State == store.AccessApproved
}

func (r *txRecords) HasDelegation(scope, consumerOrg, supplierOrg string) bool {
	if r.err != nil {
		return false
	}
	d, err := r.rd.GetDelegation(r.ctx, scope, consumerOrg, supplierOrg)
	return r.found(err) && d.State == store.DelegationActive
}

func (r *txRecords) Delegators(scope, supplierOrg string) []string {
	if r.err != nil {
		return nil
	}
	ds, err := r.rd.ListDelegations(r.ctx, store.DelegationFilter{Scope: scope, SupplierOrgno: supplierOrg})
	if !r.found(err) {
		return nil
	}
	var out []string
	for _, d := range ds {
		if d.State == store.DelegationActive {
			out = append(out, d.ConsumerOrgno)
		}
	}
	return out
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
