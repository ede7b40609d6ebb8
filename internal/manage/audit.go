package manage

import (
	"cmp"
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/store"
)

const (
	defaultAuditLimit = 50
	maxAuditLimit     = 500
)

// ActionTokenIssue is the action of the events built from issued-token
// rows. They are not audit_events rows: the issued-token row, written once
// per token as the replay check, is the record (no second write per token).
const ActionTokenIssue = "token.issue"

// actionRE is the shape of an action: lowercase words joined by dots.
var actionRE = regexp.MustCompile(`^[a-z]+(\.[a-z]+)+$`)

// AuditEvent is one event of GET /audit: an admin change (from the audit
// log, with its id) or an issued token (from the issued-token record, with
// Token set and no id).
type AuditEvent struct {
	ID            int64           `json:"id,omitempty"`
	Time          time.Time       `json:"time"`
	ActorOrg      string          `json:"actor_org"`
	ActorClientID string          `json:"actor_client_id"`
	ActorTokenJTI string          `json:"actor_token_jti,omitempty"`
	ActorPerson   string          `json:"actor_person,omitempty"`
	Action        string          `json:"action"`
	TargetKind    string          `json:"target_kind"`
	Target        string          `json:"target"`
	Orgs          []string        `json:"orgs"`
	Before        json.RawMessage `json:"before,omitempty"`
	After         json.RawMessage `json:"after,omitempty"`
	Token         *AuditToken     `json:"token,omitempty"`
}

// AuditToken is what a token event tells about the token.
type AuditToken struct {
	ConsumerOrgno string    `json:"consumer_orgno"`
	SupplierOrgno string    `json:"supplier_orgno,omitempty"`
	Scopes        []string  `json:"scopes"`
	Audience      []string  `json:"aud,omitempty"`
	ExpiresAt     time.Time `json:"exp"`
	ClientAMR     string    `json:"client_amr"`
}

// AuditPage is the answer of GET /audit.
type AuditPage struct {
	Events     []AuditEvent `json:"events"`
	NextCursor string       `json:"next_cursor"`
}

// auditCursor is where a page ends, in each of the two sources. The stream
// is the merge of two ordered walks: the audit log by id and the issued
// tokens by (issued_at, token_jti), both newest first. Each walk keeps its
// own position, so paging never skips or repeats an event of either, and
// events that arrive after the first page stay out of the walk. Merged, the
// stream is newest first by time (at equal times tokens come first), given
// that audit ids grow with time, as they do (AppendAudit).
//
// A position of 0 means "from the newest"; done means the source had
// nothing more.
type auditCursor struct {
	AdminBefore int64  `json:"a,omitempty"` // audit ids < AdminBefore
	AdminDone   bool   `json:"ad,omitempty"`
	TokenBefore int64  `json:"t,omitempty"` // issued_at in Unix microseconds
	TokenJTI    string `json:"j,omitempty"` // with TokenBefore: strictly before (issued_at, token_jti)
	TokenDone   bool   `json:"td,omitempty"`
}

func (c auditCursor) encode() string { return encodeCursor(c) }

func decodeAuditCursor(s string) (auditCursor, bool) {
	var c auditCursor
	if !readCursor(s, &c) || c.AdminBefore < 0 || c.TokenBefore < 0 {
		return c, false
	}
	return c, c != auditCursor{}
}

// AuditQuery selects events of the audit trail, as a person or a client
// writes it (text, as in a URL query or a form). The zero value is the
// newest page of everything the actor may see.
type AuditQuery struct {
	// Limit is the page size: 1 to 500; empty for the default (50).
	Limit string
	// Cursor is the NextCursor of the previous page.
	Cursor string
	// From and To bound the events' times, RFC 3339 (From inclusive, To
	// exclusive); empty for no bound.
	From, To string
	// Action keeps one action (token.issue: only tokens; any other: only
	// admin changes). Target keeps admin changes of one record. Scope and
	// ClientID narrow tokens by their scopes and client, and admin changes
	// by their target.
	Action, Target  string
	Scope, ClientID string
}

// auditQuery is an AuditQuery parsed.
type auditQuery struct {
	limit           int
	cursor          auditCursor
	from, to        time.Time
	action, target  string
	scope, clientID string
}

// parse checks q, every problem at once.
func (q AuditQuery) parse() (auditQuery, error) {
	aq := auditQuery{limit: defaultAuditLimit, action: q.Action, target: q.Target, scope: q.Scope, clientID: q.ClientID}
	var errs []FieldError
	if q.Limit != "" {
		n, err := strconv.Atoi(q.Limit)
		if err != nil || n < 1 || n > maxAuditLimit {
			errs = append(errs, field("limit", "must be a number from 1 to %d", maxAuditLimit))
		}
		aq.limit = n
	}
	if q.Cursor != "" {
		c, ok := decodeAuditCursor(q.Cursor)
		if !ok {
			errs = append(errs, field("cursor", "must be a next_cursor from a previous page"))
		}
		aq.cursor = c
	}
	for _, p := range []struct {
		name, v string
		t       *time.Time
	}{{"from", q.From, &aq.from}, {"to", q.To, &aq.to}} {
		if p.v != "" {
			t, err := time.Parse(time.RFC3339, p.v)
			if err != nil {
				errs = append(errs, field(p.name, "must be an RFC 3339 time, e.g. 2025-01-31T12:00:00Z"))
			}
			*p.t = t
		}
	}
	if !aq.from.IsZero() && !aq.to.IsZero() && !aq.from.Before(aq.to) {
		errs = append(errs, field("to", "must be after from"))
	}
	if aq.action != "" && !actionRE.MatchString(aq.action) {
		errs = append(errs, field("action", "must be an action such as token.issue or scope.create"))
	}
	if len(aq.target) > records.MaxScopeName {
		// A target is a scope name, a client_id or a prefix: never longer.
		errs = append(errs, field("target", "is longer than %d characters, so it names no record", records.MaxScopeName))
	}
	if aq.scope != "" && !records.ValidScopeName(aq.scope) {
		errs = append(errs, field("scope", "must be a scope name, prefix:subscope"))
	}
	if aq.clientID != "" {
		if _, err := uuid.Parse(aq.clientID); err != nil || len(aq.clientID) != 36 {
			errs = append(errs, field("client_id", "must be a client_id (a UUID)"))
		}
	}
	if len(errs) > 0 {
		return aq, invalid(errs)
	}
	return aq, nil
}

// Audit is a page of the events concerning the actor's org, newest first.
//
// Admin changes come from the audit log, by the orgs each event names.
// Token events come from the issued-token record: the consumer sees the
// tokens issued for it (directly or through a vendor), a vendor the tokens
// it got for its customers, a provider the tokens carrying its scopes. A
// provider that is neither consumer nor vendor of a token sees only the
// token's scopes under its own prefixes, and no aud: it learns who got its
// scopes, never what else they got from other providers.
//
// Filters: action=token.issue lists only tokens, any other action only
// admin changes; scope and client_id narrow tokens by their scopes and
// client, and admin changes by their target (the scope, the client);
// target narrows admin changes only.
func (s *Service) Audit(ctx context.Context, a *Actor, q AuditQuery) (AuditPage, error) {
	if err := authorize(ctx, s.store, a, NeedAuditRead); err != nil {
		return AuditPage{}, err
	}
	aq, err := q.parse()
	if err != nil {
		return AuditPage{}, err
	}
	var admin []store.AuditEvent
	var tokens []store.IssuedToken

	if !aq.cursor.AdminDone && aq.action != ActionTokenIssue {
		f := store.AuditFilter{Org: a.Org, Action: aq.action, Target: aq.target, From: aq.from, To: aq.to,
			BeforeID: aq.cursor.AdminBefore, Limit: aq.limit + 1}
		skip := false
		for _, t := range []string{aq.scope, aq.clientID} {
			switch {
			case t == "":
			case f.Target == "":
				f.Target = t
			case f.Target != t:
				skip = true // an admin event has one target
			}
		}
		if !skip {
			if admin, err = s.store.ListAudit(ctx, f); err != nil {
				return AuditPage{}, err
			}
		}
	}

	// The caller's prefixes make it a provider; their owners name the
	// providers of a token's scopes in its orgs.
	prefixes, err := s.store.ListPrefixes(ctx)
	if err != nil {
		return AuditPage{}, err
	}
	owner := make(map[string]string, len(prefixes))
	var own []string
	for _, p := range prefixes {
		owner[p.Prefix] = p.OwnerOrg
		if p.OwnerOrg == a.Org {
			own = append(own, p.Prefix)
		}
	}
	if !aq.cursor.TokenDone && aq.target == "" && (aq.action == "" || aq.action == ActionTokenIssue) {
		f := store.IssuedTokenFilter{Org: a.Org, ManagedBy: a.Org, ScopePrefixes: own, ClientID: aq.clientID, Scope: aq.scope,
			From: aq.from, To: aq.to, Limit: aq.limit + 1}
		if aq.scope != "" && !underAny(aq.scope, own) {
			// Filtering a provider's view by another provider's scope would
			// tell it that its token also carried that scope.
			f.ScopePrefixes = nil
		}
		if aq.cursor.TokenBefore > 0 {
			f.BeforeIssuedAt, f.BeforeTokenJTI = time.UnixMicro(aq.cursor.TokenBefore).UTC(), aq.cursor.TokenJTI
		}
		if tokens, err = s.store.ListIssuedTokens(ctx, f); err != nil {
			return AuditPage{}, err
		}
	}

	// The vendor that manages a token's client is one of its orgs, and
	// sees it as a party does. managed_by never changes, so the rules
	// snapshot (in memory) answers for any client the tokens name.
	managedBy := func(store.IssuedToken) string { return "" }
	if len(tokens) > 0 {
		snap, err := s.rules.Snapshot(ctx)
		if err != nil {
			return AuditPage{}, err
		}
		managedBy = func(t store.IssuedToken) string {
			cl, _ := snap.Client(t.ClientID)
			return cl.ManagedBy
		}
	}

	// Merge newest first, at most limit events.
	page := AuditPage{Events: []AuditEvent{}}
	next := aq.cursor
	ai, ti := 0, 0
	for len(page.Events) < aq.limit && (ai < len(admin) || ti < len(tokens)) {
		takeToken := ai == len(admin) || (ti < len(tokens) && !tokens[ti].IssuedAt.Before(admin[ai].Time))
		if takeToken {
			tok := tokens[ti]
			page.Events = append(page.Events, tokenEvent(tok, a.Org, managedBy(tok), own, owner))
			next.TokenBefore, next.TokenJTI = tok.IssuedAt.UnixMicro(), tok.TokenJTI
			ti++
		} else {
			ev := admin[ai]
			page.Events = append(page.Events, AuditEvent{
				ID: ev.ID, Time: ev.Time, ActorOrg: ev.ActorOrg, ActorClientID: ev.ActorClientID, ActorPerson: ev.ActorPerson,
				ActorTokenJTI: ev.ActorTokenJTI, Action: ev.Action, TargetKind: ev.TargetKind, Target: ev.Target,
				Orgs: nonNil(ev.Orgs), Before: ev.Before, After: ev.After,
			})
			next.AdminBefore = ev.ID
			ai++
		}
	}
	if ai < len(admin) || ti < len(tokens) {
		// A source that gave nothing to this page is pinned where it was
		// read, so later arrivals do not enter the walk; one that had
		// nothing left is done.
		if ai == 0 {
			if len(admin) > 0 && next.AdminBefore == 0 {
				next.AdminBefore = admin[0].ID + 1
			}
			next.AdminDone = len(admin) == 0
		}
		if ti == 0 {
			if len(tokens) > 0 && next.TokenBefore == 0 {
				// Strictly before (issued_at + 1µs, ""): every token up to
				// the newest one read (issued_at is kept in microseconds).
				next.TokenBefore, next.TokenJTI = tokens[0].IssuedAt.UnixMicro()+1, ""
			}
			next.TokenDone = len(tokens) == 0
		}
		page.NextCursor = next.encode()
	}
	return page, nil
}

// tokenEvent is the event of one issued token as org sees it. The actor is
// the client's org: the vendor when delegated, else the consumer. managedBy
// is the vendor that manages the token's client for the consumer (or ""):
// it is among the token's orgs and sees the token whole, as the consumer
// does.
func tokenEvent(t store.IssuedToken, org, managedBy string, own []string, owner map[string]string) AuditEvent {
	party := org == t.ConsumerOrgno || org == t.SupplierOrgno || (managedBy != "" && org == managedBy)
	scopes := t.Scopes
	aud := t.Audience
	if !party {
		scopes = slices.DeleteFunc(slices.Clone(t.Scopes), func(s string) bool { return !underAny(s, own) })
		aud = nil
	}
	actor := cmp.Or(t.SupplierOrgno, t.ConsumerOrgno)
	orgs := []string{t.ConsumerOrgno, t.SupplierOrgno, managedBy}
	for _, s := range scopes {
		prefix, _, _ := strings.Cut(s, ":")
		orgs = append(orgs, owner[prefix])
	}
	return AuditEvent{
		Time: t.IssuedAt, ActorOrg: actor, ActorClientID: t.ClientID,
		Action: ActionTokenIssue, TargetKind: "token", Target: t.TokenJTI, Orgs: orgSet(orgs...),
		Token: &AuditToken{ConsumerOrgno: t.ConsumerOrgno, SupplierOrgno: t.SupplierOrgno, Scopes: nonNil(scopes),
			Audience: aud, ExpiresAt: t.ExpiresAt, ClientAMR: t.ClientAMR},
	}
}

// underAny says whether scope is under one of prefixes.
func underAny(scope string, prefixes []string) bool {
	prefix, _, ok := strings.Cut(scope, ":")
	return ok && slices.Contains(prefixes, prefix)
}
