package protocol

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// OAuth 2.0 error codes (RFC 6749 section 5.2, RFC 8707 section 2).
const (
	CodeInvalidRequest         = "invalid_request"
	CodeInvalidGrant           = "invalid_grant"
	CodeInvalidScope           = "invalid_scope"
	CodeInvalidTarget          = "invalid_target"
	CodeUnsupportedGrantType   = "unsupported_grant_type"
	CodeTemporarilyUnavailable = "temporarily_unavailable"
	CodeServerError            = "server_error"
	CodeInvalidClient          = "invalid_client"
	// RFC 9449 sections 5 and 8.
	CodeInvalidDPoPProof = "invalid_dpop_proof"
	CodeUseDPoPNonce     = "use_dpop_nonce"
)

// Error is a protocol error. Code, Status and Description are the public face
// sent to the client; Cause is private and goes only to the log. Constructors
// return fresh values, so callers may attach a cause without sharing state.
type Error struct {
	Code        string
	Status      int
	Description string
	Cause       error
	// RetryAfter, when positive, is sent as the Retry-After header (in whole
	// seconds, rounded up): how long a rate-limited client should wait.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return e.Code + ": " + e.Description + ": " + e.Cause.Error()
	}
	return e.Code + ": " + e.Description
}

func (e *Error) Unwrap() error { return e.Cause }

// WithCause returns a copy of e carrying the private cause err.
func (e *Error) WithCause(err error) *Error {
	c := *e
	c.Cause = err
	return &c
}

func newError(code string, status int, format string, args []any) *Error {
	d := format
	if len(args) > 0 {
		d = fmt.Sprintf(format, args...)
	}
	return &Error{Code: code, Status: status, Description: d}
}

// InvalidRequest is a malformed request (400 invalid_request).
func InvalidRequest(format string, args ...any) *Error {
	return newError(CodeInvalidRequest, http.StatusBadRequest, format, args)
}

// InvalidGrant is an assertion that cannot be accepted (400 invalid_grant).
func InvalidGrant(format string, args ...any) *Error {
	return newError(CodeInvalidGrant, http.StatusBadRequest, format, args)
}

// InvalidScope is a scope request that cannot be granted (400 invalid_scope).
func InvalidScope(format string, args ...any) *Error {
	return newError(CodeInvalidScope, http.StatusBadRequest, format, args)
}

// InvalidTarget is a bad or disallowed resource indicator (400 invalid_target).
func InvalidTarget(format string, args ...any) *Error {
	return newError(CodeInvalidTarget, http.StatusBadRequest, format, args)
}

// InvalidDPoPProof is a DPoP proof that cannot be accepted (400
// invalid_dpop_proof).
func InvalidDPoPProof(format string, args ...any) *Error {
	return newError(CodeInvalidDPoPProof, http.StatusBadRequest, format, args)
}

// UseDPoPNonce is a DPoP proof without the server's current nonce (400
// use_dpop_nonce); the answer carries the nonce in DPoP-Nonce.
func UseDPoPNonce(format string, args ...any) *Error {
	return newError(CodeUseDPoPNonce, http.StatusBadRequest, format, args)
}

// UnsupportedGrantType is any grant type but the JWT bearer grant.
func UnsupportedGrantType(format string, args ...any) *Error {
	return newError(CodeUnsupportedGrantType, http.StatusBadRequest, format, args)
}

// TemporarilyUnavailable is a dependency (the store) that cannot be reached (503).
func TemporarilyUnavailable(cause error) *Error {
	e := newError(CodeTemporarilyUnavailable, http.StatusServiceUnavailable,
		"The service is temporarily unavailable; try again shortly", nil)
	e.Cause = cause
	return e
}

// RateLimited is a request over a rate limit (429 temporarily_unavailable):
// the description says whose limit it was, retryAfter when to try again.
func RateLimited(retryAfter time.Duration, format string, args ...any) *Error {
	e := newError(CodeTemporarilyUnavailable, http.StatusTooManyRequests, format, args)
	e.RetryAfter = retryAfter
	return e
}

// RetryAfterSeconds is RetryAfter in whole seconds, rounded up and at least
// 1 (0 when RetryAfter is not set).
func (e *Error) RetryAfterSeconds() int64 {
	if e.RetryAfter <= 0 {
		return 0
	}
	return max(1, int64((e.RetryAfter+time.Second-1)/time.Second))
}

// ServerError is anything unexpected (500). The description is always generic.
func ServerError(cause error) *Error {
	e := newError(CodeServerError, http.StatusInternalServerError,
		"An unexpected error occurred", nil)
	e.Cause = cause
	return e
}

// AsError returns err as a protocol error: itself when it is (or wraps) one,
// otherwise a generic server_error carrying err as its private cause.
func AsError(err error) *Error {
	var pe *Error
	if errors.As(err, &pe) {
		return pe
	}
	return ServerError(err)
}
