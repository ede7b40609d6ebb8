package selfservice

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/portvakt/portvakt/internal/manage"
	"github.com/portvakt/portvakt/internal/store"
)

// Every list is paged by key: ?limit= (default 100, at most 1000) and
// ?cursor=, an opaque value from the previous page's Link header
// (RFC 8288, rel="next"). Bodies stay bare arrays; a page without a Link
// header is the last one.

// pageParam reads ?limit= and ?cursor=.
func pageParam(r *http.Request) (store.Page, error) {
	q := r.URL.Query()
	var p store.Page
	var errs []FieldError
	if vs := q["limit"]; len(vs) > 0 {
		n, err := strconv.Atoi(vs[0])
		if len(vs) > 1 || err != nil || n < 1 || n > store.MaxPageLimit {
			errs = append(errs, FieldError{Field: "limit", Detail: fmt.Sprintf("must be one whole number from 1 to %d", store.MaxPageLimit)})
		}
		p.Limit = n
	}
	if vs := q["cursor"]; len(vs) > 0 {
		key, ok := manage.ParseListCursor(vs[0])
		if len(vs) > 1 || !ok {
			errs = append(errs, FieldError{Field: "cursor", Detail: "is not a cursor this list gave: follow the Link header of the previous page"})
		}
		p.After = key
	}
	if len(errs) > 0 {
		return store.Page{}, invalid(errs)
	}
	return p, nil
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
		q.Set("cursor", manage.ListCursor(got[len(got)-1].Key()))
		if q.Get("limit") == "" {
			q.Set("limit", strconv.Itoa(p.Size()))
		}
		next := strings.TrimSuffix(issuer, "/") + r.URL.Path + "?" + q.Encode()
		w.Header().Set("Link", "<"+next+`>; rel="next"`)
	}
	writeJSON(w, http.StatusOK, nonNil(got))
}

// listPage writes a page of a list whose one option is ?inactive=: list
// gets the option and the page to read (one record beyond it, see more).
func listPage[V interface{ Key() []string }](w http.ResponseWriter, r *http.Request, issuer string, list func(inactive bool, p store.Page) ([]V, error)) error {
	inactive, err := inactiveParam(r)
	if err != nil {
		return err
	}
	p, err := pageParam(r)
	if err != nil {
		return err
	}
	got, err := list(inactive, more(p))
	if err != nil {
		return err
	}
	writePage(w, r, issuer, p, got)
	return nil
}

// decodeCall reads a JSON body into In, calls the core with it and writes
// what it returns with status.
func decodeCall[In, Out any](w http.ResponseWriter, r *http.Request, status int, call func(In) (Out, error)) error {
	var in In
	if err := decodeBody(w, r, &in); err != nil {
		return err
	}
	out, err := call(in)
	if err != nil {
		return err
	}
	writeJSON(w, status, out)
	return nil
}
