package dpop

import "errors"

// ErrInvalidProof matches every *Error with errors.Is.
var ErrInvalidProof = errors.New("dpop: invalid proof")

// ErrUseNonce matches, with errors.Is, the *Error of a proof refused only
// for its nonce (missing, stale or not the server's): the caller should
// retry with the nonce in the DPoP-Nonce response header.
var ErrUseNonce = errors.New("dpop: use the server's nonce")

// Error is a proof that failed. Description says what was wrong in words
// fit for the caller; Cause, if any, is for the log.
type Error struct {
	Description string
	Cause       error
	// Nonce is set when the nonce alone was wrong (use_dpop_nonce).
	Nonce bool
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return "dpop: " + e.Description + ": " + e.Cause.Error()
	}
	return "dpop: " + e.Description
}

func (e *Error) Unwrap() error { return e.Cause }

// Is makes errors.Is(err, ErrInvalidProof) hold, and errors.Is(err,
// ErrUseNonce) for a nonce error.
func (e *Error) Is(target error) bool {
	return target == ErrInvalidProof || target == ErrUseNonce && e.Nonce
}

// Code is the error code to answer with: invalid_dpop_proof or
// use_dpop_nonce.
func (e *Error) Code() string {
	if e.Nonce {
		return CodeUseNonce
	}
	return CodeInvalidProof
}

func invalid(desc string, cause error) *Error { return &Error{Description: desc, Cause: cause} }

func useNonce(desc string) *Error { return &Error{Description: desc, Nonce: true} }
