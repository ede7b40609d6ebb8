package records

import (
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/portvakt/portvakt/internal/store"
)

// MaxSubject is the longest member subject (a person's id at the
// console's identity provider), in characters.
const MaxSubject = 255

// ValidateMember checks a member: the org's number, the subject
// (CheckSubject) and the roles: each one of AdminScopes, or AdminScope
// when the org is platformOrg (the platform admin org), each at most once.
// The timestamps are the caller's.
func ValidateMember(m store.Member, platformOrg string) []FieldError {
	errs := checkOrg("org", m.Org)
	errs = append(errs, CheckSubject("subject", m.Subject)...)
	return append(errs, CheckRoles("roles", m.Roles, m.Org == platformOrg)...)
}

// CheckSubject checks a person's subject: 1 to MaxSubject printable
// characters, none of them a control, bidirectional or invisible
// formatting character, and no space at either end.
func CheckSubject(field, s string) []FieldError {
	if s == "" {
		return fieldError(field, "is required: the person's id (subject) at the console's identity provider")
	}
	if errs := checkText(field, s, MaxSubject, false); errs != nil {
		return errs
	}
	n := 0
	for _, r := range s {
		n++
		if r != ' ' && !unicode.IsPrint(r) {
			return fieldError(field, "holds a character that does not print (U+%04X at character %d)", r, n)
		}
	}
	if strings.TrimSpace(s) != s {
		return fieldError(field, "starts or ends with a space")
	}
	return nil
}

// CheckRoles checks the roles a person holds in an org (platform: the
// platform admin org): the bound first (each role at most once, so no more
// roles than there are), then each role.
func CheckRoles(field string, roles []string, platform bool) []FieldError {
	max := len(AdminScopes)
	if platform {
		max++
	}
	if len(roles) > max {
		return fieldError(field, "lists %d roles; there are %d, each listed at most once", len(roles), max)
	}
	var errs []FieldError
	for i, r := range roles {
		f := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case r == AdminScope && !platform:
			errs = append(errs, fieldError(f, "%s is for the platform admin organisation only", AdminScope)...)
		case r != AdminScope && !slices.Contains(AdminScopes, r):
			errs = append(errs, fieldError(f, "%q is not a role; the roles are %s", Clip(r), strings.Join(AdminScopes, ", "))...)
		case slices.Index(roles, r) < i:
			errs = append(errs, fieldError(f, "%s is listed twice", r)...)
		}
	}
	return errs
}
