package records_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/store"
)

func TestValidateMember(t *testing.T) {
	const platform, org = "310000019", "310000027"
	every := slices.Clone(records.AdminScopes)
	m := func(org, subject string, roles ...string) store.Member {
		return store.Member{Org: org, Subject: subject, Roles: roles}
	}
	cases := []struct {
		name string
		m    store.Member
		want []string
	}{
		{"ok/one-role", m(org, "kari@idp.example", records.MembersWrite), nil},
		{"ok/no-roles", m(org, "0f8e1c7a-uuid-like"), nil},
		{"ok/every-role", m(org, "kari", every...), nil},
		{"ok/platform-admin-role", m(platform, "ola", records.AdminScope, records.MembersWrite), nil},
		{"ok/platform-every-role", m(platform, "ola", append(slices.Clone(every), records.AdminScope)...), nil},
		{"ok/subject-at-bound", m(org, strings.Repeat("æ", records.MaxSubject)), nil},
		{"ok/subject-inner-space", m(org, "Kari Nordmann"), nil},
		{"fail/org", m("123456789", "kari"), []string{"org"}},
		{"fail/subject-empty", m(org, ""), []string{"subject"}},
		{"fail/subject-too-long", m(org, strings.Repeat("a", records.MaxSubject+1)), []string{"subject"}},
		{"fail/subject-control", m(org, "kari\x00"), []string{"subject"}},
		{"fail/subject-newline", m(org, "kari\nola"), []string{"subject"}},
		{"fail/subject-bidi-override", m(org, "kari\u202eexample"), []string{"subject"}},
		{"fail/subject-bidi-mark", m(org, "kari\u200f"), []string{"subject"}},
		{"fail/subject-zero-width", m(org, "ka\u200bri"), []string{"subject"}},
		{"fail/subject-invalid-utf8", m(org, "kari\xff"), []string{"subject"}},
		{"fail/subject-leading-space", m(org, " kari"), []string{"subject"}},
		{"fail/role-unknown", m(org, "kari", records.AuditRead, "acme:api"), []string{"roles[1]"}},
		{"fail/role-admin-outside-platform", m(org, "kari", records.AdminScope), []string{"roles[0]"}},
		{"fail/role-twice", m(org, "kari", records.AuditRead, records.AuditRead), []string{"roles[1]"}},
		{"fail/roles-too-many", m(org, "kari", append(slices.Clone(every), records.AuditRead)...), []string{"roles"}},
		{"fail/platform-roles-too-many", m(platform, "kari", append(slices.Clone(every), records.AdminScope, records.AdminScope)...), []string{"roles"}},
		{"fail/everything", m("", "", ""), []string{"org", "subject", "roles[0]"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			errs := records.ValidateMember(c.m, platform)
			if got := fields(errs); !slices.Equal(got, c.want) {
				t.Fatalf("fields %q (%v), want %q", got, errs, c.want)
			}
		})
	}
	if !slices.Contains(records.AdminScopes, records.MembersWrite) {
		t.Errorf("AdminScopes %v lack %s", records.AdminScopes, records.MembersWrite)
	}
}
