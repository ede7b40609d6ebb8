package sqlstore

import (
	"context"
	"strings"

	"gorm.io/gorm/clause"

	"github.com/portvakt/portvakt/internal/store"
)

// Members (00010_members.sql). A page of an org's members and a person's
// memberships each start from an index: the primary key (org, subject) and
// members_subject (subject, org).

type memberRow struct {
	Org         string `gorm:"primaryKey"`
	Subject     string `gorm:"primaryKey"`
	Roles       string
	Created     dbTime
	LastUpdated dbTime
}

func (memberRow) TableName() string { return "members" }

func memberToRow(m store.Member) (memberRow, error) {
	roles, err := jsonText(m.Roles)
	if err != nil {
		return memberRow{}, err
	}
	return memberRow{Org: m.Org, Subject: m.Subject, Roles: roles,
		Created: ts(m.Created), LastUpdated: ts(m.LastUpdated)}, nil
}

func (r memberRow) record() (store.Member, error) {
	m := store.Member{Org: r.Org, Subject: r.Subject, Created: r.Created.Time, LastUpdated: r.LastUpdated.Time}
	if err := fromJSONText(r.Roles, &m.Roles); err != nil {
		return store.Member{}, err
	}
	return m, nil
}

func (r reader) GetMember(ctx context.Context, org, subject string) (store.Member, error) {
	var row memberRow
	if err := r.db.WithContext(ctx).Where("org = ? AND subject = ?", org, subject).Take(&row).Error; err != nil {
		return store.Member{}, wrap(err, "get member %q of %s", subject, org)
	}
	m, err := row.record()
	return m, wrap(err, "get member %q of %s", subject, org)
}

// likeEscaper escapes LIKE's own characters (with ESCAPE '\').
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

func (r reader) PageMembers(ctx context.Context, f store.MemberFilter, p store.Page) ([]store.Member, error) {
	q := r.db.WithContext(ctx).Where("org = ?", f.Org)
	if f.Role != "" {
		// roles is a JSON list of scope names, which JSON writes as they
		// are: the quoted name appears in it exactly when it is listed.
		q = q.Where(`roles LIKE ? ESCAPE '\'`, `%"`+likeEscaper.Replace(f.Role)+`"%`)
	}
	return find(keyset(q, p, "subject"), "page members", memberRow.record)
}

func (r reader) MembershipsOf(ctx context.Context, subject string) ([]store.Member, error) {
	q := r.db.WithContext(ctx).Where("subject = ?", subject).Order("org").Limit(store.MaxMemberships)
	return find(q, "memberships", memberRow.record)
}

func (t *tx) PutMember(ctx context.Context, m store.Member) error {
	row, err := memberToRow(m)
	if err != nil {
		return wrap(err, "put member %q of %s", m.Subject, m.Org)
	}
	err = t.db.WithContext(ctx).Clauses(clause.OnConflict{UpdateAll: true}).Create(&row).Error
	return wrap(err, "put member %q of %s", m.Subject, m.Org)
}

func (t *tx) DeleteMember(ctx context.Context, org, subject string) error {
	res := t.db.WithContext(ctx).Where("org = ? AND subject = ?", org, subject).Delete(&memberRow{})
	if res.Error == nil && res.RowsAffected == 0 {
		return wrap(errNoRow, "delete member %q of %s", subject, org)
	}
	return wrap(res.Error, "delete member %q of %s", subject, org)
}
