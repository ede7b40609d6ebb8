package manage_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/portvakt/portvakt/internal/manage"
	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/store"
)

const (
	kari = "kari@idp.example" // the consumer's first member, holding members.write
	ola  = "ola@idp.example"
	per  = "per@idp.example" // a platform member from config
)

// roles is a MemberInput with these roles (never nil).
func roles(rs ...string) manage.MemberInput {
	return manage.MemberInput{Roles: append([]string{}, rs...)}
}

// The rules of members (members.go), one case each, in order over one
// store: the consumer's admin client makes kari a member holding
// members.write, then kari acts as a person.
func TestCoreMembers(t *testing.T) {
	eachCoreWith(t, manage.Config{PlatformMembers: []string{per}}, func(t *testing.T, core *manage.Service) {
		ctx := t.Context()
		_, _, cons := story(t, core)
		// kari, acting in the console with her roles.
		kariActs := &manage.Actor{Org: consumer, Person: kari, Scopes: []string{records.MembersWrite, records.ScopesRead}}
		other := actor(vendor, records.AdminScopes...)
		cases := []struct {
			name string
			do   func() error
			want manage.Kind
		}{
			{"ok/create", func() error {
				m, created, err := core.PutMember(ctx, cons, kari, roles(records.MembersWrite, records.ScopesRead))
				if err == nil && (!created || m.Org != consumer || m.Subject != kari || !m.Created.Equal(now)) {
					t.Errorf("PutMember = %+v, created %v: want a new member of %s", m, created, consumer)
				}
				return err
			}, 0},
			{"ok/replace", func() error {
				m, created, err := core.PutMember(ctx, kariActs, ola, roles(records.ScopesRead))
				if err != nil {
					return err
				}
				m, created, err = core.PutMember(ctx, kariActs, ola, roles())
				if err == nil && (created || len(m.Roles) != 0 || m.Roles == nil) {
					t.Errorf("second PutMember = %+v, created %v: want the roles replaced by []", m, created)
				}
				return err
			}, 0},
			{"ok/get", func() error {
				m, err := core.GetMember(ctx, kariActs, kari)
				if err == nil && !slices.Equal(m.Roles, []string{records.MembersWrite, records.ScopesRead}) {
					t.Errorf("GetMember = %+v", m)
				}
				return err
			}, 0},
			{"ok/list-own-org", func() error {
				ms, err := core.ListMembers(ctx, kariActs, store.Page{})
				if err == nil && (len(ms) != 2 || ms[0].Subject != kari || ms[1].Subject != ola) {
					t.Errorf("ListMembers = %+v, want kari and ola", ms)
				}
				return err
			}, 0},
			{"ok/another-org-lists-none-of-them", func() error {
				ms, err := core.ListMembers(ctx, other, store.Page{})
				if err == nil && len(ms) != 0 {
					t.Errorf("another org lists %+v", ms)
				}
				return err
			}, 0},
			{"fail/another-orgs-member-get", func() error { _, err := core.GetMember(ctx, other, kari); return err }, manage.NotFound},
			{"fail/another-orgs-member-delete", func() error { return core.DeleteMember(ctx, other, kari) }, manage.NotFound},
			{"fail/unknown-member-delete", func() error { return core.DeleteMember(ctx, kariActs, "nobody") }, manage.NotFound},
			{"fail/no-scope-list", func() error {
				_, err := core.ListMembers(ctx, actor(consumer, records.ScopesWrite), store.Page{})
				return err
			}, manage.InsufficientScope},
			{"fail/no-scope-get", func() error { _, err := core.GetMember(ctx, actor(consumer, records.AuditRead), kari); return err }, manage.InsufficientScope},
			{"fail/no-scope-put", func() error {
				_, _, err := core.PutMember(ctx, actor(consumer, records.ClientsWrite), "x", roles())
				return err
			}, manage.InsufficientScope},
			{"fail/no-scope-delete", func() error { return core.DeleteMember(ctx, actor(consumer, records.ClientsWrite), ola) }, manage.InsufficientScope},
			{"fail/roles-missing", func() error { _, _, err := core.PutMember(ctx, cons, "x", manage.MemberInput{}); return err }, manage.Invalid},
			{"fail/role-unknown", func() error { _, _, err := core.PutMember(ctx, cons, "x", roles("acme:api")); return err }, manage.Invalid},
			{"fail/role-admin-outside-platform", func() error {
				_, _, err := core.PutMember(ctx, actor(consumer, records.MembersWrite, records.AdminScope), "x", roles(records.AdminScope))
				return err
			}, manage.Invalid},
			{"fail/role-twice", func() error {
				_, _, err := core.PutMember(ctx, cons, "x", roles(records.AuditRead, records.AuditRead))
				return err
			}, manage.Invalid},
			{"fail/subject-bidi", func() error { _, _, err := core.PutMember(ctx, cons, "x\u202e", roles()); return err }, manage.Invalid},
			{"fail/subject-empty-get", func() error { _, err := core.GetMember(ctx, cons, ""); return err }, manage.Invalid},
			{"fail/body-org-differs", func() error {
				in := roles()
				in.Org = new(string)
				*in.Org = vendor
				_, _, err := core.PutMember(ctx, cons, "x", in)
				return err
			}, manage.Invalid},
			{"fail/escalation-new-member", func() error {
				_, _, err := core.PutMember(ctx, kariActs, "x", roles(records.ClientsWrite))
				return err
			}, manage.Forbidden},
			{"fail/escalation-existing-member", func() error {
				_, _, err := core.PutMember(ctx, kariActs, ola, roles(records.ScopesRead, records.WebhooksWrite))
				return err
			}, manage.Forbidden},
			{"ok/roles-the-actor-holds", func() error {
				_, _, err := core.PutMember(ctx, kariActs, ola, roles(records.ScopesRead, records.MembersWrite))
				return err
			}, 0},
			{"ok/keeps-a-role-the-actor-lacks", func() error {
				must[store.Member](t)(func() (store.Member, error) {
					m, _, err := core.PutMember(ctx, cons, "auditor", roles(records.AuditRead))
					return m, err
				}())
				_, _, err := core.PutMember(ctx, kariActs, "auditor", roles(records.AuditRead, records.ScopesRead))
				return err
			}, 0},
			{"ok/drops-a-role-the-actor-lacks", func() error {
				_, _, err := core.PutMember(ctx, kariActs, "auditor", roles())
				return err
			}, 0},
			{"ok/demote-while-another-holds-members-write", func() error {
				_, _, err := core.PutMember(ctx, kariActs, ola, roles(records.ScopesRead))
				return err
			}, 0},
			{"fail/demote-last-members-writer", func() error {
				_, _, err := core.PutMember(ctx, kariActs, kari, roles(records.ScopesRead))
				return err
			}, manage.Conflict},
			{"fail/delete-last-members-writer", func() error { return core.DeleteMember(ctx, kariActs, kari) }, manage.Conflict},
			{"ok/delete", func() error { return core.DeleteMember(ctx, kariActs, "auditor") }, 0},
			{"fail/deleted-is-gone", func() error { _, err := core.GetMember(ctx, kariActs, "auditor"); return err }, manage.NotFound},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				if got := kind(c.do()); got != c.want {
					t.Fatalf("kind %d, want %d", got, c.want)
				}
			})
		}

		// Every change is audited, the person's too, with before and after.
		page := must[manage.AuditPage](t)(core.Audit(ctx, actor(consumer, records.AuditRead), manage.AuditQuery{Action: "member.delete"}))
		if len(page.Events) != 1 {
			t.Fatalf("member.delete events: %+v, want one", page.Events)
		}
		ev := page.Events[0]
		var before store.Member
		if err := json.Unmarshal(ev.Before, &before); err != nil || before.Subject != "auditor" || ev.After != nil {
			t.Errorf("member.delete before %s after %s: want the member before and nothing after", ev.Before, ev.After)
		}
		if ev.ActorPerson != kari || ev.Target != "auditor" || ev.TargetKind != "member" {
			t.Errorf("member.delete event %+v: want kari as the person, the subject as target", ev)
		}
		page = must[manage.AuditPage](t)(core.Audit(ctx, actor(consumer, records.AuditRead), manage.AuditQuery{Action: "member.create", Target: kari}))
		if len(page.Events) != 1 || page.Events[0].ActorPerson != "" || page.Events[0].ActorClientID != cons.ClientID {
			t.Errorf("member.create by the client: %+v, want one event without a person", page.Events)
		}
	})
}

// A vendor acting for the consumer through a delegated members.write reads
// its members but changes none.
func TestCoreMembersVendor(t *testing.T) {
	eachCore(t, func(t *testing.T, core *manage.Service) {
		ctx := t.Context()
		_, _, cons := story(t, core)
		must[store.Member](t)(func() (store.Member, error) {
			m, _, err := core.PutMember(ctx, cons, kari, roles(records.MembersWrite))
			return m, err
		}())
		must[store.Delegation](t)(core.GiveDelegation(ctx, cons, records.MembersWrite, vendor))
		v := &manage.Actor{Org: consumer, Supplier: vendor, ClientID: "v", Scopes: []string{records.MembersWrite}}
		cases := []struct {
			name string
			do   func() error
			want manage.Kind
		}{
			{"ok/vendor-lists", func() error { _, err := core.ListMembers(ctx, v, store.Page{}); return err }, 0},
			{"fail/vendor-adds", func() error { _, _, err := core.PutMember(ctx, v, "vendor-person", roles()); return err }, manage.Forbidden},
			{"fail/vendor-removes", func() error { return core.DeleteMember(ctx, v, kari) }, manage.Forbidden},
			{"fail/vendor-after-revoke", func() error {
				if err := core.RevokeDelegation(ctx, cons, records.MembersWrite, vendor); err != nil {
					return err
				}
				_, err := core.ListMembers(ctx, v, store.Page{})
				return err
			}, manage.Forbidden},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				if got := kind(c.do()); got != c.want {
					t.Fatalf("kind %d, want %d", got, c.want)
				}
			})
		}
	})
}

// Memberships: the orgs a person acts for at login, the platform org with
// every admin scope for the platform members in config.
func TestCoreMemberships(t *testing.T) {
	eachCoreWith(t, manage.Config{PlatformMembers: []string{per}}, func(t *testing.T, core *manage.Service) {
		ctx := t.Context()
		put := func(a *manage.Actor, subject string, rs ...string) {
			t.Helper()
			if _, _, err := core.PutMember(ctx, a, subject, roles(rs...)); err != nil {
				t.Fatal(err)
			}
		}
		put(actor(vendor, records.AdminScopes...), kari, records.AuditRead)
		put(actor(consumer, records.AdminScopes...), kari, records.MembersWrite, records.ClientsWrite)
		put(actor(platform, append([]string{records.AdminScope}, records.AdminScopes...)...), per, records.AuditRead)
		put(actor(consumer, records.AdminScopes...), per, records.ScopesRead)
		every := append([]string{records.AdminScope}, records.AdminScopes...)

		cases := []struct {
			name    string
			subject string
			want    []manage.Membership
			kind    manage.Kind
		}{
			{"ok/member-of-two-orgs", kari, []manage.Membership{
				{Org: consumer, Roles: []string{records.MembersWrite, records.ClientsWrite}},
				{Org: vendor, Roles: []string{records.AuditRead}},
			}, 0},
			{"ok/platform-member-from-config", per, []manage.Membership{
				{Org: platform, Roles: every}, // config wins over the stored roles
				{Org: consumer, Roles: []string{records.ScopesRead}},
			}, 0},
			{"ok/nobody", "nobody@idp.example", []manage.Membership{}, 0},
			{"fail/subject-invalid", "", nil, manage.Invalid},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				got, err := core.Memberships(ctx, c.subject)
				if kind(err) != c.kind || (c.kind == 0 && err != nil) {
					t.Fatalf("Memberships: %v, want kind %d", err, c.kind)
				}
				if c.kind != 0 {
					return
				}
				if !slices.EqualFunc(got, c.want, func(a, b manage.Membership) bool {
					return a.Org == b.Org && slices.Equal(a.Roles, b.Roles)
				}) {
					t.Fatalf("Memberships(%s) = %+v, want %+v", c.subject, got, c.want)
				}
			})
		}
	})
}

// A platform member named in config must be a valid subject.
func TestCorePlatformMembersChecked(t *testing.T) {
	for _, c := range []struct {
		name    string
		members []string
		ok      bool
	}{
		{"ok/none", nil, true},
		{"ok/two", []string{per, kari}, true},
		{"fail/empty", []string{per, ""}, false},
		{"fail/control", []string{"per\n"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := manage.New(manage.Config{Issuer: issuer, PlatformOrg: platform, PlatformMembers: c.members}, nil, nil)
			// The store is missing in every case; only a bad member adds a
			// second problem.
			if got := err != nil && len(unwrapAll(err)) == 1; got != c.ok {
				t.Fatalf("New: %v", err)
			}
		})
	}
}

func unwrapAll(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
