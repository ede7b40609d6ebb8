package selfservice

import (
	"net/http"

	"github.com/portvakt/portvakt/internal/manage"
	"github.com/portvakt/portvakt/internal/store"
)

func (h *handler) createWebhook(w http.ResponseWriter, r *http.Request, a *manage.Actor) error {
	return decodeCall(w, r, http.StatusCreated, func(in manage.WebhookInput) (store.Webhook, error) {
		return h.core.CreateWebhook(r.Context(), a, in)
	})
}

func (h *handler) listWebhooks(w http.ResponseWriter, r *http.Request, a *manage.Actor) error {
	return listPage(w, r, h.cfg.Issuer, func(inactive bool, p store.Page) ([]store.Webhook, error) {
		return h.core.ListWebhooks(r.Context(), a, inactive, p)
	})
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
	return decodeCall(w, r, http.StatusOK, func(in manage.WebhookInput) (store.Webhook, error) {
		return h.core.UpdateWebhook(r.Context(), a, r.PathValue("id"), in)
	})
}

func (h *handler) deleteWebhook(w http.ResponseWriter, r *http.Request, a *manage.Actor) error {
	if err := h.core.DeactivateWebhook(r.Context(), a, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
