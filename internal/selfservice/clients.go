package selfservice

import (
	"net/http"

	"github.com/portvakt/portvakt/internal/manage"
	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/store"
)

// decodeClient reads a client body, refusing one whose scope list is over
// the bound right after decoding, before any other check.
func decodeClient(w http.ResponseWriter, r *http.Request) (manage.ClientInput, error) {
	var in manage.ClientInput
	if err := decodeBody(w, r, &in); err != nil {
		return in, err
	}
	return in, in.TooLarge()
}

// createClient is POST /clients.
func (h *handler) createClient(w http.ResponseWriter, r *http.Request, a *manage.Actor) error {
	in, err := decodeClient(w, r)
	if err != nil {
		return err
	}
	out, err := h.core.CreateClient(r.Context(), a, in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (h *handler) listClients(w http.ResponseWriter, r *http.Request, a *manage.Actor) error {
	return listPage(w, r, h.cfg.Issuer, func(inactive bool, p store.Page) ([]store.Client, error) {
		return h.core.ListClients(r.Context(), a, inactive, p)
	})
}

func (h *handler) getClient(w http.ResponseWriter, r *http.Request, a *manage.Actor) error {
	cl, err := h.core.GetClient(r.Context(), a, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, cl)
	return nil
}

func (h *handler) updateClient(w http.ResponseWriter, r *http.Request, a *manage.Actor) error {
	in, err := decodeClient(w, r)
	if err != nil {
		return err
	}
	out, err := h.core.UpdateClient(r.Context(), a, r.PathValue("id"), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *handler) deleteClient(w http.ResponseWriter, r *http.Request, a *manage.Actor) error {
	if err := h.core.DeactivateClient(r.Context(), a, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// --- keys ---

func (h *handler) getJWKS(w http.ResponseWriter, r *http.Request, a *manage.Actor) error {
	cl, err := h.core.GetClient(r.Context(), a, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, manage.KeySet(cl))
	return nil
}

// putJWKS is POST /clients/{id}/jwks: the set replaces the client's keys.
func (h *handler) putJWKS(w http.ResponseWriter, r *http.Request, a *manage.Actor) error {
	return decodeCall(w, r, http.StatusOK, func(in manage.JWKS) (manage.JWKS, error) {
		out, err := h.core.ReplaceKeys(r.Context(), a, r.PathValue("id"), in.Keys)
		return manage.KeySet(out), err
	})
}

func (h *handler) deleteJWKS(w http.ResponseWriter, r *http.Request, a *manage.Actor) error {
	if err := h.core.DeleteKeys(r.Context(), a, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// --- delegations ---

// putDelegation is PUT /delegations/{supplier_org}?scope=: the caller's org
// (the consumer) lets the supplier (a vendor) get the scope on its behalf.
func (h *handler) putDelegation(w http.ResponseWriter, r *http.Request, a *manage.Actor) error {
	name, supplier, err := delegationParams(r)
	if err != nil {
		return err
	}
	out, err := h.core.GiveDelegation(r.Context(), a, name, supplier)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *handler) revokeDelegation(w http.ResponseWriter, r *http.Request, a *manage.Actor) error {
	name, supplier, err := delegationParams(r)
	if err != nil {
		return err
	}
	if err := h.core.RevokeDelegation(r.Context(), a, name, supplier); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// getDelegation is GET /delegations/{supplier_org}?scope=: a delegation the
// caller's org gave, in any state.
func (h *handler) getDelegation(w http.ResponseWriter, r *http.Request, a *manage.Actor) error {
	name, supplier, err := delegationParams(r)
	if err != nil {
		return err
	}
	row, err := h.core.GetDelegation(r.Context(), a, name, supplier)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, row)
	return nil
}

// delegationParams reads ?scope= and the {supplier_org} of the path; when
// the scope is missing, the org's problem is listed with it.
func delegationParams(r *http.Request) (scope, supplier string, err error) {
	supplier = r.PathValue("supplier_org")
	scope, err = scopeParam(r)
	if err != nil {
		return "", "", invalid(append(fieldErrors(err), records.CheckOrg("supplier_org", supplier)...))
	}
	return scope, supplier, nil
}

// listDelegations is GET /delegations: those the caller's org gave (as the
// consumer) and those it received (as the supplier).
func (h *handler) listDelegations(w http.ResponseWriter, r *http.Request, a *manage.Actor) error {
	return listPage(w, r, h.cfg.Issuer, func(inactive bool, p store.Page) ([]store.Delegation, error) {
		return h.core.ListDelegations(r.Context(), a, inactive, p)
	})
}
