package manage

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/store"
)

// Members are the people who act for an org in the web console, each with
// roles: the org admin scopes the person holds there. The rules:
//
//   - Only a holder of portvakt:members.write reads or changes them, and
//     only its own org's: another org's member is not found.
//   - Nobody gives a role it does not hold itself: the roles a change adds
//     to a member are bounded by the actor's own scopes (dropping a role
//     the actor lacks is fine: that takes power away).
//   - An org never removes or demotes its last member holding
//     portvakt:members.write (409), so it cannot lock itself out of the
//     console's members page.
//   - A vendor acting for a consumer through a delegated
//     portvakt:members.write reads the consumer's members but changes none:
//     a member outlives the delegation, so a person the vendor added would
//     keep acting for the consumer after the consumer revoked the vendor.

// MemberInput is a member's roles as its org writes them (PUT
// /members/{subject}). Roles is required ([] for a member without roles).
// Read-only fields are accepted so a record read can be sent back; when
// given they must match.
type MemberInput struct {
	Roles       []string        `json:"roles"`
	Org         *string         `json:"org"`
	Subject     *string         `json:"subject"`
	Created     json.RawMessage `json:"created"`
	LastUpdated json.RawMessage `json:"last_updated"`
}

// Membership is an org a person may act for in the console, with the
// roles (admin scopes) the person holds there.
type Membership struct {
	Org   string   `json:"org"`
	Roles []string `json:"roles"`
}

// checkSubjectRef refuses a subject that cannot name a member, before any
// read.
func checkSubjectRef(subject string) error {
	if errs := records.CheckSubject("subject", subject); len(errs) > 0 {
		return invalid(errs)
	}
	return nil
}

// ownMember reads a member of the actor's org. A member of another org is
// not found, exactly as one that does not exist: the store is keyed by
// (org, subject) and only the actor's org is asked.
func ownMember(ctx context.Context, rd store.Reader, a *Actor, subject string) (store.Member, error) {
	m, err := rd.GetMember(ctx, a.Org, subject)
	if errors.Is(err, store.ErrNotFound) {
		return store.Member{}, notFound("your organisation has no member %q", records.Clip(subject))
	}
	return m, err
}

// ListMembers is a page of the actor's org's members, in subject order.
func (s *Service) ListMembers(ctx context.Context, a *Actor, p store.Page) ([]store.Member, error) {
	if err := authorize(ctx, s.store, a, NeedMembersWrite); err != nil {
		return nil, err
	}
	return s.store.PageMembers(ctx, store.MemberFilter{Org: a.Org}, p)
}

// GetMember reads one member of the actor's org.
func (s *Service) GetMember(ctx context.Context, a *Actor, subject string) (store.Member, error) {
	if err := authorize(ctx, s.store, a, NeedMembersWrite); err != nil {
		return store.Member{}, err
	}
	if err := checkSubjectRef(subject); err != nil {
		return store.Member{}, err
	}
	return ownMember(ctx, s.store, a, subject)
}

// PutMember makes subject a member of the actor's org with in's roles, or
// replaces the roles of the member it is. created reports which.
func (s *Service) PutMember(ctx context.Context, a *Actor, subject string, in MemberInput) (m store.Member, created bool, err error) {
	if err := authorize(ctx, s.store, a, NeedMembersWrite); err != nil {
		return store.Member{}, false, err
	}
	if err := memberByVendor(a); err != nil {
		return store.Member{}, false, err
	}
	errs := records.ValidateMember(store.Member{Org: a.Org, Subject: subject, Roles: in.Roles}, s.cfg.PlatformOrg)
	if in.Roles == nil {
		errs = append(errs, field("roles", "is required: the roles (admin scopes) the person holds, [] for none"))
	}
	if in.Org != nil && *in.Org != a.Org {
		errs = append(errs, field("org", "is your own organisation (%s); leave it out", a.Org))
	}
	if in.Subject != nil && *in.Subject != subject {
		errs = append(errs, field("subject", "is the subject in the path; leave it out"))
	}
	if len(errs) > 0 {
		return store.Member{}, false, invalid(errs)
	}
	err = s.commit(ctx, a, NeedMembersWrite, func(tx store.Tx, now time.Time) (change, error) {
		before, err := tx.GetMember(ctx, a.Org, subject)
		switch {
		case errors.Is(err, store.ErrNotFound):
			created = true
		case err != nil:
			return change{}, err
		}
		if err := grantable(a, before.Roles, in.Roles); err != nil {
			return change{}, err
		}
		if !slices.Contains(in.Roles, records.MembersWrite) {
			if err := notLastMembersWriter(ctx, tx, before); err != nil {
				return change{}, err
			}
		}
		m = store.Member{Org: a.Org, Subject: subject, Roles: slices.Clone(in.Roles), Created: now, LastUpdated: now}
		ch := change{action: "member.create", kind: "member", target: subject, orgs: []string{a.Org}, after: m}
		if !created {
			m.Created = before.Created
			ch.action, ch.before, ch.after = "member.update", before, m
		}
		if err := tx.PutMember(ctx, m); err != nil {
			return change{}, err
		}
		return ch, nil
	})
	if err != nil {
		return store.Member{}, false, err
	}
	return m, created, nil
}

// DeleteMember removes a member of the actor's org: the person no longer
// acts for it in the console.
func (s *Service) DeleteMember(ctx context.Context, a *Actor, subject string) error {
	if err := authorize(ctx, s.store, a, NeedMembersWrite); err != nil {
		return err
	}
	if err := memberByVendor(a); err != nil {
		return err
	}
	if err := checkSubjectRef(subject); err != nil {
		return err
	}
	return s.commit(ctx, a, NeedMembersWrite, func(tx store.Tx, now time.Time) (change, error) {
		before, err := ownMember(ctx, tx, a, subject)
		if err != nil {
			return change{}, err
		}
		if err := notLastMembersWriter(ctx, tx, before); err != nil {
			return change{}, err
		}
		if err := tx.DeleteMember(ctx, a.Org, subject); err != nil {
			return change{}, err
		}
		return change{action: "member.delete", kind: "member", target: subject, orgs: []string{a.Org}, before: before}, nil
	})
}

// memberByVendor refuses a change of members by a vendor acting for a
// consumer (see the rules above).
func memberByVendor(a *Actor) error {
	if a.Supplier == "" {
		return nil
	}
	return forbidden("a vendor does not add, change or remove organisation %s's members: a member outlives the delegation, so only the organisation itself does", a.Org)
}

// grantable refuses roles that after adds to before and the actor does not
// hold.
func grantable(a *Actor, before, after []string) error {
	var over []string
	for _, r := range after {
		if !slices.Contains(before, r) && !a.Has(r) {
			over = append(over, r)
		}
	}
	if len(over) == 0 {
		return nil
	}
	return forbidden("you cannot give roles you do not hold yourself: %s", strings.Join(over, ", "))
}

// notLastMembersWriter refuses to take portvakt:members.write from before
// (a member about to be demoted or removed; zero when there is none) when
// no other member of its org holds it.
func notLastMembersWriter(ctx context.Context, rd store.Reader, before store.Member) error {
	if !slices.Contains(before.Roles, records.MembersWrite) {
		return nil
	}
	// Two are enough to know whether another holds it.
	holders, err := rd.PageMembers(ctx, store.MemberFilter{Org: before.Org, Role: records.MembersWrite}, store.Page{Limit: 2})
	if err != nil {
		return err
	}
	for _, h := range holders {
		if h.Subject != before.Subject {
			return nil
		}
	}
	return conflict("%q is your organisation's last member with %s: give the role to another member first, or nobody could manage the members in the console", records.Clip(before.Subject), records.MembersWrite)
}

// Memberships are the orgs subject may act for in the console, with the
// roles of each: the orgs it is a member of (at most
// store.MaxMemberships), and the platform admin org with every admin scope
// when the config names subject among the platform members. For the
// console's login; it needs no actor (the person is not acting yet). Roles
// that are no admin scope (any more) are left out.
func (s *Service) Memberships(ctx context.Context, subject string) ([]Membership, error) {
	if err := checkSubjectRef(subject); err != nil {
		return nil, err
	}
	ms, err := s.store.MembershipsOf(ctx, subject)
	if err != nil {
		return nil, err
	}
	platform := slices.Contains(s.cfg.PlatformMembers, subject)
	out := make([]Membership, 0, len(ms)+1)
	for _, m := range ms {
		if platform && m.Org == s.cfg.PlatformOrg {
			continue // every role, below
		}
		roles := slices.DeleteFunc(slices.Clone(m.Roles), func(r string) bool {
			return !slices.Contains(records.AdminScopes, r) && (r != records.AdminScope || m.Org != s.cfg.PlatformOrg)
		})
		out = append(out, Membership{Org: m.Org, Roles: nonNil(roles)})
	}
	if platform {
		all := append([]string{records.AdminScope}, records.AdminScopes...)
		out = append(out, Membership{Org: s.cfg.PlatformOrg, Roles: all})
		slices.SortFunc(out, func(x, y Membership) int { return strings.Compare(x.Org, y.Org) })
	}
	return out, nil
}
