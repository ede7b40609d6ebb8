package sqlstore

import (
	"context"
	"strings"

	"gorm.io/gorm"

	"github.com/portvakt/portvakt/internal/store"
)

// The Page methods filter in SQL and page by key (a row-value comparison
// on the primary key, which both engines answer from the key's index), so
// a page costs what it returns. Each filter has an index to start from:
// prefixes, scopes and clients by their key or owner, access rows and
// delegations by scope, consumer, owner or supplier (00001_init.sql).

// keyset orders q by cols and keeps the rows after p.After.
func keyset(q *gorm.DB, p store.Page, cols ...string) *gorm.DB {
	list := strings.Join(cols, ", ")
	if p.After != nil {
		if len(p.After) != len(cols) {
			// A cursor of another list: nothing sorts after it.
			return q.Where("1 = 0")
		}
		args := make([]any, len(p.After))
		for i, v := range p.After {
			args[i] = v
		}
		q = q.Where("("+list+") > ("+strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ")+")", args...)
	}
	return q.Order(list).Limit(p.Size())
}

// find runs q and turns each row into its record.
func find[R, V any](q *gorm.DB, what string, record func(R) (V, error)) ([]V, error) {
	var rows []R
	if err := q.Find(&rows).Error; err != nil {
		return nil, wrap(err, "%s", what)
	}
	out := make([]V, len(rows))
	for i, row := range rows {
		var err error
		if out[i], err = record(row); err != nil {
			return nil, wrap(err, "%s", what)
		}
	}
	return out, nil
}

// infallible adapts a row conversion that cannot fail to find.
func infallible[R, V any](record func(R) V) func(R) (V, error) {
	return func(r R) (V, error) { return record(r), nil }
}

func (r reader) PagePrefixes(ctx context.Context, p store.Page) ([]store.Prefix, error) {
	return find(keyset(r.db.WithContext(ctx), p, "prefix"), "page prefixes", infallible(prefixRow.record))
}

// likePattern is a LIKE pattern matching s anywhere, s's own % _ and \
// escaped (with ESCAPE '\').
func likePattern(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.ToLower(s)) + "%"
}

func (r reader) PageScopes(ctx context.Context, f store.ScopeFilter, p store.Page) ([]store.Scope, error) {
	q := r.db.WithContext(ctx)
	if f.OwnerOrgno != "" {
		q = q.Where("owner_orgno = ?", f.OwnerOrgno)
	}
	if f.Prefix != "" {
		q = q.Where("prefix = ?", f.Prefix)
	}
	if f.ActiveOnly {
		q = q.Where("active = ?", true)
	}
	if f.Query != "" {
		pat := likePattern(f.Query)
		q = q.Where(`(LOWER(name) LIKE ? ESCAPE '\' OR LOWER(description) LIKE ? ESCAPE '\')`, pat, pat)
	}
	return find(keyset(q, p, "name"), "page scopes", scopeRow.record)
}

// accessWhere narrows q to the access rows f matches.
func accessWhere(q *gorm.DB, f store.AccessFilter) *gorm.DB {
	if f.Scope != "" {
		q = q.Where("scope = ?", f.Scope)
	}
	if f.ConsumerOrgno != "" {
		q = q.Where("consumer_orgno = ?", f.ConsumerOrgno)
	}
	if f.OwnerOrgno != "" {
		q = q.Where("owner_orgno = ?", f.OwnerOrgno)
	}
	if len(f.States) > 0 {
		q = q.Where("state IN ?", f.States)
	}
	return q
}

func (r reader) PageAccess(ctx context.Context, f store.AccessFilter, p store.Page) ([]store.Access, error) {
	q := accessWhere(r.db.WithContext(ctx), f)
	return find(keyset(q, p, "scope", "consumer_orgno"), "page access", infallible(accessRow.record))
}

// delegationWhere narrows q to the delegations f matches.
func delegationWhere(q *gorm.DB, f store.DelegationFilter) *gorm.DB {
	if f.Scope != "" {
		q = q.Where("scope = ?", f.Scope)
	}
	if f.ConsumerOrgno != "" {
		q = q.Where("consumer_orgno = ?", f.ConsumerOrgno)
	}
	if f.SupplierOrgno != "" {
		q = q.Where("supplier_orgno = ?", f.SupplierOrgno)
	}
	if f.Org != "" {
		q = q.Where("(consumer_orgno = ? OR supplier_orgno = ?)", f.Org, f.Org)
	}
	if len(f.States) > 0 {
		q = q.Where("state IN ?", f.States)
	}
	return q
}

func (r reader) PageDelegations(ctx context.Context, f store.DelegationFilter, p store.Page) ([]store.Delegation, error) {
	q := delegationWhere(r.db.WithContext(ctx), f)
	return find(keyset(q, p, "scope", "consumer_orgno", "supplier_orgno"), "page delegations", infallible(delegationRow.record))
}

func (r reader) PageClients(ctx context.Context, f store.ClientFilter, p store.Page) ([]store.Client, error) {
	q := r.db.WithContext(ctx)
	if f.ClientOrgno != "" {
		q = q.Where("client_orgno = ?", f.ClientOrgno)
	}
	if f.ActiveOnly {
		q = q.Where("active = ?", true)
	}
	return find(keyset(q, p, "client_id"), "page clients", clientRow.record)
}
