package selfservice

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/portvakt/portvakt/internal/access"
	"github.com/portvakt/portvakt/internal/norid"
	"github.com/portvakt/portvakt/internal/protocol"
	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/store"
)

// clientBody is a client as sent by a caller. Read-only fields are
// accepted so a GET result can be sent back; when present they must match.
// Keys are managed through /clients/{id}/jwks: a keys field is ignored.
type clientBody struct {
	ClientID                *string         `json:"client_id"`
	ClientOrgno             string          `json:"client_orgno"`
	ClientName              string          `json:"client_name"`
	Description             string          `json:"description"`
	IntegrationType         string          `json:"integration_type"`
	TokenEndpointAuthMethod string          `json:"token_endpoint_auth_method"`
	Scopes                  []string        `json:"scopes"`
	AccessTokenLifetime     int             `json:"access_token_lifetime"`
	ManagedBy               *string         `json:"managed_by"`
	Active                  *bool           `json:"active"`
	Keys                    json.RawMessage `json:"keys"`
	Created                 json.RawMessage `json:"created"`
	LastUpdated             json.RawMessage `json:"last_updated"`
}

// validate checks the fields every client body shares; org is the client's
// owner, whose reach decides the scopes. Scopes in keep (already on the
// client) are not checked again: losing access to one makes the token
// endpoint refuse it, and must not block editing the client's other fields.
// It runs inside the write transaction, over its records (txRecords).
func (b *clientBody) validate(recs access.SupplierRecords, org string, keep []string) []FieldError {
	errs := b.content()
	if len(b.Scopes) > records.MaxClientScopes {
		return errs // refused by count: no per-scope work
	}
	for i, s := range b.Scopes {
		field := fmt.Sprintf("scopes[%d]", i)
		switch {
		case !records.ValidScopeName(s):
			// Reported by content.
		case slices.Index(b.Scopes, s) < i:
			errs = append(errs, FieldError{field, fmt.Sprintf("scope %s is listed twice", s)})
		case slices.Contains(keep, s):
		case !scopeActive(recs, s) || !access.ClientMayList(recs, s, org):
			// One message for every reason, so that it tells nothing about
			// the private scopes of other orgs.
			errs = append(errs, FieldError{field, fmt.Sprintf("organisation %s cannot get scope %s: it does not exist, is deactivated, or the org has no access, no delegation, and it is not accessible for all", org, s)})
		}
	}
	return errs
}

// scopeActive reports whether scope exists and is active: a client may keep
// a scope that was deactivated after it was listed, but not newly list one.
func scopeActive(recs access.SupplierRecords, scope string) bool {
	s, ok := recs.Scope(scope)
	return ok && s.Active
}

func (b *clientBody) apply(cl *store.Client) {
	cl.ClientName = b.ClientName
	cl.Description = b.Description
	cl.Scopes = nonNil(b.Scopes)
	cl.AccessTokenLifetime = b.AccessTokenLifetime
	if b.Active != nil {
		cl.Active = *b.Active
	}
}

// content checks the body's own fields (records.ValidateClient): name,
// description, lifetime, and the scope list's length and names.
func (b *clientBody) content() []FieldError {
	return fromRecords(records.ValidateClient(store.Client{
		ClientName: b.ClientName, Description: b.Description, Scopes: b.Scopes, AccessTokenLifetime: b.AccessTokenLifetime,
	}))
}

// tooLarge refuses a body whose scope list is over the bound right after
// decoding, before any other check or transaction: the count alone
// decides, at the cost of a comparison.
func (b *clientBody) tooLarge() error {
	if len(b.Scopes) <= records.MaxClientScopes {
		return nil
	}
	return invalid(b.content())
}

// createClient is POST /clients. The client belongs to the caller's org;
// the platform admin (portvakt:admin) may name another client_orgno, which
// is how an organisation gets its first, certificate-authenticated client.
func (h *handler) createClient(w http.ResponseWriter, r *http.Request, c *caller) error {
	var b clientBody
	if err := decodeBody(w, r, &b); err != nil {
		return err
	}
	if err := b.tooLarge(); err != nil {
		return err
	}
	org := cmp.Or(b.ClientOrgno, c.Org)
	var errs []FieldError
	if b.ClientID != nil {
		errs = append(errs, FieldError{"client_id", "is assigned by the server; leave it out"})
	}
	switch {
	case !norid.ValidOrg(org):
		errs = append(errs, FieldError{"client_orgno", fmt.Sprintf("%q is not a valid organisation number (9 digits, mod-11)", org)})
		org = c.Org // check the scopes for the caller's org instead
	case org != c.Org && !c.admin():
		errs = append(errs, FieldError{"client_orgno", "must be your own organisation (" + c.Org + "); leave it out"})
		org = c.Org
	}
	if b.IntegrationType != "" && b.IntegrationType != protocol.IntegrationMaskinporten {
		errs = append(errs, FieldError{"integration_type", fmt.Sprintf("must be %q", protocol.IntegrationMaskinporten)})
	}
	if b.TokenEndpointAuthMethod != "" && b.TokenEndpointAuthMethod != protocol.AuthPrivateKeyJWT {
		errs = append(errs, FieldError{"token_endpoint_auth_method", fmt.Sprintf("must be %q", protocol.AuthPrivateKeyJWT)})
	}
	if b.ManagedBy != nil && *b.ManagedBy != c.Supplier {
		// managed_by says who acted, never what the caller asks for.
		errs = append(errs, FieldError{"managed_by", "is set by the server (the vendor that creates a client for a consumer); leave it out"})
	}
	var out store.Client
	err := h.commit(r.Context(), c, func(tx store.Tx, now time.Time) (change, error) {
		recs := newTxRecords(r.Context(), tx)
		errs := append(slices.Clone(errs), b.validate(recs, org, nil)...)
		if c.Supplier != "" {
			// A vendor's client is managed by it: it lists only what the
			// consumer could delegate (vendor.go).
			errs = append(errs, managedScopeErrors(recs, h.cfg.Issuer, org, b.Scopes, nil)...)
		}
		if recs.err != nil {
			return change{}, recs.err
		}
		if len(errs) > 0 {
			return change{}, invalid(errs)
		}
		out = store.Client{
			ClientID: uuid.NewString(), ClientOrgno: org,
			IntegrationType: protocol.IntegrationMaskinporten, TokenEndpointAuthMethod: protocol.AuthPrivateKeyJWT,
			Keys: []store.ClientKey{}, ManagedBy: c.Supplier, Active: true, Created: now, LastUpdated: now,
		}
		b.apply(&out)
		if err := tx.CreateClient(r.Context(), out); err != nil {
			return change{}, err
		}
		return change{action: "client.create", kind: "client", target: out.ClientID, orgs: []string{org}, after: out}, nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// ownClient reads a client of the caller's org; another org's client is
// missing, exactly as one that does not exist.
func ownClient(r *http.Request, rd store.Reader, c *caller) (store.Client, error) {
	id := r.PathValue("id")
	cl, err := rd.GetClient(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && cl.ClientOrgno != c.Org) {
		return store.Client{}, notFound("your organisation has no client %q", id)
	}
	return cl, err
}

func (h *handler) listClients(w http.ResponseWriter, r *http.Request, c *caller) error {
	inactive, err := inactiveParam(r)
	if err != nil {
		return err
	}
	p, err := pageParam(r)
	if err != nil {
		return err
	}
	got, err := h.store.PageClients(r.Context(), store.ClientFilter{ClientOrgno: c.Org, ActiveOnly: !inactive}, more(p))
	if err != nil {
		return err
	}
	writePage(w, r, h.cfg.Issuer, p, got)
	return nil
}

func (h *handler) getClient(w http.ResponseWriter, r *http.Request, c *caller) error {
	cl, err := ownClient(r, h.store, c)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, cl)
	return nil
}

func (h *handler) updateClient(w http.ResponseWriter, r *http.Request, c *caller) error {
	var b clientBody
	if err := decodeBody(w, r, &b); err != nil {
		return err
	}
	if err := b.tooLarge(); err != nil {
		return err
	}
	var out store.Client
	err := h.commit(r.Context(), c, func(tx store.Tx, now time.Time) (change, error) {
		// Ownership first: another org's client is a 404 whatever the body.
		before, err := ownClient(r, tx, c)
		if err != nil {
			return change{}, err
		}
		if err := adminClientRefusal(c, before); err != nil {
			return change{}, err
		}
		recs := newTxRecords(r.Context(), tx)
		errs := b.validate(recs, c.Org, before.Scopes)
		if c.Supplier != "" || before.ManagedBy != "" {
			// What a vendor adds, and what a managed client lists, is
			// bounded by what the consumer could delegate (vendor.go).
			errs = append(errs, managedScopeErrors(recs, h.cfg.Issuer, c.Org, b.Scopes, before.Scopes)...)
		}
		if recs.err != nil {
			return change{}, recs.err
		}
		if b.ManagedBy != nil && *b.ManagedBy != before.ManagedBy {
			errs = append(errs, FieldError{"managed_by", "cannot change"})
		}
		if b.ClientID != nil && *b.ClientID != before.ClientID {
			errs = append(errs, FieldError{"client_id", "cannot change"})
		}
		if b.ClientOrgno != "" && b.ClientOrgno != before.ClientOrgno {
			errs = append(errs, FieldError{"client_orgno", "cannot change"})
		}
		if b.IntegrationType != "" && b.IntegrationType != before.IntegrationType {
			errs = append(errs, FieldError{"integration_type", "cannot change"})
		}
		if b.TokenEndpointAuthMethod != "" && b.TokenEndpointAuthMethod != before.TokenEndpointAuthMethod {
			errs = append(errs, FieldError{"token_endpoint_auth_method", "cannot change"})
		}
		if len(errs) > 0 {
			return change{}, invalid(errs)
		}
		if c.Supplier != "" && !before.Active && b.Active != nil && *b.Active {
			return change{}, forbidden("client %s is deactivated, and a vendor cannot reactivate a client: organisation %s may", before.ClientID, c.Org)
		}
		out = before
		b.apply(&out)
		out.LastUpdated = now
		if err := tx.UpdateClient(r.Context(), out); err != nil {
			return change{}, err
		}
		return change{action: "client.update", kind: "client", target: out.ClientID, orgs: []string{out.ClientOrgno}, before: before, after: out}, nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *handler) deleteClient(w http.ResponseWriter, r *http.Request, c *caller) error {
	err := h.commit(r.Context(), c, func(tx store.Tx, now time.Time) (change, error) {
		before, err := ownClient(r, tx, c)
		if err != nil {
			return change{}, err
		}
		if err := adminClientRefusal(c, before); err != nil {
			return change{}, err
		}
		after := before
		after.Active = false
		after.LastUpdated = now
		if err := tx.UpdateClient(r.Context(), after); err != nil {
			return change{}, err
		}
		return change{action: "client.deactivate", kind: "client", target: before.ClientID, orgs: []string{before.ClientOrgno}, before: before, after: after}, nil
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
