package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/portvakt/portvakt/internal/store"
)

// Webhooks, the event outbox and its deliveries (00007_events.sql).
//
// AppendEvent runs inside Update, so event ids (from event_counter) follow
// commit order, and the event and its delivery rows commit or roll back
// with the change. ClaimDeliveries hands each webhook's oldest pending
// delivery to one claimer at a time: on PostgreSQL its SELECT takes row
// locks with SKIP LOCKED, so concurrent claimers on other replicas pass
// over rows being claimed instead of waiting for them, and the lease it
// writes keeps them off once it commits; on SQLite the one writer
// connection (and BEGIN IMMEDIATE across processes) serialises claims.

type webhookRow struct {
	ID          string `gorm:"primaryKey"`
	Org         string
	URL         string `gorm:"column:url"`
	Events      string
	Active      bool
	Created     dbTime
	LastUpdated dbTime
}

func (webhookRow) TableName() string { return "webhooks" }

func webhookToRow(w store.Webhook) (webhookRow, error) {
	events, err := jsonText(w.Events)
	if err != nil {
		return webhookRow{}, err
	}
	return webhookRow{ID: w.ID, Org: w.Org, URL: w.URL, Events: events, Active: w.Active,
		Created: ts(w.Created), LastUpdated: ts(w.LastUpdated)}, nil
}

func (r webhookRow) record() (store.Webhook, error) {
	w := store.Webhook{ID: r.ID, Org: r.Org, URL: r.URL, Active: r.Active,
		Created: r.Created.Time, LastUpdated: r.LastUpdated.Time}
	if err := fromJSONText(r.Events, &w.Events); err != nil {
		return store.Webhook{}, err
	}
	return w, nil
}

type eventRow struct {
	ID        int64  `gorm:"primaryKey;autoIncrement:false"`
	JTI       string `gorm:"column:jti"`
	Name      string
	EventTime dbTime
	ActorOrg  string
	Orgs      string
	Record    *string
	OnceKey   *string
}

func (eventRow) TableName() string { return "events" }

func (r eventRow) record() (store.Event, error) {
	e := store.Event{ID: r.ID, JTI: r.JTI, Name: r.Name, Time: r.EventTime.Time, ActorOrg: r.ActorOrg,
		Record: textRaw(r.Record)}
	if r.OnceKey != nil {
		e.Once = *r.OnceKey
	}
	if err := fromJSONText(r.Orgs, &e.Orgs); err != nil {
		return store.Event{}, err
	}
	return e, nil
}

type deliveryRow struct {
	WebhookID   string `gorm:"primaryKey"`
	EventID     int64  `gorm:"primaryKey;autoIncrement:false"`
	State       string
	Attempts    int64
	NextAttempt dbTime
	LeaseOwner  string
	LeaseUntil  dbTime
	FinishedAt  dbTime
}

func (deliveryRow) TableName() string { return "event_deliveries" }

type attemptRow struct {
	WebhookID   string `gorm:"primaryKey"`
	EventID     int64  `gorm:"primaryKey;autoIncrement:false"`
	Attempt     int64  `gorm:"primaryKey;autoIncrement:false"`
	EventJTI    string `gorm:"column:event_jti"`
	EventName   string
	AttemptedAt dbTime
	Status      int64
	Error       string
	State       string
	NextAttempt dbTime
}

func (attemptRow) TableName() string { return "delivery_attempts" }

func (r attemptRow) record() store.DeliveryAttempt {
	return store.DeliveryAttempt{WebhookID: r.WebhookID, EventID: r.EventID, EventJTI: r.EventJTI,
		EventName: r.EventName, Attempt: int(r.Attempt), Time: r.AttemptedAt.Time, Status: int(r.Status),
		Error: r.Error, State: r.State, NextAttempt: r.NextAttempt.Time}
}

func (r reader) GetWebhook(ctx context.Context, id string) (store.Webhook, error) {
	var row webhookRow
	if err := r.db.WithContext(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		return store.Webhook{}, wrap(err, "get webhook %q", id)
	}
	w, err := row.record()
	return w, wrap(err, "get webhook %q", id)
}

func (r reader) PageWebhooks(ctx context.Context, f store.WebhookFilter, p store.Page) ([]store.Webhook, error) {
	q := r.db.WithContext(ctx)
	if f.Org != "" {
		q = q.Where("org = ?", f.Org)
	}
	if f.ActiveOnly {
		q = q.Where("active = ?", true)
	}
	return find(keyset(q, p, "id"), "page webhooks", webhookRow.record)
}

func (t *tx) CreateWebhook(ctx context.Context, w store.Webhook) error {
	row, err := webhookToRow(w)
	if err != nil {
		return wrap(err, "create webhook %q", w.ID)
	}
	return wrap(t.insertNew(ctx, &row), "create webhook %q", w.ID)
}

func (t *tx) UpdateWebhook(ctx context.Context, w store.Webhook) error {
	row, err := webhookToRow(w)
	if err != nil {
		return wrap(err, "update webhook %q", w.ID)
	}
	return wrap(t.replace(ctx, &row), "update webhook %q", w.ID)
}

// AppendEvent: see store.Tx. The webhooks of the event's orgs are read in
// the transaction, so a webhook created by the same Update gets the event
// too.
func (t *tx) AppendEvent(ctx context.Context, e store.Event) (store.Event, error) {
	if e.Name == "" {
		return store.Event{}, errors.New("sqlstore: append event: no name")
	}
	db := t.db.WithContext(ctx)
	if e.Once != "" {
		var n int64
		if err := db.Model(&eventRow{}).Where("once_key = ?", e.Once).Count(&n).Error; err != nil {
			return store.Event{}, wrap(err, "append event %s", e.Name)
		}
		if n > 0 {
			return store.Event{}, fmt.Errorf("sqlstore: append event %s: once %q: %w", e.Name, e.Once, store.ErrConflict)
		}
	}
	id, err := nextEventID(db)
	if err != nil {
		return store.Event{}, wrap(err, "append event %s", e.Name)
	}
	e.ID = id
	if e.JTI == "" {
		e.JTI = uuid.NewString()
	}
	if e.Time.IsZero() {
		e.Time = t.now()
	}
	e.Time = e.Time.UTC().Truncate(time.Microsecond)
	orgs, err := jsonText(e.Orgs)
	if err != nil {
		return store.Event{}, wrap(err, "append event %s", e.Name)
	}
	row := eventRow{ID: e.ID, JTI: e.JTI, Name: e.Name, EventTime: ts(e.Time), ActorOrg: e.ActorOrg,
		Orgs: orgs, Record: rawText(e.Record)}
	if e.Once != "" {
		row.OnceKey = &e.Once
	}
	if err := t.insertNew(ctx, &row); err != nil {
		return store.Event{}, wrap(err, "append event %s", e.Name)
	}
	var concerned []string
	for _, org := range e.Orgs {
		if org != "" && !slices.Contains(concerned, org) {
			concerned = append(concerned, org)
		}
	}
	if len(concerned) == 0 {
		return e, nil
	}
	q := db.Where("active = ?", true)
	if !slices.Contains(concerned, store.AllOrgs) {
		q = q.Where("org IN ?", concerned)
	}
	var hooks []webhookRow
	if err := q.Order("id").Find(&hooks).Error; err != nil {
		return store.Event{}, wrap(err, "append event %s: webhooks", e.Name)
	}
	var rows []deliveryRow
	for _, h := range hooks {
		w, err := h.record()
		if err != nil {
			return store.Event{}, wrap(err, "append event %s: webhook %q", e.Name, h.ID)
		}
		if w.Wants(e.Name) {
			rows = append(rows, deliveryRow{WebhookID: w.ID, EventID: e.ID, State: store.DeliveryPending,
				NextAttempt: ts(e.Time)})
		}
	}
	if len(rows) > 0 {
		if err := db.CreateInBatches(&rows, 200).Error; err != nil {
			return store.Event{}, wrap(err, "append event %s: deliveries", e.Name)
		}
	}
	return e, nil
}

func nextEventID(db *gorm.DB) (int64, error) {
	rows, err := db.Raw("UPDATE event_counter SET value = value + 1 WHERE id = 1 RETURNING value").Rows()
	if err != nil {
		return 0, err
	}
	var id int64
	found := rows.Next()
	if found {
		err = rows.Scan(&id)
	}
	if cerr := errors.Join(err, rows.Err(), rows.Close()); cerr != nil {
		return 0, cerr
	}
	if !found {
		return 0, errors.New("no event counter row (is the database migrated?)")
	}
	return id, nil
}

// inTx runs fn in a transaction on the writer.
func (s *Store) inTx(ctx context.Context, what string, fn func(db *gorm.DB) error) error {
	gtx := s.db.WithContext(ctx).Begin()
	if gtx.Error != nil {
		return wrap(gtx.Error, "%s: begin", what)
	}
	done := false
	defer func() {
		if !done {
			gtx.Rollback()
		}
	}()
	if err := fn(gtx); err != nil {
		return wrap(err, "%s", what)
	}
	done = true
	if err := gtx.Commit().Error; err != nil {
		gtx.Rollback()
		return wrap(err, "%s: commit", what)
	}
	return nil
}

// claimSQL picks the due heads: pending rows, due, not leased (or the
// lease ran out), with no older pending row of the same webhook.
const claimSQL = `SELECT webhook_id, event_id, attempts FROM event_deliveries d
 WHERE d.state = 'pending' AND d.next_attempt <= ? AND (d.lease_until IS NULL OR d.lease_until <= ?)
 AND NOT EXISTS (SELECT 1 FROM event_deliveries o
  WHERE o.webhook_id = d.webhook_id AND o.state = 'pending' AND o.event_id < d.event_id)
 ORDER BY d.next_attempt, d.event_id LIMIT ?`

// ClaimDeliveries: see store.Store.
func (s *Store) ClaimDeliveries(ctx context.Context, c store.DeliveryClaim) ([]store.Delivery, error) {
	if c.Limit <= 0 {
		return nil, nil
	}
	if c.Owner == "" || c.Lease <= 0 {
		return nil, errors.New("sqlstore: claim deliveries: an owner and a lease are required")
	}
	now := c.Now.UTC().Truncate(time.Microsecond)
	until := now.Add(c.Lease)
	// Most polls find nothing due: ask the read pool first, so that they
	// cost one indexed read and never the writer (SQLite's is the token
	// endpoint's too).
	var due int64
	err := s.reader.db.WithContext(ctx).Raw(`SELECT COUNT(*) FROM (SELECT 1 FROM event_deliveries
 WHERE state = 'pending' AND next_attempt <= ? AND (lease_until IS NULL OR lease_until <= ?) LIMIT 1) x`,
		ts(now), ts(now)).Row().Scan(&due)
	if err != nil {
		return nil, wrap(err, "claim deliveries")
	}
	if due == 0 {
		return nil, nil
	}
	var out []store.Delivery
	err = s.inTx(ctx, "claim deliveries", func(db *gorm.DB) error {
		q := claimSQL
		if s.driver == DriverPostgres {
			q += " FOR UPDATE SKIP LOCKED"
		}
		type head struct {
			WebhookID string
			EventID   int64
			Attempts  int64
		}
		var heads []head
		if err := db.Raw(q, ts(now), ts(now), c.Limit).Scan(&heads).Error; err != nil {
			return err
		}
		if len(heads) == 0 {
			return nil
		}
		hookIDs := make([]string, 0, len(heads))
		eventIDs := make([]int64, 0, len(heads))
		won := heads[:0]
		for _, h := range heads {
			// The row lock (or SQLite's writer) already makes the row
			// ours; the lease condition again costs nothing and keeps
			// the claim safe on its own.
			res := db.Exec(`UPDATE event_deliveries SET attempts = attempts + 1, lease_owner = ?, lease_until = ?
 WHERE webhook_id = ? AND event_id = ? AND state = 'pending' AND attempts = ? AND (lease_until IS NULL OR lease_until <= ?)`,
				c.Owner, ts(until), h.WebhookID, h.EventID, h.Attempts, ts(now))
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected == 0 {
				continue
			}
			won = append(won, h)
			hookIDs = append(hookIDs, h.WebhookID)
			eventIDs = append(eventIDs, h.EventID)
		}
		heads = won
		if len(heads) == 0 {
			return nil
		}
		var hooks []webhookRow
		if err := db.Where("id IN ?", hookIDs).Find(&hooks).Error; err != nil {
			return err
		}
		var events []eventRow
		if err := db.Where("id IN ?", eventIDs).Find(&events).Error; err != nil {
			return err
		}
		hookByID := make(map[string]store.Webhook, len(hooks))
		for _, h := range hooks {
			w, err := h.record()
			if err != nil {
				return err
			}
			hookByID[w.ID] = w
		}
		eventByID := make(map[int64]store.Event, len(events))
		for _, r := range events {
			e, err := r.record()
			if err != nil {
				return err
			}
			eventByID[e.ID] = e
		}
		for _, h := range heads {
			w, okW := hookByID[h.WebhookID]
			e, okE := eventByID[h.EventID]
			if !okW || !okE {
				return fmt.Errorf("delivery of event %d to webhook %q: the webhook or the event is gone", h.EventID, h.WebhookID)
			}
			out = append(out, store.Delivery{Webhook: w, Event: e, Attempt: int(h.Attempts) + 1,
				Owner: c.Owner, LeaseUntil: until})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// clip makes an attempt's error text safe to store and show: valid UTF-8
// without control characters (a receiver's reply may hold anything;
// PostgreSQL refuses NUL), cut to at most n bytes.
func clip(s string, n int) string {
	if len(s) > 4*n {
		s = s[:4*n] // bound before the scan
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// FinishDelivery: see store.Store.
func (s *Store) FinishDelivery(ctx context.Context, r store.DeliveryResult) error {
	switch r.State {
	case store.DeliveryDelivered, store.DeliveryFailed:
	case store.DeliveryPending:
		if r.NextAttempt.IsZero() {
			return errors.New("sqlstore: finish delivery: a pending delivery needs its next attempt")
		}
	default:
		return fmt.Errorf("sqlstore: finish delivery: unknown state %q", r.State)
	}
	at := r.Time.UTC().Truncate(time.Microsecond)
	var finished, next dbTime
	if r.State == store.DeliveryPending {
		next = ts(r.NextAttempt)
	} else {
		finished = ts(at)
		next = ts(at) // NOT NULL; unused once finished
	}
	return s.inTx(ctx, fmt.Sprintf("finish delivery of event %d to webhook %q", r.EventID, r.WebhookID), func(db *gorm.DB) error {
		res := db.Exec(`UPDATE event_deliveries SET state = ?, next_attempt = ?, lease_owner = '', lease_until = NULL, finished_at = ?
 WHERE webhook_id = ? AND event_id = ? AND state = 'pending' AND lease_owner = ? AND attempts = ?`,
			r.State, next, finished, r.WebhookID, r.EventID, r.Owner, r.Attempt)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return fmt.Errorf("the lease of %q for attempt %d is gone: %w", r.Owner, r.Attempt, store.ErrConflict)
		}
		var ev eventRow
		if err := db.Select("id", "jti", "name").Where("id = ?", r.EventID).Take(&ev).Error; err != nil {
			return err
		}
		row := attemptRow{WebhookID: r.WebhookID, EventID: r.EventID, Attempt: int64(r.Attempt),
			EventJTI: ev.JTI, EventName: ev.Name, AttemptedAt: ts(at), Status: int64(r.Status),
			Error: clip(r.Error, store.MaxDeliveryError), State: r.State}
		if r.State == store.DeliveryPending {
			row.NextAttempt = ts(r.NextAttempt)
			// The webhook's later events wait for this one: make them
			// due no sooner, so that claims, which walk the due rows,
			// pass over a failing webhook's backlog once per retry
			// instead of on every poll.
			if err := db.Exec(`UPDATE event_deliveries SET next_attempt = ?
 WHERE webhook_id = ? AND state = 'pending' AND event_id > ? AND next_attempt < ?`,
				next, r.WebhookID, r.EventID, next).Error; err != nil {
				return err
			}
		}
		if err := db.Create(&row).Error; err != nil {
			return err
		}
		// Keep the newest few: an attempt is recorded only here, so the
		// webhook's rows never exceed the bound by more than this one.
		return db.Exec(`DELETE FROM delivery_attempts WHERE webhook_id = ? AND (event_id, attempt) NOT IN
 (SELECT event_id, attempt FROM delivery_attempts WHERE webhook_id = ?
  ORDER BY attempted_at DESC, event_id DESC, attempt DESC LIMIT ?)`,
			r.WebhookID, r.WebhookID, store.DeliveryAttemptsKept).Error
	})
}

// ListDeliveryAttempts: see store.Store.
func (s *Store) ListDeliveryAttempts(ctx context.Context, webhookID string, limit int) ([]store.DeliveryAttempt, error) {
	if limit <= 0 || limit > store.DeliveryAttemptsKept {
		limit = store.DeliveryAttemptsKept
	}
	q := s.reader.db.WithContext(ctx).Where("webhook_id = ?", webhookID).
		Order("attempted_at DESC, event_id DESC, attempt DESC").Limit(limit)
	return find(q, "list delivery attempts", infallible(attemptRow.record))
}

// PurgeEvents: see store.Store. Two short statements, each bounded by
// p.Limit, so the purge never holds the writer long.
func (s *Store) PurgeEvents(ctx context.Context, p store.EventPurge) (int, error) {
	if p.Limit <= 0 {
		return 0, nil
	}
	db := s.db.WithContext(ctx)
	n := 0
	if !p.DeliveriesBefore.IsZero() {
		res := db.Exec(`DELETE FROM event_deliveries WHERE (webhook_id, event_id) IN
 (SELECT webhook_id, event_id FROM event_deliveries WHERE state <> 'pending' AND finished_at < ? ORDER BY finished_at LIMIT ?)`,
			ts(p.DeliveriesBefore), p.Limit)
		if res.Error != nil {
			return n, wrap(res.Error, "purge deliveries")
		}
		n += int(res.RowsAffected)
	}
	if !p.EventsBefore.IsZero() {
		res := db.Exec(`DELETE FROM events WHERE id IN
 (SELECT id FROM events e WHERE event_time < ?
  AND NOT EXISTS (SELECT 1 FROM event_deliveries d WHERE d.event_id = e.id) ORDER BY id LIMIT ?)`,
			ts(p.EventsBefore), p.Limit)
		if res.Error != nil {
			return n, wrap(res.Error, "purge events")
		}
		n += int(res.RowsAffected)
	}
	return n, nil
}
