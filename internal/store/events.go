package store

import (
	"encoding/json"
	"time"
)

// Event names: what an org's webhooks may subscribe to. They are part of
// the records' vocabulary (a Webhook lists them, an Event carries one), so
// they live here, where the record rules (internal/records) and the
// delivery worker (internal/events) both find them.
const (
	EventAccessRequested    = "access.requested"
	EventAccessApproved     = "access.approved"
	EventAccessDenied       = "access.denied"
	EventAccessWithdrawn    = "access.withdrawn"
	EventDelegationGiven    = "delegation.given"
	EventDelegationRevoked  = "delegation.revoked"
	EventClientKeysExpiring = "client.keys.expiring"
	EventClientDeactivated  = "client.deactivated"
	EventSigningKeyRotated  = "signing_key.rotated"
)

// EventNames lists every event name, in the order the documentation gives
// them. Callers must not modify it.
var EventNames = []string{
	EventAccessRequested, EventAccessApproved, EventAccessDenied, EventAccessWithdrawn,
	EventDelegationGiven, EventDelegationRevoked,
	EventClientKeysExpiring, EventClientDeactivated, EventSigningKeyRotated,
}

// Webhook is where an org's events are pushed: URL receives a Security
// Event Token for every event that concerns Org and that Events names
// (empty = every event), while Active.
type Webhook struct {
	ID          string    `json:"id"` // UUID
	Org         string    `json:"org"`
	URL         string    `json:"url"`
	Events      []string  `json:"events"`
	Active      bool      `json:"active"`
	Created     time.Time `json:"created"`
	LastUpdated time.Time `json:"last_updated"`
}

// Key is the webhook's key in PageWebhooks' order.
func (w Webhook) Key() []string { return []string{w.ID} }

// Wants reports whether the webhook subscribes to the event name (it is
// active, and lists the name or lists none).
func (w Webhook) Wants(name string) bool {
	if !w.Active {
		return false
	}
	if len(w.Events) == 0 {
		return true
	}
	for _, e := range w.Events {
		if e == name {
			return true
		}
	}
	return false
}

// WebhookFilter narrows PageWebhooks; zero fields match anything.
type WebhookFilter struct {
	Org string
	// ActiveOnly leaves out deactivated webhooks.
	ActiveOnly bool
}

// Match applies f to w in memory, as the stores do in their queries.
func (f WebhookFilter) Match(w Webhook) bool {
	return (f.Org == "" || w.Org == f.Org) && (!f.ActiveOnly || w.Active)
}

// Event is one entry of the event outbox, appended in the transaction of
// the change that caused it (Tx.AppendEvent).
type Event struct {
	// ID orders the events: assigned by the store, increasing in commit
	// order, never reused.
	ID int64 `json:"id"`
	// JTI is the event's unique id in its Security Event Token; the store
	// assigns a random UUID when it is empty.
	JTI  string `json:"jti"`
	Name string `json:"name"` // one of EventNames
	// Time is when it happened (the store stamps its clock when zero).
	Time     time.Time `json:"time"`
	ActorOrg string    `json:"actor_org"`
	// Orgs are every org the event concerns: each one's webhooks get it.
	// AllOrgs among them concerns every org (signing_key.rotated).
	Orgs []string `json:"orgs"`
	// Record is the changed record as the API shows it after the change.
	Record json.RawMessage `json:"record"`
	// Once, when set, makes the event happen at most once: AppendEvent
	// fails with ErrConflict when an event with the same Once exists
	// (and nothing is written). The daily key-expiry scan uses it so that
	// every replica may scan.
	Once string `json:"-"`
}

// AllOrgs in Event.Orgs sends the event to every org's webhooks.
const AllOrgs = "*"

// Delivery states. A delivery is pending until its webhook acknowledges
// the event (delivered) or the worker gives up on it (failed).
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// Delivery is one event claimed for one webhook (ClaimDeliveries): the
// event, where to send it, and the lease under which this claimer alone
// may send it.
type Delivery struct {
	Webhook Webhook
	Event   Event
	// Attempt counts the tries of this delivery, this one included (1 for
	// the first).
	Attempt int
	// Owner and LeaseUntil are the claim: FinishDelivery must name the
	// same Owner and Attempt, and another claimer may take the delivery
	// over once LeaseUntil has passed.
	Owner      string
	LeaseUntil time.Time
}

// DeliveryClaim asks ClaimDeliveries for up to Limit deliveries due at Now,
// each leased to Owner until Now + Lease.
type DeliveryClaim struct {
	Now   time.Time
	Owner string
	Lease time.Duration
	Limit int
}

// DeliveryResult is the outcome of one attempt, for FinishDelivery.
type DeliveryResult struct {
	WebhookID string
	EventID   int64
	Owner     string
	Attempt   int
	Time      time.Time // when the attempt was made
	// Status is the receiver's HTTP status (0 when none came back), Error
	// what went wrong (empty on success; the store clips it to
	// MaxDeliveryError bytes).
	Status int
	Error  string
	// State is the delivery's state after the attempt: DeliveryDelivered,
	// DeliveryFailed (given up), or DeliveryPending to try again at
	// NextAttempt.
	State       string
	NextAttempt time.Time
}

// DeliveryAttempt is one attempt as ListDeliveryAttempts shows it: the
// webhook's recent history.
type DeliveryAttempt struct {
	WebhookID string    `json:"webhook_id"`
	EventID   int64     `json:"event_id"`
	EventJTI  string    `json:"event_jti"`
	EventName string    `json:"event"`
	Attempt   int       `json:"attempt"`
	Time      time.Time `json:"time"`
	Status    int       `json:"status,omitempty"`
	Error     string    `json:"error,omitempty"`
	// State is the delivery's state after this attempt.
	State       string    `json:"state"`
	NextAttempt time.Time `json:"next_attempt,omitzero"`
}

// Delivery bounds.
const (
	// DeliveryAttemptsKept is how many recent attempts the store keeps
	// per webhook (older ones are dropped as new ones are recorded).
	DeliveryAttemptsKept = 20
	// MaxDeliveryError is the longest error text kept with an attempt, in
	// bytes.
	MaxDeliveryError = 512
)

// EventPurge asks PurgeEvents to delete at most Limit rows of each kind:
// deliveries finished (delivered or given up) before DeliveriesBefore, and
// events that happened before EventsBefore and have no delivery left.
// EventsBefore must lie further back than any Once key needs remembering.
type EventPurge struct {
	DeliveriesBefore time.Time
	EventsBefore     time.Time
	Limit            int
}
