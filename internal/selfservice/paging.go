package selfservice

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/portvakt/portvakt/internal/store"
)

// Every list is paged by key: ?limit= (default 100, at most 1000) and
// ?cursor=, an opaque value from the previous page's Link header
// (RFC 8288, rel="next"). Bodies stay bare arrays; a page without a Link
// header is the last one.

// maxCursor bounds the cursor parameter before it is decoded.
const maxCursor = 2048

// pageParam reads ?limit= and ?cursor=.
func pageParam(r *http.Request) (store.Page, error) {
	q := r.URL.Query()
	var p store.Page
	var errs []FieldError
	if vs := q["limit"]; len(vs) > 0 {
		n, err := strconv.Atoi(vs[0])
		if len(vs) > 1 || err != nil || n < 1 || n > store.MaxPageLimit {
			errs = append(errs, FieldError{"limit", fmt.Sprintf("must be one whole number from 1 to %d", store.MaxPageLimit)})
		}
		p.Limit = n
	}
	if vs := q["cursor"]; len(vs) > 0 {
		key, ok := decodeCursor(vs[0])
		if len(vs) > 1 || !ok {
			errs = append(errs, FieldError{"cursor", "is not a cursor this list gave: follow the Link header of the previous page"})
		}
		p.After = key
	}
	if len(errs) > 0 {
		return store.Page{}, invalid(errs)
	}
	return p, nil
}

// encodeCursor makes an opaque cursor of v: base64url of its JSON. The
// lists and the audit view share it.
func encodeCursor(v any) string {
	b, _ := json.Marshal(v) // cursors hold plain fields, which always encode
	return base64.RawURLEncoding.EncodeToString(b)
}

// readCursor decodes a cursor made by encodeCursor into v, refusing
// anything else (bad base64, bad JSON, unknown fields, anything after the
// value).
func readCursor(s string, v any) bool {
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

// decodeCursor reads a list's cursor: a JSON array of 1 to 3 short strings
// (the longest key is a delegation's).
func decodeCursor(s string) ([]string, bool) {
	var key []string
	if s == "" || len(s) > maxCursor || !readCursor(s, &key) || len(key) < 1 || len(key) > 3 {
		return nil, false
	}
	for _, k := range key {
		if len(k) > 255 {
			return nil, false
		}
	}
	return key, true
}

// more asks the store for one record beyond the page, to know whether a
// next page exists without a second query.
func more(p store.Page) store.Page { return store.Page{After: p.After, Limit: p.Size() + 1} }

// writePage writes the page (got holds up to p.Size()+1 records, fetched
// with more) as a bare array, with a Link to the next page when there is one.
func writePage[V interface{ Key() []string }](w http.ResponseWriter, r *http.Request, issuer string, p store.Page, got []V) {
	if len(got) > p.Size() {
		got = got[:p.Size()]
		q := r.URL.Query()
		q.Set("cursor", encodeCursor(got[len(got)-1].Key()))
		if q.Get("limit") == "" {
			q.Set("limit", strconv.Itoa(p.Size()))
		}
		next := strings.TrimSuffix(issuer, "/") + r.URL.Path + "?" + q.Encode()
		w.Header().Set("Link", "<"+next+`>; rel="next"`)
	}
	writeJSON(w, http.StatusOK, nonNil(got))
}
