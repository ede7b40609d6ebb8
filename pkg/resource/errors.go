package resource

import (
	"errors"

	"github.com/golang-jwt/jwt/v5"
)

// ErrInvalidToken matches every *TokenError with errors.Is.
var ErrInvalidToken = errors.New("invalid token")

// ErrTokenExpired matches, with errors.Is, the *TokenError of a token
// refused because its exp has passed: the one failure a caller can fix by
// getting a new token.
var ErrTokenExpired = errors.New("token expired")

// TokenError is a token that failed verification. Description says what was
// wrong in words fit for the caller (the middleware sends it as
// error_description); Cause, if any, is for the log.
type TokenError struct {
	Description string
	Cause       error
}

func (e *TokenError) Error() string {
	if e.Cause != nil {
		return "resource: invalid token: " + e.Description + ": " + e.Cause.Error()
	}
	return "resource: invalid token: " + e.Description
}

func (e *TokenError) Unwrap() error { return e.Cause }

// Is makes errors.Is(err, ErrInvalidToken) hold, and errors.Is(err,
// ErrTokenExpired) for an expired token.
func (e *TokenError) Is(target error) bool {
	return target == ErrInvalidToken || target == ErrTokenExpired && errors.Is(e.Cause, jwt.ErrTokenExpired)
}

func invalid(desc string, cause error) *TokenError {
	return &TokenError{Description: desc, Cause: cause}
}

// describe turns a golang-jwt error into a TokenError with a fixed
// description, keeping ours when the key function produced it.
func describe(err error) *TokenError {
	var te *TokenError
	if errors.As(err, &te) {
		return te
	}
	var d string
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		d = "malformed token"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		d = "invalid signature"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		d = "signature algorithm not allowed"
	case errors.Is(err, jwt.ErrTokenExpired):
		d = "token expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		d = "token not valid yet"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		d = "token issued in the future"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		d = "wrong issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		d = "token not meant for this audience"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		d = "required claim missing"
	default:
		d = "token rejected"
	}
	return invalid(d, err)
}
