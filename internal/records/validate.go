package records

import (
	"github.com/portvakt/portvakt/internal/norid"
	"github.com/portvakt/portvakt/internal/store"
)

// This file holds the one Validate of each record kind whose rules are not
// in a file of their own (clients: records.go; keys: keys.go). Each checks
// the record alone; the rules that need other records (does the org own
// the prefix? may it list that scope?) belong to the self-service core and
// to the config loader's file-wide checks.

// ValidatePrefix checks a prefix assignment: the prefix's form and the
// owner's organisation number.
func ValidatePrefix(p store.Prefix) []FieldError {
	var errs []FieldError
	if !ValidPrefix(p.Prefix) {
		errs = append(errs, fieldError("prefix", "%q must match [a-z0-9]+, at most %d characters", Clip(p.Prefix), MaxPrefix)...)
	}
	errs = append(errs, checkOrg("owner_org", p.OwnerOrg)...)
	return errs
}

// ValidateScope checks a whole scope: its name (ValidateScopeName) and its
// content (ValidateScopeContent). issuer is this server, the only
// delegation source a scope may name.
func ValidateScope(s store.Scope, issuer string) []FieldError {
	return append(ValidateScopeName(s.Prefix, s.Subscope), ValidateScopeContent(s, issuer)...)
}

// ValidateAccess checks an access row: a scope name, the consumer's
// organisation number, a known state and the reason's text.
func ValidateAccess(a store.Access) []FieldError {
	errs := checkScopeRef("scope", a.Scope)
	errs = append(errs, checkOrg("consumer_orgno", a.ConsumerOrgno)...)
	switch a.State {
	case store.AccessApproved, store.AccessDenied:
	default:
		errs = append(errs, fieldError("state", "must be %s or %s", store.AccessApproved, store.AccessDenied)...)
	}
	return errs
}

// ValidateDelegation checks a delegation: a scope name, two different
// valid organisation numbers and a known state.
func ValidateDelegation(d store.Delegation) []FieldError {
	errs := checkScopeRef("scope", d.Scope)
	errs = append(errs, checkOrg("consumer_orgno", d.ConsumerOrgno)...)
	errs = append(errs, checkOrg("supplier_orgno", d.SupplierOrgno)...)
	if d.ConsumerOrgno != "" && d.ConsumerOrgno == d.SupplierOrgno {
		errs = append(errs, fieldError("supplier_orgno", "is the consumer itself; delegate to another organisation")...)
	}
	switch d.State {
	case store.DelegationActive, store.DelegationRevoked:
	default:
		errs = append(errs, fieldError("state", "must be %s or %s", store.DelegationActive, store.DelegationRevoked)...)
	}
	return errs
}

// CheckOrg checks an organisation number (9 digits, mod-11).
func CheckOrg(field, org string) []FieldError { return checkOrg(field, org) }

func checkOrg(field, org string) []FieldError {
	if norid.ValidOrg(org) {
		return nil
	}
	return fieldError(field, "%q is not a valid organisation number (9 digits, mod-11)", Clip(org))
}

// CheckScopeRef checks a reference to a scope by name (a query parameter,
// a row's scope): required and of a scope name's form.
func CheckScopeRef(field, name string) []FieldError { return checkScopeRef(field, name) }

func checkScopeRef(field, name string) []FieldError {
	switch {
	case name == "":
		return fieldError(field, "is required: a scope name, prefix:subscope")
	case len(name) > MaxScopeName:
		return fieldError(field, "is longer than %d characters, so it names no scope", MaxScopeName)
	case !ValidScopeName(name):
		return fieldError(field, "%q is not a scope name (prefix:subscope)", name)
	}
	return nil
}

// Clip bounds an echoed value: an error message never repeats more than
// 64 bytes of what was sent.
func Clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// MaxReason is the longest reason kept on an access row, in characters.
const MaxReason = MaxDescription

// CheckReason checks the free text of an access decision or request: like
// a long description, at most MaxReason characters, line breaks allowed.
// Empty is fine.
func CheckReason(field, s string) []FieldError {
	return checkText(field, s, MaxReason, true)
}
