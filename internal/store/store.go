package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors. Implementations wrap driver errors so that callers can
// always test with errors.Is.
var (
	// ErrNotFound: no record with that key.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: a record with that key exists (create, or the replay insert).
	ErrConflict = errors.New("store: conflict")
	// ErrReadOnly: the record is declared in config and cannot be changed.
	ErrReadOnly = errors.New("store: record is declared in config (read-only)")
	// ErrUnavailable: the backend cannot be reached; callers answer 503.
	ErrUnavailable = errors.New("store: unavailable")
	// ErrChangesUnknown: the change log cannot say what changed after a
	// generation (its rows were trimmed, a generation was advanced by
	// hand-written SQL, or there are more changes than asked for): the
	// reader reloads everything instead.
	ErrChangesUnknown = errors.New("store: changes unknown")
)

// AccessFilter narrows ListAccess; empty fields match anything.
type AccessFilter struct {
	Scope         string
	ConsumerOrgno string
	OwnerOrgno    string
	// States keeps rows in one of these states (empty = any).
	States []string
}

// DelegationFilter narrows ListDelegations; empty fields match anything.
type DelegationFilter struct {
	Scope         string
	ConsumerOrgno string
	SupplierOrgno string
	// Org keeps delegations given or received by it, and States those in
	// one of these states (empty = any).
	Org    string
	States []string
}

// AuditFilter narrows ListAudit. Org, when set, keeps events whose Orgs hold
// it. Action and Target match exactly. From is inclusive and To exclusive on
// Time (zero = unbounded). BeforeID pages: only events with ID < BeforeID (0 =
// from the newest). Results are newest first (by ID), at most Limit (0 =
// implementation default 100).
type AuditFilter struct {
	Org      string
	Action   string
	Target   string
	From, To time.Time
	BeforeID int64
	Limit    int
}

// IssuedTokenFilter narrows ListIssuedTokens. Results are newest first (by
// IssuedAt, then TokenJTI), at most Limit (0 = default 100).
//
// Org, ManagedBy and ScopePrefixes say whose tokens are wanted, and a token
// matches when any does: its consumer or supplier is Org, its client is
// managed by ManagedBy (Client.ManagedBy: a vendor sees the tokens of the
// clients it runs for its customers), or one of its scopes is under one of
// ScopePrefixes ("prefix:..."). That one disjunction is the audit view of an
// org that is at once consumer, vendor and provider. All empty: every token.
// ManagedBy reads the stored clients (a client declared in config is
// managed by nobody).
//
// The other fields narrow further. ClientID matches exactly. Scope keeps
// tokens whose scopes contain exactly that name. From is inclusive and To
// exclusive on IssuedAt (zero = unbounded). BeforeIssuedAt and BeforeTokenJTI
// page by keyset: only tokens strictly before (BeforeIssuedAt,
// BeforeTokenJTI) in the result order (zero BeforeIssuedAt = from the newest).
type IssuedTokenFilter struct {
	Org           string
	ManagedBy     string
	ScopePrefixes []string
	ClientID      string
	Scope         string
	From, To      time.Time

	BeforeIssuedAt time.Time
	BeforeTokenJTI string

	Limit int
}

// Reader is the read side, shared by the store and its transactions.
type Reader interface {
	GetPrefix(ctx context.Context, prefix string) (Prefix, error)
	ListPrefixes(ctx context.Context) ([]Prefix, error)
	GetScope(ctx context.Context, name string) (Scope, error)
	ListScopes(ctx context.Context) ([]Scope, error)
	GetAccess(ctx context.Context, scope, consumerOrgno string) (Access, error)
	ListAccess(ctx context.Context, f AccessFilter) ([]Access, error)
	GetDelegation(ctx context.Context, scope, consumerOrgno, supplierOrgno string) (Delegation, error)
	ListDelegations(ctx context.Context, f DelegationFilter) ([]Delegation, error)
	GetClient(ctx context.Context, clientID string) (Client, error)
	ListClients(ctx context.Context) ([]Client, error)

	// The Page methods read one page of a list, filtered in the query and
	// in key order, so that a list costs what it returns (see Page).
	PagePrefixes(ctx context.Context, p Page) ([]Prefix, error)
	PageScopes(ctx context.Context, f ScopeFilter, p Page) ([]Scope, error)
	PageAccess(ctx context.Context, f AccessFilter, p Page) ([]Access, error)
	PageDelegations(ctx context.Context, f DelegationFilter, p Page) ([]Delegation, error)
	PageClients(ctx context.Context, f ClientFilter, p Page) ([]Client, error)

	// Webhooks are not access rules: they are not in the rules change
	// log, and config does not declare them.
	GetWebhook(ctx context.Context, id string) (Webhook, error)
	PageWebhooks(ctx context.Context, f WebhookFilter, p Page) ([]Webhook, error)

	// Members are not access rules either. GetMember reads one member of
	// org; PageMembers a page of one org's members in subject order;
	// MembershipsOf every org subject is a member of, in org order, at
	// most MaxMemberships.
	GetMember(ctx context.Context, org, subject string) (Member, error)
	PageMembers(ctx context.Context, f MemberFilter, p Page) ([]Member, error)
	MembershipsOf(ctx context.Context, subject string) ([]Member, error)
}

// Tx is one transaction: reads see its own writes, and every write commits
// or rolls back together with the audit events appended in it.
type Tx interface {
	Reader
	// PutPrefix creates or replaces a prefix assignment.
	PutPrefix(ctx context.Context, p Prefix) error
	// CreateScope fails with ErrConflict when the name exists (active or not).
	CreateScope(ctx context.Context, s Scope) error
	// UpdateScope replaces a scope; ErrNotFound when it does not exist.
	UpdateScope(ctx context.Context, s Scope) error
	// PutAccess creates or replaces the row for (scope, consumer).
	PutAccess(ctx context.Context, a Access) error
	// PutDelegation creates or replaces the row for (scope, consumer, supplier).
	PutDelegation(ctx context.Context, d Delegation) error
	// CreateClient fails with ErrConflict when the client_id exists.
	CreateClient(ctx context.Context, c Client) error
	// UpdateClient replaces a client (keys included); ErrNotFound when absent.
	UpdateClient(ctx context.Context, c Client) error
	// AppendAudit appends an event; the store assigns ID (and Time if zero).
	AppendAudit(ctx context.Context, e AuditEvent) error
	// CreateWebhook fails with ErrConflict when the id exists.
	CreateWebhook(ctx context.Context, w Webhook) error
	// UpdateWebhook replaces a webhook; ErrNotFound when absent.
	UpdateWebhook(ctx context.Context, w Webhook) error
	// PutMember creates or replaces the member (m.Org, m.Subject).
	PutMember(ctx context.Context, m Member) error
	// DeleteMember removes a member; ErrNotFound when absent.
	DeleteMember(ctx context.Context, org, subject string) error
	// AppendEvent writes e to the event outbox and, in the same
	// transaction, one pending delivery for every webhook of e.Orgs that
	// Wants e.Name, due at once: a change that rolls back leaves neither.
	// The store assigns ID (and JTI and Time when empty) and returns the
	// event as stored. With e.Once set and an event of that Once present,
	// it writes nothing and fails with ErrConflict.
	AppendEvent(ctx context.Context, e Event) (Event, error)
}

// Store is the one interface over all persistent records.
type Store interface {
	Reader
	// ConsoleSessions keeps the web console's sessions (sessions.go).
	ConsoleSessions

	// Update runs fn in one transaction and commits when fn returns nil. A
	// committed Update advances Generation. When fn returns an error (or
	// panics) nothing is written and Update returns that error unchanged.
	// fn writes through its Tx only: a Store write (or another Update) from
	// inside fn may wait for fn's own transaction forever; Store reads from
	// inside fn do not see fn's writes.
	Update(ctx context.Context, fn func(Tx) error) error

	// Generation is a counter that every committed Update advances (also
	// when made by another process sharing the database). Caches of the
	// access rules compare it to know when to reload.
	Generation(ctx context.Context) (int64, error)

	// ListChanges returns the records written by the Updates committed
	// after generation after, oldest first (a record written twice appears
	// twice), and the generation they bring the reader to. At most limit
	// changes are returned; when there are more, or the log cannot account
	// for every generation in between (trimmed, or advanced by hand-written
	// SQL), it fails with ErrChangesUnknown and the reader reloads
	// everything. Every committed Update logs at least one change (ChangeNone
	// when it wrote no record), in the same transaction.
	ListChanges(ctx context.Context, after int64, limit int) ([]Change, int64, error)

	// InsertIssuedToken writes the issued-token row in one atomic insert;
	// ErrConflict when (ClientID, AssertionJTI) exists: a replay.
	InsertIssuedToken(ctx context.Context, t IssuedToken) error
	// StartInsertIssuedToken is InsertIssuedToken in two steps, so that the
	// caller can work (sign the token) while the row is written: it hands
	// the row over and returns at once, and wait returns what
	// InsertIssuedToken would have. Until wait is called the store may hold
	// the row back (a few milliseconds at most) to write it together with
	// others. Call wait once; ctx must stay live until it returns.
	StartInsertIssuedToken(ctx context.Context, t IssuedToken) (wait func() error)
	// ListIssuedTokens reads issued-token rows for audit.
	ListIssuedTokens(ctx context.Context, f IssuedTokenFilter) ([]IssuedToken, error)
	// PurgeIssuedTokens deletes at most limit rows that expired before
	// cutoff, and returns how many it deleted.
	PurgeIssuedTokens(ctx context.Context, cutoff time.Time, limit int) (int, error)

	// InsertDPoPProof records a DPoP proof in one atomic insert;
	// ErrConflict when (JKT, JTI) is recorded with an Until after now: a
	// replay. A row whose Until has passed is replaced.
	InsertDPoPProof(ctx context.Context, p DPoPProof, now time.Time) error
	// PurgeDPoPProofs deletes at most limit proofs whose Until is before
	// cutoff, and returns how many it deleted.
	PurgeDPoPProofs(ctx context.Context, cutoff time.Time, limit int) (int, error)

	// ExchangeRateCounts is one replica's turn in sharing rate limits: it
	// writes x.Counts as the caller's rows (replace by (replica, key)),
	// deletes rows updated before x.ExpireBefore, and returns the other
	// replicas' rows updated at or after x.Since (at most x.Limit). One
	// round trip where the engine allows it.
	ExchangeRateCounts(ctx context.Context, x RateExchange) ([]RateCount, error)

	// ClaimDeliveries leases to c.Owner up to c.Limit deliveries due at
	// c.Now: for each webhook (active or not) whose oldest pending
	// delivery is due and not leased to another claimer, that one
	// delivery. So a webhook has at most one delivery out at a time and
	// gets its events in order, and no two claimers hold the same
	// delivery while its lease lasts (also across replicas sharing the
	// database). Each claim counts an attempt.
	ClaimDeliveries(ctx context.Context, c DeliveryClaim) ([]Delivery, error)
	// FinishDelivery records an attempt's outcome on the delivery and in
	// the webhook's recent attempts (the newest DeliveryAttemptsKept
	// kept). ErrConflict when the delivery is no longer leased to
	// r.Owner for r.Attempt (another claimer took it over): nothing is
	// written.
	FinishDelivery(ctx context.Context, r DeliveryResult) error
	// ListDeliveryAttempts returns a webhook's recent attempts, newest
	// first, at most limit (0 or more than DeliveryAttemptsKept: that
	// many).
	ListDeliveryAttempts(ctx context.Context, webhookID string, limit int) ([]DeliveryAttempt, error)
	// PurgeEvents deletes finished deliveries and old events (see
	// EventPurge) and returns how many rows it deleted.
	PurgeEvents(ctx context.Context, p EventPurge) (int, error)

	// ListSigningKeys returns every signing key (a handful), oldest
	// published first.
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	// ChangeSigningKeys applies c atomically (see SigningKeyChange).
	// Signing keys are not access rules: a change does not advance
	// Generation.
	ChangeSigningKeys(ctx context.Context, c SigningKeyChange) error
	// TakeLease grants or renews l (see Lease) and reports whether the
	// caller holds it now, across replicas sharing the database.
	TakeLease(ctx context.Context, l Lease) (bool, error)

	// ListAudit reads audit events, newest first.
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error)

	// Ping checks that the backend answers.
	Ping(ctx context.Context) error
	// Close releases the backend.
	Close() error
}
