package manage

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
)

// Cursors are opaque to callers: base64url of a small JSON value. A list's
// cursor is the key of the last record of a page (record.Key()); the audit
// trail's is auditCursor.

// maxCursor bounds a cursor before it is decoded.
const maxCursor = 2048

// encodeCursor makes an opaque cursor of v.
func encodeCursor(v any) string {
	b, _ := json.Marshal(v) // cursors hold plain fields, which always encode
	return base64.RawURLEncoding.EncodeToString(b)
}

// readCursor decodes a cursor made by encodeCursor into v, refusing
// anything else (too long, bad base64, bad JSON, unknown fields, anything
// after the value).
func readCursor(s string, v any) bool {
	if len(s) > maxCursor {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if dec.Decode(v) != nil {
		return false
	}
	_, err = dec.Token()
	return err == io.EOF
}

// ListCursor is the cursor of a list page ending at the record with key.
func ListCursor(key []string) string { return encodeCursor(key) }

// ParseListCursor reads a list's cursor: a JSON array of 1 to 3 strings of
// at most 255 bytes (the longest key is a delegation's).
func ParseListCursor(s string) ([]string, bool) {
	var key []string
	if s == "" || !readCursor(s, &key) || len(key) < 1 || len(key) > 3 {
		return nil, false
	}
	for _, k := range key {
		if len(k) > 255 {
			return nil, false
		}
	}
	return key, true
}
