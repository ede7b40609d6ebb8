package manage

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/store"
)

// MaxWebhooks is the most active webhooks one org may have: each event is
// pushed to every one of them, so their number bounds the work an org's
// events cost.
const MaxWebhooks = 10

// WebhookInput is a webhook as its org writes it. Read-only fields are
// accepted so a record read can be sent back; when given they must match.
type WebhookInput struct {
	ID          *string         `json:"id"`
	Org         *string         `json:"org"`
	URL         string          `json:"url"`
	Events      []string        `json:"events"`
	Active      *bool           `json:"active"`
	Created     json.RawMessage `json:"created"`
	LastUpdated json.RawMessage `json:"last_updated"`
	Deliveries  json.RawMessage `json:"deliveries"`
}

func (in *WebhookInput) apply(w *store.Webhook) {
	w.URL = in.URL
	w.Events = nonNil(in.Events)
	if in.Active != nil {
		w.Active = *in.Active
	}
}

// WebhookView is a webhook as shown: the record and its latest delivery
// attempts, newest first.
type WebhookView struct {
	store.Webhook
	Deliveries []store.DeliveryAttempt `json:"deliveries"`
}

// CreateWebhook registers a webhook for the actor's org: where its events
// are pushed (https, or http on loopback), and which (none = all).
func (s *Service) CreateWebhook(ctx context.Context, a *Actor, in WebhookInput) (store.Webhook, error) {
	if err := authorize(ctx, s.store, a, NeedWebhooksWrite); err != nil {
		return store.Webhook{}, err
	}
	var out store.Webhook
	in.apply(&out)
	out.Active = in.Active == nil || *in.Active
	errs := records.ValidateWebhook(out)
	if in.ID != nil {
		errs = append(errs, field("id", "is assigned by the server; leave it out"))
	}
	if in.Org != nil && *in.Org != a.Org {
		errs = append(errs, field("org", "is your own organisation (%s); leave it out", a.Org))
	}
	if len(errs) > 0 {
		return store.Webhook{}, invalid(errs)
	}
	err := s.commit(ctx, a, NeedWebhooksWrite, func(tx store.Tx, now time.Time) (change, error) {
		if out.Active {
			if err := webhookRoom(ctx, tx, a.Org); err != nil {
				return change{}, err
			}
		}
		out.ID, out.Org, out.Created, out.LastUpdated = uuid.NewString(), a.Org, now, now
		if err := tx.CreateWebhook(ctx, out); err != nil {
			return change{}, err
		}
		return change{action: "webhook.create", kind: "webhook", target: out.ID, orgs: []string{a.Org}, after: out}, nil
	})
	return out, err
}

// webhookRoom refuses another active webhook when org has MaxWebhooks.
func webhookRoom(ctx context.Context, rd store.Reader, org string) error {
	got, err := rd.PageWebhooks(ctx, store.WebhookFilter{Org: org, ActiveOnly: true}, store.Page{Limit: MaxWebhooks})
	if err != nil {
		return err
	}
	if len(got) >= MaxWebhooks {
		return conflict("your organisation has %d active webhooks, the most it may have; deactivate one first", MaxWebhooks)
	}
	return nil
}

// ownWebhook reads a webhook of the actor's org; another org's is missing,
// exactly as one that does not exist.
func ownWebhook(ctx context.Context, rd store.Reader, a *Actor, id string) (store.Webhook, error) {
	w, err := rd.GetWebhook(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && w.Org != a.Org) {
		return store.Webhook{}, notFound("your organisation has no webhook %q", id)
	}
	return w, err
}

// GetWebhook reads one of the actor's org's webhooks with its latest
// delivery attempts.
func (s *Service) GetWebhook(ctx context.Context, a *Actor, id string) (WebhookView, error) {
	if err := authorize(ctx, s.store, a, NeedWebhooksWrite); err != nil {
		return WebhookView{}, err
	}
	w, err := ownWebhook(ctx, s.store, a, id)
	if err != nil {
		return WebhookView{}, err
	}
	attempts, err := s.store.ListDeliveryAttempts(ctx, w.ID, 0)
	if err != nil {
		return WebhookView{}, err
	}
	return WebhookView{Webhook: w, Deliveries: nonNil(attempts)}, nil
}

// ListWebhooks is a page of the actor's org's webhooks, the deactivated
// ones too when inactive.
func (s *Service) ListWebhooks(ctx context.Context, a *Actor, inactive bool, p store.Page) ([]store.Webhook, error) {
	if err := authorize(ctx, s.store, a, NeedWebhooksWrite); err != nil {
		return nil, err
	}
	return s.store.PageWebhooks(ctx, store.WebhookFilter{Org: a.Org, ActiveOnly: !inactive}, p)
}

// UpdateWebhook replaces the URL, events and active flag of one of the
// actor's org's webhooks.
func (s *Service) UpdateWebhook(ctx context.Context, a *Actor, id string, in WebhookInput) (store.Webhook, error) {
	if err := authorize(ctx, s.store, a, NeedWebhooksWrite); err != nil {
		return store.Webhook{}, err
	}
	var probe store.Webhook
	in.apply(&probe)
	inputErrs := records.ValidateWebhook(probe)
	var out store.Webhook
	err := s.commit(ctx, a, NeedWebhooksWrite, func(tx store.Tx, now time.Time) (change, error) {
		before, err := ownWebhook(ctx, tx, a, id)
		if err != nil {
			return change{}, err
		}
		errs := inputErrs
		if in.ID != nil && *in.ID != before.ID {
			errs = append(errs[:len(errs):len(errs)], field("id", "cannot change"))
		}
		if in.Org != nil && *in.Org != before.Org {
			errs = append(errs[:len(errs):len(errs)], field("org", "cannot change"))
		}
		if len(errs) > 0 {
			return change{}, invalid(errs)
		}
		out = before
		in.apply(&out)
		if out.Active && !before.Active {
			if err := webhookRoom(ctx, tx, a.Org); err != nil {
				return change{}, err
			}
		}
		out.LastUpdated = now
		if err := tx.UpdateWebhook(ctx, out); err != nil {
			return change{}, err
		}
		return change{action: "webhook.update", kind: "webhook", target: id, orgs: []string{a.Org}, before: before, after: out}, nil
	})
	return out, err
}

// DeactivateWebhook stops pushing events to one of the actor's org's
// webhooks; events waiting for it are given up.
func (s *Service) DeactivateWebhook(ctx context.Context, a *Actor, id string) error {
	if err := authorize(ctx, s.store, a, NeedWebhooksWrite); err != nil {
		return err
	}
	return s.commit(ctx, a, NeedWebhooksWrite, func(tx store.Tx, now time.Time) (change, error) {
		before, err := ownWebhook(ctx, tx, a, id)
		if err != nil {
			return change{}, err
		}
		after := before
		after.Active = false
		after.LastUpdated = now
		if err := tx.UpdateWebhook(ctx, after); err != nil {
			return change{}, err
		}
		return change{action: "webhook.deactivate", kind: "webhook", target: id, orgs: []string{a.Org}, before: before, after: after}, nil
	})
}
