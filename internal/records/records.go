package records

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/portvakt/portvakt/internal/protocol"
	"github.com/portvakt/portvakt/internal/store"
)

// Bounds (the records and input bounds of docs/selfservice.md).
const (
	// MaxName is the longest name, in characters.
	MaxName = 255
	// MaxDescription is the longest description or long description, in
	// characters.
	MaxDescription = 4000
	// MaxClientScopes is the most scopes one client may list.
	MaxClientScopes = 100
	// MaxScopeName is the longest scope name (prefix:subscope), in bytes
	// (scope names are ASCII).
	MaxScopeName = 255
	// MaxPrefix is the longest prefix. A prefix names a provider's family
	// of APIs, as a DNS label names a host; 63 is a DNS label's bound and
	// leaves room for subscopes within MaxScopeName.
	MaxPrefix = 63
	// MaxAudiences is the most audiences (resource URIs) a scope may list.
	// A scope names the APIs that accept it; twenty is far above real use
	// and keeps a scope record, and the check of a token's resource
	// against it, small.
	MaxAudiences = 20
	// MaxClientLifetime caps a client's access_token_lifetime and a
	// scope's at_max_age, in seconds.
	MaxClientLifetime = 7200
)

// IntegrationTypes are the integration types a scope may allow.
var IntegrationTypes = []string{protocol.IntegrationMaskinporten}

// FieldError is one problem with one field of a record: the field's path
// (client_name, scopes[3], keys[2].kid) and a plain message saying what to
// fix. The JSON names are the ones the self-service API's problem
// documents use.
type FieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

func (e FieldError) Error() string { return e.Field + ": " + e.Detail }

// Within prefixes the path of each problem with the record's own path:
// Within("records.clients[0]", errs) names records.clients[0].client_name.
func Within(path string, errs []FieldError) []FieldError {
	out := make([]FieldError, len(errs))
	for i, e := range errs {
		out[i] = FieldError{Field: path + "." + e.Field, Detail: e.Detail}
		if e.Field == "" {
			out[i].Field = path
		}
	}
	return out
}

func fieldError(field, format string, args ...any) []FieldError {
	return []FieldError{{Field: field, Detail: fmt.Sprintf(format, args...)}}
}

// CheckName checks a name (a client's client_name): at most MaxName
// characters of one line of text. Empty is fine here; whether a name is
// required is the record's rule.
func CheckName(field, s string) []FieldError {
	return checkText(field, s, MaxName, false)
}

// CheckDescription checks a description: at most MaxDescription characters
// of one line of text. Whether it is required is the record's rule.
func CheckDescription(field, s string) []FieldError {
	return checkText(field, s, MaxDescription, false)
}

// CheckLongDescription checks a long description: at most MaxDescription
// characters; line breaks (LF) are allowed, other control characters not.
func CheckLongDescription(field, s string) []FieldError {
	return checkText(field, s, MaxDescription, true)
}

// checkText bounds before it scans: a string of more than four bytes per
// allowed character is too long whatever it holds.
func checkText(field, s string, max int, newlines bool) []FieldError {
	if len(s) > utf8.UTFMax*max {
		return fieldError(field, "is longer than %d characters", max)
	}
	if !utf8.ValidString(s) {
		return fieldError(field, "is not valid UTF-8")
	}
	n := 0
	for _, r := range s {
		n++
		if newlines && r == '\n' {
			continue
		}
		if why := forbidden(r); why != "" {
			return fieldError(field, "holds %s (U+%04X at character %d); %s", why, r, n, hint(newlines))
		}
	}
	if n > max {
		return fieldError(field, "is longer than %d characters (%d)", max, n)
	}
	return nil
}

func hint(newlines bool) string {
	if newlines {
		return "use plain text; line breaks are \\n"
	}
	return "use one line of plain text"
}

// forbidden says why r may not appear in a name or description, or "".
func forbidden(r rune) string {
	switch {
	case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
		return "a control character"
	case r == '\u2028' || r == '\u2029':
		return "a line or paragraph separator"
	case (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069'):
		return "a bidirectional override or isolate character, which makes text display differently from what it is"
	case r == '\u200e' || r == '\u200f' || r == '\u061c':
		return "an invisible bidirectional mark"
	case unicode.Is(unicode.Cs, r) || r == utf8.RuneError:
		return "an invalid character"
	}
	return ""
}

var (
	prefixRE   = regexp.MustCompile(`^[a-z0-9]+$`)
	subscopeRE = regexp.MustCompile(`^[a-zA-Z0-9._/-]+$`)
)

// ValidPrefix reports whether p is a valid scope prefix: [a-z0-9]+, at most
// MaxPrefix characters.
func ValidPrefix(p string) bool { return len(p) <= MaxPrefix && prefixRE.MatchString(p) }

// ValidSubscope reports whether s is a valid subscope: [a-zA-Z0-9._/-]+
// within a scope name of at most MaxScopeName characters.
func ValidSubscope(s string) bool { return len(s) <= MaxScopeName-2 && subscopeRE.MatchString(s) }

// ValidScopeName reports whether name is prefix:subscope with both parts
// valid and at most MaxScopeName characters in all.
func ValidScopeName(name string) bool {
	if len(name) > MaxScopeName {
		return false
	}
	for i := 0; i < len(name); i++ {
		if name[i] == ':' {
			return ValidPrefix(name[:i]) && ValidSubscope(name[i+1:])
		}
	}
	return false
}

// ValidateScopeName checks the immutable name of a scope: its prefix, its
// subscope and the whole name's length.
func ValidateScopeName(prefix, subscope string) []FieldError {
	var errs []FieldError
	if !ValidPrefix(prefix) {
		errs = append(errs, fieldError("prefix", "is required and must match [a-z0-9]+, at most %d characters", MaxPrefix)...)
	}
	switch {
	case len(prefix)+1+len(subscope) > MaxScopeName:
		errs = append(errs, fieldError("subscope", "makes the scope name longer than %d characters", MaxScopeName)...)
	case !subscopeRE.MatchString(subscope):
		errs = append(errs, fieldError("subscope", "is required and must match [a-zA-Z0-9._/-]+")...)
	}
	return errs
}

// ValidateScopeContent checks what a scope's owner may change: description
// (required), long_description, delegation_source (empty, or issuer: this
// server is the only delegation source), allowed_integration_types,
// at_max_age, visibility (empty means PUBLIC), audiences and token_binding
// (empty means none).
func ValidateScopeContent(s store.Scope, issuer string) []FieldError {
	var errs []FieldError
	if s.Description == "" {
		errs = append(errs, fieldError("description", "is required")...)
	}
	errs = append(errs, CheckDescription("description", s.Description)...)
	errs = append(errs, CheckLongDescription("long_description", s.LongDescription)...)
	if s.DelegationSource != "" && s.DelegationSource != issuer {
		errs = append(errs, fieldError("delegation_source", "must be empty (not delegable) or %q, this server", issuer)...)
	}
	errs = append(errs, checkIntegrationTypes("allowed_integration_types", s.AllowedIntegrationTypes)...)
	if s.ATMaxAge < 0 || s.ATMaxAge > MaxClientLifetime {
		errs = append(errs, fieldError("at_max_age", "must be between 0 (no cap) and %d seconds", MaxClientLifetime)...)
	}
	if s.Visibility != "" && s.Visibility != store.VisibilityPublic && s.Visibility != store.VisibilityPrivate {
		errs = append(errs, fieldError("visibility", "must be PUBLIC or PRIVATE")...)
	}
	errs = append(errs, checkAudiences("audiences", s.Audiences)...)
	if s.TokenBinding != "" && !slices.Contains(store.TokenBindings, s.TokenBinding) {
		errs = append(errs, fieldError("token_binding", "must be one of %s: the sender constraint a token for the scope needs (none: a bearer token will do; dpop: a DPoP proof; mtls: a client certificate; any: either)",
			strings.Join(store.TokenBindings, ", "))...)
	}
	return errs
}

// checkIntegrationTypes: each known type at most once (so the list is
// bounded by the number of types, checked first).
func checkIntegrationTypes(field string, types []string) []FieldError {
	if len(types) > len(IntegrationTypes) {
		return fieldError(field, "lists %d integration types; there are %d (%q), each listed at most once", len(types), len(IntegrationTypes), IntegrationTypes)
	}
	var errs []FieldError
	for i, t := range types {
		f := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case !slices.Contains(IntegrationTypes, t):
			errs = append(errs, fieldError(f, "is not an integration type; the only one is %q", protocol.IntegrationMaskinporten)...)
		case slices.Index(types, t) < i:
			errs = append(errs, fieldError(f, "%s is listed twice", t)...)
		}
	}
	return errs
}

// checkAudiences: at most MaxAudiences absolute URIs of at most 2048
// characters (protocol.ValidResource), each once.
func checkAudiences(field string, auds []string) []FieldError {
	if len(auds) > MaxAudiences {
		return fieldError(field, "lists %d audiences; a scope may list at most %d", len(auds), MaxAudiences)
	}
	var errs []FieldError
	for i, a := range auds {
		f := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case !protocol.ValidResource(a):
			errs = append(errs, fieldError(f, "is not an absolute URI of at most 2048 characters without a fragment")...)
		case slices.Index(auds, a) < i:
			errs = append(errs, fieldError(f, "is listed twice")...)
		}
	}
	return errs
}

// ValidateClient checks a client's own content: client_name, description
// (required), scopes (at most MaxClientScopes, each a well-formed scope
// name) and access_token_lifetime. Whether the client's org may list each
// scope, and duplicates, are the caller's checks, made only when this
// returns nothing for scopes; a list over the bound is refused by its
// count alone, before any item is looked at.
func ValidateClient(c store.Client) []FieldError {
	var errs []FieldError
	if c.Description == "" {
		errs = append(errs, fieldError("description", "is required")...)
	}
	errs = append(errs, CheckDescription("description", c.Description)...)
	errs = append(errs, CheckName("client_name", c.ClientName)...)
	if c.AccessTokenLifetime < 0 || c.AccessTokenLifetime > MaxClientLifetime {
		errs = append(errs, fieldError("access_token_lifetime", "must be between 0 (no cap) and %d seconds", MaxClientLifetime)...)
	}
	return append(errs, CheckClientScopes("scopes", c.Scopes)...)
}

// CheckClientScopes bounds a client's scope list: by count first (one
// problem for the whole list), then each entry's form.
func CheckClientScopes(field string, scopes []string) []FieldError {
	if len(scopes) > MaxClientScopes {
		return fieldError(field, "lists %d scopes; a client may list at most %d", len(scopes), MaxClientScopes)
	}
	var errs []FieldError
	for i, s := range scopes {
		if !ValidScopeName(s) {
			errs = append(errs, fieldError(fmt.Sprintf("%s[%d]", field, i), "is not a scope name (prefix:subscope, at most %d characters)", MaxScopeName)...)
		}
	}
	return errs
}
