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
}

// DelegationFilter narrows ListDelegations; empty fields match anything.
type DelegationFilter struct {
	Scope         string
	ConsumerOrgno string
	SupplierOrgno string
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
// Org and ScopePrefixes say whose tokens are wanted, and a token matches when
// either does: its consumer or supplier is Org, or one of its scopes is
// under one of ScopePrefixes ("prefix:..."). That one disjunction is the
// audit view of an org that is at once consumer, vendor and provider. Both
// empty: every token.
//
// The other fields narrow further. ClientID matches exactly. Scope keeps
// tokens whose scopes contain exactly that name. From is inclusive and To
// exclusive on IssuedAt (zero = unbounded). BeforeIssuedAt and BeforeTokenJTI
// page by keyset: only tokens strictly before (BeforeIssuedAt,
// BeforeTokenJTI) in the result order (zero BeforeIssuedAt = from the newest).
type IssuedTokenFilter struct {
	Org           string
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
}

// Store is the one interface over all persistent records.
type Store interface {
	Reader

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

	// ListAudit reads audit events, newest first.
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error)

	// Ping checks that the backend answers.
	Ping(ctx context.Context) error
	// Close releases the backend.
	Close() error
}
