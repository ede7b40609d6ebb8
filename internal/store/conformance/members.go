package conformance

import (
	"fmt"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/store"
)

// Members: an org's people in the console, and a person's orgs.

func memberCases() []testCase {
	return []testCase{
		{"ok/member/put-get-page-replace-delete", testMember},
		{"ok/member/orgs-are-isolated", testMemberIsolation},
		{"ok/member/page-by-role", testMemberRole},
		{"ok/member/memberships-bounded", testMembershipsBound},
		{"fail/member/notfound", testMemberNotFound},
	}
}

func memberRec(org, subject string, roles ...string) store.Member {
	return store.Member{Org: org, Subject: subject, Roles: roles, Created: t0, LastUpdated: t0}
}

func putMembers(t *testing.T, s store.Store, ms ...store.Member) {
	t.Helper()
	update(t, s, func(tx store.Tx) error {
		for _, m := range ms {
			if err := tx.PutMember(t.Context(), m); err != nil {
				return err
			}
		}
		return nil
	})
}

func testMember(t *testing.T, s store.Store) {
	ctx := t.Context()
	ms := []store.Member{
		memberRec(orgA, "zoe@idp.example", "portvakt:scopes.read"),
		memberRec(orgA, "ada@idp.example", "portvakt:members.write", "portvakt:scopes.write"),
		memberRec(orgA, "bo@idp.example"), // no roles: nil round-trips as nil
	}
	putMembers(t, s, ms...)
	got, err := s.GetMember(ctx, orgA, "ada@idp.example")
	noErr(t, err, "GetMember")
	equal(t, got, ms[1], "GetMember")

	first, err := s.PageMembers(ctx, store.MemberFilter{Org: orgA}, store.Page{Limit: 2})
	noErr(t, err, "PageMembers")
	equal(t, first, []store.Member{ms[1], ms[2]}, "first page, in subject order")
	rest, err := s.PageMembers(ctx, store.MemberFilter{Org: orgA}, store.Page{After: first[1].Key()})
	noErr(t, err, "PageMembers after")
	equal(t, rest, []store.Member{ms[0]}, "second page")

	// Put replaces the roles (and what else the caller sets).
	m := ms[0]
	m.Roles, m.LastUpdated = []string{}, t0.Add(time.Hour)
	putMembers(t, s, m)
	got, err = s.GetMember(ctx, orgA, m.Subject)
	noErr(t, err, "GetMember after put")
	equal(t, got, m, "GetMember after replacing the roles")

	// Writes in a transaction are read in it; a delete that rolls back
	// leaves the member.
	err = s.Update(ctx, func(tx store.Tx) error {
		if err := tx.DeleteMember(ctx, orgA, m.Subject); err != nil {
			return err
		}
		if _, err := tx.GetMember(ctx, orgA, m.Subject); err == nil {
			return fmt.Errorf("GetMember in the transaction found a deleted member")
		}
		return errBoom
	})
	wantErr(t, err, errBoom, "rolled-back delete")
	_, err = s.GetMember(ctx, orgA, m.Subject)
	noErr(t, err, "GetMember after a rolled-back delete")

	update(t, s, func(tx store.Tx) error { return tx.DeleteMember(ctx, orgA, m.Subject) })
	_, err = s.GetMember(ctx, orgA, m.Subject)
	wantErr(t, err, store.ErrNotFound, "GetMember after delete")
	left, err := s.PageMembers(ctx, store.MemberFilter{Org: orgA}, store.Page{})
	noErr(t, err, "PageMembers after delete")
	equal(t, left, []store.Member{ms[1], ms[2]}, "members after delete")
}

func testMemberIsolation(t *testing.T, s store.Store) {
	ctx := t.Context()
	const who = "kari@idp.example"
	a := memberRec(orgA, who, "portvakt:audit.read")
	b := memberRec(orgB, who, "portvakt:members.write")
	other := memberRec(orgB, "ola@idp.example", "portvakt:clients.write")
	putMembers(t, s, a, b, other)

	got, err := s.PageMembers(ctx, store.MemberFilter{Org: orgA}, store.Page{})
	noErr(t, err, "PageMembers orgA")
	equal(t, got, []store.Member{a}, "orgA's members only")
	_, err = s.GetMember(ctx, orgA, other.Subject)
	wantErr(t, err, store.ErrNotFound, "GetMember of orgB's member under orgA")
	err = s.Update(ctx, func(tx store.Tx) error { return tx.DeleteMember(ctx, orgC, who) })
	wantErr(t, err, store.ErrNotFound, "DeleteMember under an org the person is not in")
	got, err = s.PageMembers(ctx, store.MemberFilter{}, store.Page{})
	noErr(t, err, "PageMembers without org")
	if len(got) != 0 {
		t.Fatalf("PageMembers without an org: %+v, want none", got)
	}

	// The same subject in two orgs is two members, each with its roles.
	of, err := s.MembershipsOf(ctx, who)
	noErr(t, err, "MembershipsOf")
	equal(t, of, []store.Member{a, b}, "MembershipsOf in org order")
	update(t, s, func(tx store.Tx) error { return tx.DeleteMember(ctx, orgB, who) })
	of, err = s.MembershipsOf(ctx, who)
	noErr(t, err, "MembershipsOf after leaving orgB")
	equal(t, of, []store.Member{a}, "MembershipsOf after leaving orgB")
	of, err = s.MembershipsOf(ctx, "nobody@idp.example")
	noErr(t, err, "MembershipsOf of nobody")
	if len(of) != 0 {
		t.Fatalf("MembershipsOf of nobody: %+v, want none", of)
	}
}

func testMemberRole(t *testing.T, s store.Store) {
	ctx := t.Context()
	ms := []store.Member{
		memberRec(orgA, "a@idp.example", "portvakt:members.write"),
		memberRec(orgA, "b@idp.example", "portvakt:scopes.read", "portvakt:members.write"),
		memberRec(orgA, "c@idp.example", "portvakt:members.writer"), // not the role: a longer name
		memberRec(orgA, "d@idp.example", "portvakt:scopes.read"),
		memberRec(orgB, "e@idp.example", "portvakt:members.write"),
	}
	putMembers(t, s, ms...)
	got, err := s.PageMembers(ctx, store.MemberFilter{Org: orgA, Role: "portvakt:members.write"}, store.Page{})
	noErr(t, err, "PageMembers by role")
	equal(t, got, []store.Member{ms[0], ms[1]}, "orgA's members holding members.write")
	got, err = s.PageMembers(ctx, store.MemberFilter{Org: orgA, Role: "portvakt:members_write"}, store.Page{})
	noErr(t, err, "PageMembers by a role with LIKE's _")
	if len(got) != 0 {
		t.Fatalf("PageMembers by portvakt:members_write: %+v, want none (_ is not a wildcard)", got)
	}
	got, err = s.PageMembers(ctx, store.MemberFilter{Org: orgA, Role: "portvakt:members.write"}, store.Page{Limit: 1, After: ms[0].Key()})
	noErr(t, err, "PageMembers by role, second page")
	equal(t, got, []store.Member{ms[1]}, "second page by role")
	for _, m := range ms {
		f := store.MemberFilter{Org: orgA, Role: "portvakt:members.write"}
		if want := m.Org == orgA && (m.Subject == "a@idp.example" || m.Subject == "b@idp.example"); f.Match(m) != want {
			t.Errorf("MemberFilter.Match(%s/%s) = %v, want %v", m.Org, m.Subject, !want, want)
		}
	}
}

func testMembershipsBound(t *testing.T, s store.Store) {
	ctx := t.Context()
	const who = "busy@idp.example"
	n := store.MaxMemberships + 5
	orgs := make([]string, n)
	update(t, s, func(tx store.Tx) error {
		for i := range n {
			// Any distinct strings will do for the store: it does not
			// check organisation numbers.
			orgs[i] = fmt.Sprintf("9%08d", i)
			if err := tx.PutMember(ctx, memberRec(orgs[i], who, "portvakt:audit.read")); err != nil {
				return err
			}
		}
		return nil
	})
	of, err := s.MembershipsOf(ctx, who)
	noErr(t, err, "MembershipsOf")
	if len(of) != store.MaxMemberships {
		t.Fatalf("MembershipsOf: %d memberships, want the bound %d", len(of), store.MaxMemberships)
	}
	for i, m := range of {
		if m.Org != orgs[i] || m.Subject != who {
			t.Fatalf("MembershipsOf[%d] = %s/%s, want %s/%s (org order)", i, m.Org, m.Subject, orgs[i], who)
		}
	}
}

func testMemberNotFound(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.GetMember(ctx, orgA, "nobody@idp.example")
	wantErr(t, err, store.ErrNotFound, "GetMember of nobody")
	err = s.Update(ctx, func(tx store.Tx) error { return tx.DeleteMember(ctx, orgA, "nobody@idp.example") })
	wantErr(t, err, store.ErrNotFound, "DeleteMember of nobody")
}
