package selfservice

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/portvakt/portvakt/internal/manage"
	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/store"
)

// --- prefixes (platform admin) ---

func (h *handler) putPrefix(w http.ResponseWriter, r *http.Request, a *manage.Actor) error {
	return decodeCall(w, r, http.StatusOK, func(in manage.PrefixInput) (store.Prefix, error) {
		return h.core.AssignPrefix(r.Context(), a, r.PathValue("prefix"), in)
	})
}

func (h *handler) listPrefixes(w http.ResponseWriter, r *http.Request, a *manage.Actor) error {
	p, err := pageParam(r)
	if err != nil {
		return err
	}
	got, err := h.core.ListPrefixes(r.Context(), a, more(p))
	if err != nil {
		return err
	}
	writePage(w, r, h.cfg.Issuer, p, got)
	return nil
}

// --- scopes ---

func (h *handler) createScope(w http.ResponseWriter, r *http.Request, a *manage.Actor) error {
	return decodeCall(w, r, http.StatusCreated, func(in manage.ScopeInput) (store.Scope, error) {
		return h.core.CreateScope(r.Context(), a, in)
	})
}

// getScopes is GET /scopes: one scope with ?scope=, else the caller's own.
func (h *handler) getScopes(w http.ResponseWriter, r *http.Request, a *manage.Actor) error {
	if r.URL.Query().Has("scope") {
		name, err := scopeParam(r)
		if err != nil {
			return err
		}
		sc, err := h.core.GetScope(r.Context(), a, name)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, sc)
		return nil
	}
	return listPage(w, r, h.cfg.Issuer, func(inactive bool, p store.Page) ([]store.Scope, error) {
		return h.core.ListScopes(r.Context(), a, inactive, p)
	})
}

func (h *handler) updateScope(w http.ResponseWriter, r *http.Request, a *manage.Actor) error {
	name, err := scopeParam(r)
	if err != nil {
		return err
	}
	var in manage.ScopeInput
	if err := decodeBody(w, r, &in); err != nil {
		return err
	}
	out, err := h.core.UpdateScope(r.Context(), a, name, in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *handler) deleteScope(w http.ResponseWriter, r *http.Request, a *manage.Actor) error {
	name, err := scopeParam(r)
	if err != nil {
		return err
	}
	if err := h.core.DeactivateScope(r.Context(), a, name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// allScopes is GET /scopes/all: the catalogue, searched with ?q=.
func (h *handler) allScopes(w http.ResponseWriter, r *http.Request, a *manage.Actor) error {
	p, err := pageParam(r)
	if err != nil {
		return err
	}
	query, err := queryParam(r)
	if err != nil {
		return err
	}
	got, err := h.core.Catalogue(r.Context(), a, query, more(p))
	if err != nil {
		return err
	}
	writePage(w, r, h.cfg.Issuer, p, got)
	return nil
}

// queryParam reads the optional ?q= search of /scopes/all.
func queryParam(r *http.Request) (string, error) {
	vs := r.URL.Query()["q"]
	switch {
	case len(vs) == 0:
		return "", nil
	case len(vs) > 1 || len(vs[0]) > manage.MaxQuery:
		return "", invalid([]FieldError{{Field: "q", Detail: fmt.Sprintf("must be given once, at most %d characters", manage.MaxQuery)}})
	}
	return vs[0], nil
}

// --- access (the provider's allow-list) ---

func (h *handler) grantAccess(w http.ResponseWriter, r *http.Request, a *manage.Actor) error {
	name, org, in, err := accessParams(w, r)
	if err != nil {
		return err
	}
	out, err := h.core.GrantAccess(r.Context(), a, name, org, in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *handler) revokeAccess(w http.ResponseWriter, r *http.Request, a *manage.Actor) error {
	name, org, in, err := accessParams(w, r)
	if err != nil {
		return err
	}
	if _, err := h.core.RevokeAccess(r.Context(), a, name, org, in); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// getAccess is GET /scopes/access/{org}?scope=: one row of the allow-list,
// in any state.
func (h *handler) getAccess(w http.ResponseWriter, r *http.Request, a *manage.Actor) error {
	name, err := scopeParam(r)
	if err != nil {
		return invalid(append(records.CheckOrg("org", r.PathValue("org")), fieldErrors(err)...))
	}
	row, err := h.core.GetAccess(r.Context(), a, name, r.PathValue("org"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, row)
	return nil
}

// accessParams reads ?scope=, the {org} of the path, and the optional body
// {"reason"}; when the scope is missing, the org's problem is listed with it.
func accessParams(w http.ResponseWriter, r *http.Request) (scope, org string, in manage.AccessInput, err error) {
	org = r.PathValue("org")
	scope, err = scopeParam(r)
	if err != nil {
		return "", "", in, invalid(append(records.CheckOrg("org", org), fieldErrors(err)...))
	}
	if err := decodeOptionalBody(w, r, &in); err != nil {
		return "", "", in, err
	}
	return scope, org, in, nil
}

// listAccess is GET /scopes/access: the allow-list of one of the caller's
// scopes (?scope=), or of all of them; ?state= filters (REQUESTED is the
// inbox).
func (h *handler) listAccess(w http.ResponseWriter, r *http.Request, a *manage.Actor) error {
	var name string
	if r.URL.Query().Has("scope") {
		var err error
		if name, err = scopeParam(r); err != nil {
			return err
		}
	}
	q, err := accessQuery(r)
	if err != nil {
		return err
	}
	p, err := pageParam(r)
	if err != nil {
		return err
	}
	got, err := h.core.ListAccess(r.Context(), a, name, q, more(p))
	if err != nil {
		return err
	}
	writePage(w, r, h.cfg.Issuer, p, got)
	return nil
}

// myAccess is GET /scopes/access/all: the caller's org's own access rows.
func (h *handler) myAccess(w http.ResponseWriter, r *http.Request, a *manage.Actor) error {
	q, err := accessQuery(r)
	if err != nil {
		return err
	}
	p, err := pageParam(r)
	if err != nil {
		return err
	}
	got, err := h.core.MyAccess(r.Context(), a, q, more(p))
	if err != nil {
		return err
	}
	writePage(w, r, h.cfg.Issuer, p, got)
	return nil
}

// accessQuery reads ?inactive= and ?state= (repeated, or comma-separated).
func accessQuery(r *http.Request) (manage.AccessQuery, error) {
	inactive, err := inactiveParam(r)
	if err != nil {
		return manage.AccessQuery{}, err
	}
	q := manage.AccessQuery{Inactive: inactive}
	for _, v := range r.URL.Query()["state"] {
		q.States = append(q.States, strings.Split(v, ",")...)
	}
	return q, nil
}

// requestBody is the body of POST /scopes/access/requests.
type requestBody struct {
	Scope  string `json:"scope"`
	Reason string `json:"reason"`
}

// requestAccess is POST /scopes/access/requests: the caller's org asks for
// a scope.
func (h *handler) requestAccess(w http.ResponseWriter, r *http.Request, a *manage.Actor) error {
	var b requestBody
	if err := decodeBody(w, r, &b); err != nil {
		return err
	}
	out, err := h.core.RequestAccess(r.Context(), a, b.Scope, manage.AccessInput{Reason: b.Reason})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// withdrawRequest is DELETE /scopes/access/requests?scope=.
func (h *handler) withdrawRequest(w http.ResponseWriter, r *http.Request, a *manage.Actor) error {
	name, err := scopeParam(r)
	if err != nil {
		return err
	}
	if _, err := h.core.WithdrawRequest(r.Context(), a, name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// getRequest is GET /scopes/access/requests?scope=: the caller's org's own
// row for the scope, in any state.
func (h *handler) getRequest(w http.ResponseWriter, r *http.Request, a *manage.Actor) error {
	name, err := scopeParam(r)
	if err != nil {
		return err
	}
	row, err := h.core.GetRequest(r.Context(), a, name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, row)
	return nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
