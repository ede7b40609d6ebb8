package selfservice

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/portvakt/portvakt/internal/accesslog"
	"github.com/portvakt/portvakt/internal/manage"
	"github.com/portvakt/portvakt/internal/store"
)

// Problem types (RFC 9457 "type"). They are URNs: stable identifiers that
// clients can switch on, not documents to fetch.
const (
	TypeValidation   = "urn:portvakt:problem:validation"
	TypeUnauthorized = "urn:portvakt:problem:unauthorized"
	TypeForbidden    = "urn:portvakt:problem:forbidden"
	TypeNotFound     = "urn:portvakt:problem:not-found"
	TypeConflict     = "urn:portvakt:problem:conflict"
	TypeReadOnly     = "urn:portvakt:problem:read-only"
	TypeMethod       = "urn:portvakt:problem:method-not-allowed"
	TypeUnsupported  = "urn:portvakt:problem:unsupported-media-type"
	TypeUnavailable  = "urn:portvakt:problem:unavailable"
	TypeServerError  = "urn:portvakt:problem:server-error"
)

// FieldError is one problem with one field of a request body or query.
type FieldError = manage.FieldError

// maxProblems is the most field problems one problem document lists (see
// docs/selfservice.md): a body with thousands of bad entries gets a small answer.
const maxProblems = 20

// Problem is an RFC 9457 problem detail. Its public face is the JSON; cause
// is private and goes only to the access log.
type Problem struct {
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Detail string       `json:"detail"`
	Errors []FieldError `json:"errors,omitempty"`
	// ErrorsOmitted counts the field problems left out of Errors (at most
	// maxProblems are listed).
	ErrorsOmitted int `json:"errors_omitted,omitempty"`

	code      string // short code for the access log
	wwwAuth   string // WWW-Authenticate value, when set
	allow     string // Allow header for 405
	cause     error
	requestID string
}

func (p *Problem) Error() string {
	if p.cause != nil {
		return fmt.Sprintf("%d %s: %s: %v", p.Status, p.code, p.Detail, p.cause)
	}
	return fmt.Sprintf("%d %s: %s", p.Status, p.code, p.Detail)
}

func (p *Problem) Unwrap() error { return p.cause }

func newProblem(status int, typ, code, format string, args ...any) *Problem {
	return &Problem{Type: typ, Title: http.StatusText(status), Status: status, code: code, Detail: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *Problem {
	return newProblem(http.StatusBadRequest, TypeValidation, "invalid_request", format, args...)
}

// invalid is a 400 listing every field problem at once, up to maxProblems;
// the rest are counted in errors_omitted and the detail.
func invalid(errs []FieldError) *Problem {
	omitted := max(len(errs)-maxProblems, 0)
	errs = errs[:len(errs)-omitted]
	p := badRequest("the request is invalid: %s", summary(errs, omitted))
	p.Errors = errs
	p.ErrorsOmitted = omitted
	return p
}

func summary(errs []FieldError, omitted int) string {
	parts := make([]string, len(errs), len(errs)+1)
	for i, e := range errs {
		parts[i] = e.Field + ": " + e.Detail
	}
	if omitted > 0 {
		parts = append(parts, fmt.Sprintf("and %d more problems, left out", omitted))
	}
	return strings.Join(parts, "; ")
}

func notFound(format string, args ...any) *Problem {
	return newProblem(http.StatusNotFound, TypeNotFound, "not_found", format, args...)
}

func conflict(format string, args ...any) *Problem {
	return newProblem(http.StatusConflict, TypeConflict, "conflict", format, args...)
}

func forbidden(format string, args ...any) *Problem {
	return newProblem(http.StatusForbidden, TypeForbidden, "forbidden", format, args...)
}

// unauthorized is a 401. With a token sent, RFC 6750 asks for
// error="invalid_token"; without one, a bare challenge.
func unauthorized(tokenSent bool, cause error, format string, args ...any) *Problem {
	p := newProblem(http.StatusUnauthorized, TypeUnauthorized, "invalid_token", format, args...)
	p.wwwAuth = "Bearer"
	if tokenSent {
		p.wwwAuth = `Bearer error="invalid_token"`
	} else {
		p.code = "missing_token"
	}
	p.cause = cause
	return p
}

// insufficientScope is the 403 for a token without the admin scope the
// endpoint needs.
func insufficientScope(scopes []string) *Problem {
	p := newProblem(http.StatusForbidden, TypeForbidden, "insufficient_scope",
		"this endpoint needs an access token with the scope %s; ask for it in your token request", strings.Join(scopes, " or "))
	p.wwwAuth = `Bearer error="insufficient_scope", scope="` + scopes[0] + `"`
	return p
}

// writeError is the one place errors become responses.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	var p *Problem
	switch {
	case errors.As(err, &p):
		// p carries its own cause.
	case errors.As(err, new(*manage.Error)):
		p = fromCore(err)
	case errors.Is(err, store.ErrUnavailable):
		p = newProblem(http.StatusServiceUnavailable, TypeUnavailable, "temporarily_unavailable",
			"the service cannot reach its database; try again shortly")
		p.cause = err
	case errors.Is(err, store.ErrReadOnly):
		p = newProblem(http.StatusConflict, TypeReadOnly, "read_only",
			"the record is declared in the server's configuration file and cannot be changed through the API; ask the platform operator")
		p.cause = err
	default:
		p = newProblem(http.StatusInternalServerError, TypeServerError, "server_error",
			"an unexpected error occurred; try again, and report the request id if it persists")
		p.cause = err
	}
	entry := accesslog.From(r.Context())
	entry.SetError(p.code, p.cause)
	if p.wwwAuth != "" {
		w.Header().Set("WWW-Authenticate", p.wwwAuth)
	}
	if p.allow != "" {
		w.Header().Set("Allow", p.allow)
	}
	if p.Status >= 500 {
		p.Detail += " (request_id: " + entry.RequestID + ")"
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// fieldErrors returns the field errors of a validation problem (nil for nil).
func fieldErrors(err error) []FieldError {
	var p *Problem
	if errors.As(err, &p) {
		return p.Errors
	}
	return nil
}

// fromCore presents a refusal of the core as a problem.
func fromCore(err error) *Problem {
	var e *manage.Error
	errors.As(err, &e)
	switch e.Kind {
	case manage.Invalid:
		return invalid(e.Fields)
	case manage.NotFound:
		return notFound("%s", e.Detail)
	case manage.Conflict:
		return conflict("%s", e.Detail)
	case manage.InsufficientScope:
		return insufficientScope(e.Need)
	default:
		return forbidden("%s", e.Detail)
	}
}
