package sqlstore

import (
	"context"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/portvakt/portvakt/internal/store"
)

// defaultChangeLogGenerations is how many generations of the change log
// Update keeps. A replica that falls further behind (down for a while)
// reloads everything, which it does at start anyway.
const defaultChangeLogGenerations = 10000

// defaultChangesLimit caps ListChanges when the caller gives no limit.
const defaultChangesLimit = 1000

// changeInsertBatch keeps each INSERT of change rows under both engines'
// limits on bound parameters (5 per row).
const changeInsertBatch = 500

type changeRow struct {
	Generation    int64  `gorm:"primaryKey;autoIncrement:false"`
	Kind          string `gorm:"primaryKey"`
	Name          string `gorm:"primaryKey"`
	ConsumerOrgno string `gorm:"primaryKey"`
	SupplierOrgno string `gorm:"primaryKey"`
}

func (changeRow) TableName() string { return "rule_changes" }

type changeKey struct{ kind, name, consumer, supplier string }

// changeSet collects, in Update's transaction, the keys of the records that
// fn wrote; each key once.
type changeSet struct {
	keys  []changeKey
	index map[changeKey]struct{}
}

func (c *changeSet) add(kind, name, consumer, supplier string) {
	k := changeKey{kind, name, consumer, supplier}
	if _, dup := c.index[k]; dup {
		return
	}
	if c.index == nil {
		c.index = make(map[changeKey]struct{})
	}
	c.index[k] = struct{}{}
	c.keys = append(c.keys, k)
}

// logChanges writes the change rows of generation gen (one ChangeNone row
// when fn wrote no record: every generation an Update made has rows, so a
// generation without any was made by hand-written SQL) and trims the rows of
// generations that fell out of the kept window.
func (s *Store) logChanges(gtx *gorm.DB, gen int64, c *changeSet) error {
	keys := c.keys
	if len(keys) == 0 {
		keys = []changeKey{{kind: store.ChangeNone}}
	}
	rows := make([]changeRow, len(keys))
	for i, k := range keys {
		rows[i] = changeRow{Generation: gen, Kind: k.kind, Name: k.name, ConsumerOrgno: k.consumer, SupplierOrgno: k.supplier}
	}
	if err := gtx.Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(rows, changeInsertBatch).Error; err != nil {
		return wrap(err, "log changes")
	}
	if old := gen - int64(s.changeLogGens); old > 0 {
		if err := gtx.Exec("DELETE FROM rule_changes WHERE generation <= ?", old).Error; err != nil {
			return wrap(err, "trim change log")
		}
	}
	return nil
}

// ListChanges returns the changes committed after generation after. It reads
// the generation first and then only the rows up to it: every generation up
// to the one read has committed with its rows, so a generation without rows
// means the log cannot tell (trimmed, or hand-written SQL).
func (s *Store) ListChanges(ctx context.Context, after int64, limit int) ([]store.Change, int64, error) {
	if limit <= 0 {
		limit = defaultChangesLimit
	}
	gen, err := s.Generation(ctx)
	if err != nil {
		return nil, 0, err
	}
	switch {
	case gen == after:
		return nil, gen, nil
	case after < 0 || after > gen:
		// The database went back (restored from a backup?): start over.
		return nil, gen, fmt.Errorf("sqlstore: changes after generation %d, at %d: %w", after, gen, store.ErrChangesUnknown)
	case gen-after > int64(limit):
		// Every generation has at least one row: too many for limit.
		return nil, gen, fmt.Errorf("sqlstore: %d generations after %d: %w", gen-after, after, store.ErrChangesUnknown)
	}
	var rows []changeRow
	err = s.reader.db.WithContext(ctx).Where("generation > ? AND generation <= ?", after, gen).
		Order("generation, kind, name, consumer_orgno, supplier_orgno").Limit(limit + 1).Find(&rows).Error
	if err != nil {
		return nil, 0, wrap(err, "list changes")
	}
	if len(rows) > limit {
		return nil, gen, fmt.Errorf("sqlstore: more than %d changes after generation %d: %w", limit, after, store.ErrChangesUnknown)
	}
	out := make([]store.Change, len(rows))
	seen, last := int64(0), int64(0)
	for i, r := range rows {
		if r.Generation != last {
			seen++
			last = r.Generation
		}
		out[i] = store.Change{Generation: r.Generation, Kind: r.Kind, Name: r.Name, ConsumerOrgno: r.ConsumerOrgno, SupplierOrgno: r.SupplierOrgno}
	}
	if seen != gen-after {
		return nil, gen, fmt.Errorf("sqlstore: %d of the %d generations after %d are in the change log: %w", seen, gen-after, after, store.ErrChangesUnknown)
	}
	return out, gen, nil
}
