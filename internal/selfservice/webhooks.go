package selfservice

import (
	"net/http"

	"github.com/portvakt/portvakt/internal/manage"
)

func (h *handler) createWebhook(w http.ResponseWriter, r *http.Request, a *manage.Actor) error {
	var in manage.WebhookInput
	if err := decodeBody(w, r, &in); err != nil {
		return err
	}
	out, err := h.core.CreateWebhook(r.Context(), a, in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (h *handler) listWebhooks(w http.ResponseWriter, r *http.Request, a *manage.Actor) error {
	inactive, err := inactiveParam(r)
	if err != nil {
		return err
	}
	p, err := pageParam(r)
	if err != nil {
		return err
	}
	got, err := h.core.ListWebhooks(r.Context(), a, inactive, more(p))
	if err != nil {
		return err
	}
	writePage(w, r, h.cfg.Issuer, p, got)
	return nil
}

// getWebhook is GET /webhooks/{id}: the webhook and its latest delivery
// attempts.
func (h *handler) getWebhook(w http.ResponseWriter, r *http.Request, a *manage.Actor) error {
	out, err := h.core.GetWebhook(r.Context(), a, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *handler) updateWebhook(w http.ResponseWriter, r *http.Request, a *manage.Actor) error {
	var in manage.WebhookInput
	if err := decodeBody(w, r, &in); err != nil {
		return err
	}
	out, err := h.core.UpdateWebhook(r.Context(), a, r.PathValue("id"), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *handler) deleteWebhook(w http.ResponseWriter, r *http.Request, a *manage.Actor) error {
	if err := h.core.DeactivateWebhook(r.Context(), a, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
