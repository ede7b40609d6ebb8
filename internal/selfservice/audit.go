package selfservice

import (
	"net/http"

	"github.com/portvakt/portvakt/internal/manage"
)

// audit is GET /audit: the events concerning the caller's org, newest first
// (manage.Service.Audit, which reads and checks the query).
func (h *handler) audit(w http.ResponseWriter, r *http.Request, a *manage.Actor) error {
	q := r.URL.Query()
	page, err := h.core.Audit(r.Context(), a, manage.AuditQuery{
		Limit: q.Get("limit"), Cursor: q.Get("cursor"), From: q.Get("from"), To: q.Get("to"),
		Action: q.Get("action"), Target: q.Get("target"), Scope: q.Get("scope"), ClientID: q.Get("client_id"),
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}
