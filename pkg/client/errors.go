package client

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Error is an OAuth error from the token endpoint (RFC 6749 section 5.2).
// Code is the error code ("invalid_scope", ...); when the body was not an
// OAuth error, Code is empty and Description holds the start of the body.
//
//	var oe *client.Error
//	if errors.As(err, &oe) && oe.Code == "invalid_scope" { ... }
type Error struct {
	StatusCode  int
	Code        string
	Description string
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "client: token endpoint: HTTP %d", e.StatusCode)
	if e.Code != "" {
		b.WriteString(": " + e.Code)
	}
	if e.Description != "" {
		b.WriteString(": " + e.Description)
	}
	return b.String()
}

const maxDescription = 512

func parseError(status int, body []byte) *Error {
	e := &Error{StatusCode: status}
	var v struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	if json.Unmarshal(body, &v) == nil && v.Error != "" {
		e.Code, e.Description = v.Error, v.ErrorDescription
		return e
	}
	s := strings.TrimSpace(string(body))
	if len(s) > maxDescription {
		s = s[:maxDescription]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "..."
	}
	e.Description = s
	return e
}
