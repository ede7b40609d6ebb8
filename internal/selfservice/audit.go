package selfservice

import (
	"net/http"
	"strconv"
	"time"

	"github.com/portvakt/portvakt/internal/store"
)

const (
	defaultAuditLimit = 50
	maxAuditLimit     = 500
)

// auditPage is the answer of GET /audit.
type auditPage struct {
	Events     []store.AuditEvent `json:"events"`
	NextCursor string             `json:"next_cursor"`
}

// audit is GET /audit: events concerning the caller's org, newest first.
// The cursor is the id of the last event of the previous page; an empty
// next_cursor means there are no more.
func (h *handler) audit(w http.ResponseWriter, r *http.Request, c *caller) error {
	q := r.URL.Query()
	f := store.AuditFilter{Org: c.Org, Action: q.Get("action"), Target: q.Get("target"), Limit: defaultAuditLimit}
	var errs []FieldError
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxAuditLimit {
			errs = append(errs, FieldError{"limit", "must be a number from 1 to 500"})
		}
		f.Limit = n
	}
	if v := q.Get("cursor"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			errs = append(errs, FieldError{"cursor", "must be a next_cursor from a previous page"})
		}
		f.BeforeID = n
	}
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				errs = append(errs, FieldError{p.name, "must be an RFC 3339 time, e.g. 2025-01-31T12:00:00Z"})
			}
			*p.t = t
		}
	}
	if len(errs) > 0 {
		return invalid(errs)
	}
	limit := f.Limit
	f.Limit++ // one more tells whether there is a next page
	events, err := h.store.ListAudit(r.Context(), f)
	if err != nil {
		return err
	}
	page := auditPage{Events: nonNil(events)}
	if len(events) > limit {
		page.Events = events[:limit]
		page.NextCursor = strconv.FormatInt(events[limit-1].ID, 10)
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}
