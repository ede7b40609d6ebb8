package selfservice

import (
	"net/http"

	"github.com/portvakt/portvakt/internal/manage"
	"github.com/portvakt/portvakt/internal/store"
)

// The members of the caller's org: who may act for it in the web console.
// {subject} is path-escaped (a subject may hold a slash: %2F).

func (h *handler) listMembers(w http.ResponseWriter, r *http.Request, a *manage.Actor) error {
	p, err := pageParam(r)
	if err != nil {
		return err
	}
	got, err := h.core.ListMembers(r.Context(), a, more(p))
	if err != nil {
		return err
	}
	writePage(w, r, h.cfg.Issuer, p, got)
	return nil
}

func (h *handler) getMember(w http.ResponseWriter, r *http.Request, a *manage.Actor) error {
	m, err := h.core.GetMember(r.Context(), a, r.PathValue("subject"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

// putMember is PUT /members/{subject}: 200 with the member, whether it was
// made or its roles replaced.
func (h *handler) putMember(w http.ResponseWriter, r *http.Request, a *manage.Actor) error {
	return decodeCall(w, r, http.StatusOK, func(in manage.MemberInput) (store.Member, error) {
		m, _, err := h.core.PutMember(r.Context(), a, r.PathValue("subject"), in)
		return m, err
	})
}

func (h *handler) deleteMember(w http.ResponseWriter, r *http.Request, a *manage.Actor) error {
	if err := h.core.DeleteMember(r.Context(), a, r.PathValue("subject")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
