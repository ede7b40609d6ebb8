package manage

import (
	"fmt"
	"strings"

	"github.com/portvakt/portvakt/internal/records"
)

// Kind says what went wrong, for the shells to present.
type Kind int

const (
	// Invalid: the input breaks a rule; Fields names each problem.
	Invalid Kind = iota + 1
	// Forbidden: the actor may not do this (a vendor's bounds, a prefix
	// that is not its own).
	Forbidden
	// NotFound: no such record, or another org's.
	NotFound
	// Conflict: the record's state does not allow it.
	Conflict
	// InsufficientScope: the actor holds none of the admin scopes in Need.
	InsufficientScope
)

// FieldError is one problem with one field of an input.
type FieldError = records.FieldError

// Error is an operation's refusal. Detail is public: it says what to fix.
type Error struct {
	Kind   Kind
	Detail string
	// Fields are the field problems of an Invalid error, every one found.
	Fields []FieldError
	// Need are the admin scopes of an InsufficientScope error, any one of
	// which would do; the first is the one to ask for.
	Need []string
}

func (e *Error) Error() string {
	if len(e.Fields) > 0 {
		parts := make([]string, len(e.Fields))
		for i, f := range e.Fields {
			parts[i] = f.Error()
		}
		return e.Detail + ": " + strings.Join(parts, "; ")
	}
	return e.Detail
}

func newError(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Detail: fmt.Sprintf(format, args...)}
}

func forbidden(format string, args ...any) *Error { return newError(Forbidden, format, args...) }
func notFound(format string, args ...any) *Error  { return newError(NotFound, format, args...) }
func conflict(format string, args ...any) *Error  { return newError(Conflict, format, args...) }

// invalid is the refusal of an input with field problems.
func invalid(fields []FieldError) *Error {
	return &Error{Kind: Invalid, Detail: "the request is invalid", Fields: fields}
}

func field(name, format string, args ...any) FieldError {
	return FieldError{Field: name, Detail: fmt.Sprintf(format, args...)}
}
