package manage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/portvakt/portvakt/internal/norid"
	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/rules"
	"github.com/portvakt/portvakt/internal/store"
)

// Config is the core's own configuration.
type Config struct {
	// Issuer is this server's issuer: the only delegation source a scope
	// may name.
	Issuer string
	// PlatformOrg is the platform admin org.
	PlatformOrg string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// PlatformMembers are the subjects of the people who act for the
	// platform admin org in the console with every admin scope, declared
	// in config (so the platform can be run before anyone is a member).
	PlatformMembers []string
	// Notify, when set, is called after a commit that appended events to
	// the outbox (the delivery worker's Notify), so they go out at once
	// rather than at the worker's next poll.
	Notify func()
}

// Service runs the self-service operations. It is safe for concurrent use.
type Service struct {
	cfg   Config
	store store.Store
	rules *rules.Cache
}

// New returns the core over st. rc is the rules cache the token endpoint
// reads: every write invalidates it, and the catalogue reads its snapshot.
func New(cfg Config, st store.Store, rc *rules.Cache) (*Service, error) {
	var errs []error
	if cfg.Issuer == "" {
		errs = append(errs, errors.New("manage: Issuer is required"))
	}
	if !norid.ValidOrg(cfg.PlatformOrg) {
		errs = append(errs, fmt.Errorf("manage: PlatformOrg %q is not a valid organisation number", cfg.PlatformOrg))
	}
	for i, p := range cfg.PlatformMembers {
		for _, e := range records.CheckSubject(fmt.Sprintf("PlatformMembers[%d]", i), p) {
			errs = append(errs, fmt.Errorf("manage: %v", e))
		}
	}
	if st == nil || rc == nil {
		errs = append(errs, errors.New("manage: store and rules cache are required"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg, store: st, rules: rc}, nil
}

// Issuer is the issuer the service was made for.
func (s *Service) Issuer() string { return s.cfg.Issuer }

// Actor is who acts. Org is the organisation acted for; when a vendor acts
// for a consumer through a delegated admin scope, Org is the consumer and
// Supplier the vendor.
type Actor struct {
	Org      string
	Supplier string
	// ClientID and TokenJTI name the client and the access token acting.
	ClientID string
	TokenJTI string
	// Person is the person acting through the web console (a member's
	// subject), written into every audit event; empty for API clients.
	Person string
	// Scopes are the admin scopes the actor holds.
	Scopes []string
}

// Has reports whether the actor holds scope.
func (a *Actor) Has(scope string) bool { return slices.Contains(a.Scopes, scope) }

// Permits reports whether a holds one of need: the check a shell may make
// before it reads its input, so that a caller without the scope learns that
// first. Every operation checks it again.
func (a *Actor) Permits(need Need) bool { return slices.ContainsFunc(need, a.Has) }

// uploader is the org whose caller uploads keys: the vendor when delegated.
func (a *Actor) uploader() string {
	if a.Supplier != "" {
		return a.Supplier
	}
	return a.Org
}

// Need is a set of admin scopes of which an operation needs any one; the
// first is the one to ask for.
type Need []string

// The admin scopes each family of operations needs. A write scope also
// reads what it writes.
var (
	NeedScopesRead       = Need{records.ScopesRead, records.ScopesWrite}
	NeedScopesWrite      = Need{records.ScopesWrite}
	NeedClientsRead      = Need{records.ClientsRead, records.ClientsWrite}
	NeedClientsWrite     = Need{records.ClientsWrite}
	NeedDelegationsRead  = Need{records.ScopesRead, records.DelegationsWrite}
	NeedDelegationsWrite = Need{records.DelegationsWrite}
	NeedAuditRead        = Need{records.AuditRead}
	NeedAccessRequest    = Need{records.AccessRequest}
	NeedWebhooksWrite    = Need{records.WebhooksWrite}
	NeedMembersWrite     = Need{records.MembersWrite}
	NeedAdmin            = Need{records.AdminScope}
)

// authorize checks that a holds one of need and, when a vendor acts for a
// consumer, that the consumer still delegates to it one of the scopes of
// need that it holds (an ACTIVE delegation). rd is the store, or the write
// transaction, so that a revoke committed a moment ago stops the vendor.
func authorize(ctx context.Context, rd store.Reader, a *Actor, need Need) error {
	if a == nil {
		return &Error{Kind: InsufficientScope, Detail: "this operation needs an admin scope", Need: need}
	}
	via := slices.DeleteFunc(slices.Clone(need), func(s string) bool { return !a.Has(s) })
	if len(via) == 0 {
		return &Error{Kind: InsufficientScope, Need: need,
			Detail: fmt.Sprintf("this needs an access token with the scope %s; ask for it in your token request", strings.Join(need, " or "))}
	}
	if a.Supplier == "" {
		return nil
	}
	for _, sc := range via {
		d, err := rd.GetDelegation(ctx, sc, a.Org, a.Supplier)
		switch {
		case err == nil && d.State == store.DelegationActive:
			return nil
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return err
		}
	}
	return forbidden("organisation %s no longer delegates %s to organisation %s: a vendor acts for a consumer only while the delegation is active",
		a.Org, strings.Join(via, " or "), a.Supplier)
}

// change is what a write did, for its audit event and, when event is set,
// the event (store.Event*) every org it concerns is told of, with after as
// its record.
type change struct {
	action, kind, target string
	event                string
	orgs                 []string
	before, after        any // nil = none
	// also are changes the write caused, each an audit event after its own.
	also []change
}

// commit runs fn and the audit events of what it did in one transaction,
// after checking the actor's authority again inside it, then invalidates
// the rules cache so the token endpoint sees the change at once. Input
// that is wrong whatever the store holds is refused before commit: fn's
// checks are those that need the transaction's reads.
func (s *Service) commit(ctx context.Context, a *Actor, need Need, fn func(tx store.Tx, now time.Time) (change, error)) error {
	wrote, told := false, false
	defer func() {
		// Also when the commit itself failed: its outcome may be unknown.
		if wrote {
			s.rules.Invalidate()
		}
		if told && s.cfg.Notify != nil {
			s.cfg.Notify()
		}
	}()
	return s.store.Update(ctx, func(tx store.Tx) error {
		if err := authorize(ctx, tx, a, need); err != nil {
			return err
		}
		// To the microsecond, as the stores keep it: the record answered
		// (and told in audit events and webhooks) is the one read later.
		now := s.cfg.Now().UTC().Truncate(time.Microsecond)
		ch, err := fn(tx, now)
		if err != nil {
			return err
		}
		for _, ch := range append([]change{ch}, ch.also...) {
			ev := store.AuditEvent{
				Time: now, ActorOrg: a.Org, ActorClientID: a.ClientID, ActorTokenJTI: a.TokenJTI, ActorPerson: a.Person,
				Action: ch.action, TargetKind: ch.kind, Target: ch.target,
				Orgs: orgSet(append(ch.orgs, a.Org, a.Supplier)...),
			}
			if ev.Before, err = rawJSON(ch.before); err != nil {
				return err
			}
			if ev.After, err = rawJSON(ch.after); err != nil {
				return err
			}
			wrote = true
			if err := tx.AppendAudit(ctx, ev); err != nil {
				return err
			}
			if ch.event == "" {
				continue
			}
			// In the same transaction: a change that rolls back tells no one.
			if _, err := tx.AppendEvent(ctx, store.Event{
				Name: ch.event, Time: now, ActorOrg: a.Org, Orgs: ev.Orgs, Record: ev.After,
			}); err != nil {
				return err
			}
			told = true
		}
		return nil
	})
}

func rawJSON(v any) (json.RawMessage, error) {
	if v == nil {
		return nil, nil
	}
	return json.Marshal(v)
}

// orgSet drops empties and duplicates, keeping order.
func orgSet(orgs ...string) []string {
	out := make([]string, 0, len(orgs))
	for _, o := range orgs {
		if o != "" && !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	return out
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// Source is a delegation source a scope may name.
type Source struct {
	Name   string `json:"name"`
	Issuer string `json:"issuer"`
}

// DelegationSources are the delegation sources a scope may name: this
// server only.
func (s *Service) DelegationSources() []Source {
	return []Source{{Name: "portvakt", Issuer: s.cfg.Issuer}}
}
