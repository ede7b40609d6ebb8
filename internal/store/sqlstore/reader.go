package sqlstore

import (
	"context"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/portvakt/portvakt/internal/store"
)

// reader implements store.Reader over a pool or a transaction. Lists are
// ordered by their key so that results are stable.
type reader struct{ db *gorm.DB }

func (r reader) GetPrefix(ctx context.Context, prefix string) (store.Prefix, error) {
	var row prefixRow
	if err := r.db.WithContext(ctx).Where("prefix = ?", prefix).Take(&row).Error; err != nil {
		return store.Prefix{}, wrap(err, "get prefix %q", prefix)
	}
	return row.record(), nil
}

func (r reader) ListPrefixes(ctx context.Context) ([]store.Prefix, error) {
	return find(r.db.WithContext(ctx).Order("prefix"), "list prefixes", infallible(prefixRow.record))
}

func (r reader) GetScope(ctx context.Context, name string) (store.Scope, error) {
	var row scopeRow
	if err := r.db.WithContext(ctx).Where("name = ?", name).Take(&row).Error; err != nil {
		return store.Scope{}, wrap(err, "get scope %q", name)
	}
	s, err := row.record()
	return s, wrap(err, "get scope %q", name)
}

func (r reader) ListScopes(ctx context.Context) ([]store.Scope, error) {
	return find(r.db.WithContext(ctx).Order("name"), "list scopes", scopeRow.record)
}

func (r reader) GetAccess(ctx context.Context, scope, consumerOrgno string) (store.Access, error) {
	var row accessRow
	err := r.db.WithContext(ctx).Where("scope = ? AND consumer_orgno = ?", scope, consumerOrgno).Take(&row).Error
	if err != nil {
		return store.Access{}, wrap(err, "get access %q for %s", scope, consumerOrgno)
	}
	return row.record(), nil
}

func (r reader) ListAccess(ctx context.Context, f store.AccessFilter) ([]store.Access, error) {
	return find(accessWhere(r.db.WithContext(ctx), f).Order("scope, consumer_orgno"), "list access", infallible(accessRow.record))
}

func (r reader) GetDelegation(ctx context.Context, scope, consumerOrgno, supplierOrgno string) (store.Delegation, error) {
	var row delegationRow
	err := r.db.WithContext(ctx).
		Where("scope = ? AND consumer_orgno = ? AND supplier_orgno = ?", scope, consumerOrgno, supplierOrgno).
		Take(&row).Error
	if err != nil {
		return store.Delegation{}, wrap(err, "get delegation %q from %s to %s", scope, consumerOrgno, supplierOrgno)
	}
	return row.record(), nil
}

func (r reader) ListDelegations(ctx context.Context, f store.DelegationFilter) ([]store.Delegation, error) {
	return find(delegationWhere(r.db.WithContext(ctx), f).Order("scope, consumer_orgno, supplier_orgno"), "list delegations", infallible(delegationRow.record))
}

func (r reader) GetClient(ctx context.Context, clientID string) (store.Client, error) {
	var row clientRow
	if err := r.db.WithContext(ctx).Where("client_id = ?", clientID).Take(&row).Error; err != nil {
		return store.Client{}, wrap(err, "get client %q", clientID)
	}
	c, err := row.record()
	return c, wrap(err, "get client %q", clientID)
}

func (r reader) ListClients(ctx context.Context) ([]store.Client, error) {
	return find(r.db.WithContext(ctx).Order("client_id"), "list clients", clientRow.record)
}

// tx implements store.Tx inside Update's transaction. Every successful
// write of a record adds its key to changes, for the change log.
type tx struct {
	reader
	now     func() time.Time
	changes changeSet
}

// errNoRow marks an UPDATE that matched nothing; classify makes it ErrNotFound.
var errNoRow = gorm.ErrRecordNotFound

func (t *tx) PutPrefix(ctx context.Context, p store.Prefix) error {
	row := prefixToRow(p)
	err := t.db.WithContext(ctx).Clauses(clause.OnConflict{UpdateAll: true}).Create(&row).Error
	if err == nil {
		t.changes.add(store.ChangePrefix, p.Prefix, "", "")
	}
	return wrap(err, "put prefix %q", p.Prefix)
}

// insertNew inserts row unless its key exists. ON CONFLICT DO NOTHING keeps
// a PostgreSQL transaction usable after a conflict (a failed statement would
// abort it), so a caller may carry on after ErrConflict.
func (t *tx) insertNew(ctx context.Context, row any) error {
	res := t.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(row)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return store.ErrConflict
	}
	return nil
}

// replace updates every column of an existing row (zero values included).
func (t *tx) replace(ctx context.Context, row any) error {
	res := t.db.WithContext(ctx).Select("*").Updates(row)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return errNoRow
	}
	return nil
}

func (t *tx) CreateScope(ctx context.Context, s store.Scope) error {
	row, err := scopeToRow(s)
	if err != nil {
		return wrap(err, "create scope %q", s.Name)
	}
	if err := t.insertNew(ctx, &row); err != nil {
		return wrap(err, "create scope %q", s.Name)
	}
	t.changes.add(store.ChangeScope, s.Name, "", "")
	return nil
}

func (t *tx) UpdateScope(ctx context.Context, s store.Scope) error {
	row, err := scopeToRow(s)
	if err != nil {
		return wrap(err, "update scope %q", s.Name)
	}
	if err := t.replace(ctx, &row); err != nil {
		return wrap(err, "update scope %q", s.Name)
	}
	t.changes.add(store.ChangeScope, s.Name, "", "")
	return nil
}

func (t *tx) PutAccess(ctx context.Context, a store.Access) error {
	row := accessToRow(a)
	err := t.db.WithContext(ctx).Clauses(clause.OnConflict{UpdateAll: true}).Create(&row).Error
	if err == nil {
		t.changes.add(store.ChangeAccess, a.Scope, a.ConsumerOrgno, "")
	}
	return wrap(err, "put access %q for %s", a.Scope, a.ConsumerOrgno)
}

func (t *tx) PutDelegation(ctx context.Context, d store.Delegation) error {
	row := delegationToRow(d)
	err := t.db.WithContext(ctx).Clauses(clause.OnConflict{UpdateAll: true}).Create(&row).Error
	if err == nil {
		t.changes.add(store.ChangeDelegation, d.Scope, d.ConsumerOrgno, d.SupplierOrgno)
	}
	return wrap(err, "put delegation %q from %s to %s", d.Scope, d.ConsumerOrgno, d.SupplierOrgno)
}

func (t *tx) CreateClient(ctx context.Context, c store.Client) error {
	row, err := clientToRow(c)
	if err != nil {
		return wrap(err, "create client %q", c.ClientID)
	}
	if err := t.insertNew(ctx, &row); err != nil {
		return wrap(err, "create client %q", c.ClientID)
	}
	t.changes.add(store.ChangeClient, c.ClientID, "", "")
	return nil
}

func (t *tx) UpdateClient(ctx context.Context, c store.Client) error {
	row, err := clientToRow(c)
	if err != nil {
		return wrap(err, "update client %q", c.ClientID)
	}
	if err := t.replace(ctx, &row); err != nil {
		return wrap(err, "update client %q", c.ClientID)
	}
	t.changes.add(store.ChangeClient, c.ClientID, "", "")
	return nil
}

type auditOrgRow struct {
	Org     string `gorm:"primaryKey"`
	EventID int64  `gorm:"primaryKey;autoIncrement:false"`
}

func (auditOrgRow) TableName() string { return "audit_event_orgs" }

// AppendAudit gives the event the next id. MAX(id)+1 is safe because Update
// serialises writers (the generation row lock, or SQLite's one writer), and
// unlike a sequence it makes ids follow commit order, so paging by BeforeID
// never skips an event that committed late.
func (t *tx) AppendAudit(ctx context.Context, e store.AuditEvent) error {
	db := t.db.WithContext(ctx)
	var id int64
	if err := db.Raw("SELECT COALESCE(MAX(id), 0) + 1 FROM audit_events").Row().Scan(&id); err != nil {
		return wrap(err, "append audit %s", e.Action)
	}
	if e.Time.IsZero() {
		e.Time = t.now()
	}
	orgs, err := jsonText(e.Orgs)
	if err != nil {
		return wrap(err, "append audit %s", e.Action)
	}
	row := auditRow{
		ID: id, EventTime: ts(e.Time), ActorOrg: e.ActorOrg, ActorClientID: e.ActorClientID,
		ActorTokenJTI: e.ActorTokenJTI, ActorPerson: e.ActorPerson, Action: e.Action, TargetKind: e.TargetKind, Target: e.Target,
		Orgs: orgs, BeforeState: rawText(e.Before), AfterState: rawText(e.After),
	}
	if err := db.Create(&row).Error; err != nil {
		return wrap(err, "append audit %s", e.Action)
	}
	seen := make(map[string]bool, len(e.Orgs))
	var orgRows []auditOrgRow
	for _, org := range e.Orgs {
		if org == "" || seen[org] {
			continue
		}
		seen[org] = true
		orgRows = append(orgRows, auditOrgRow{Org: org, EventID: id})
	}
	if len(orgRows) > 0 {
		if err := db.Create(&orgRows).Error; err != nil {
			return wrap(err, "append audit %s", e.Action)
		}
	}
	return nil
}
