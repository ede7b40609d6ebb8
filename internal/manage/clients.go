package manage

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/portvakt/portvakt/internal/access"
	"github.com/portvakt/portvakt/internal/protocol"
	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/store"
)

// ClientInput is a client as its org writes it. Read-only fields are
// accepted so a record read can be sent back; when given they must match.
// Keys are managed by ReplaceKeys and DeleteKeys: a keys field is ignored.
type ClientInput struct {
	ClientID                *string         `json:"client_id"`
	ClientOrgno             string          `json:"client_orgno"`
	ClientName              string          `json:"client_name"`
	Description             string          `json:"description"`
	IntegrationType         string          `json:"integration_type"`
	TokenEndpointAuthMethod string          `json:"token_endpoint_auth_method"`
	Scopes                  []string        `json:"scopes"`
	AccessTokenLifetime     int             `json:"access_token_lifetime"`
	ManagedBy               *string         `json:"managed_by"`
	RequireDPoP             bool            `json:"require_dpop"`
	Active                  *bool           `json:"active"`
	Keys                    json.RawMessage `json:"keys"`
	Created                 json.RawMessage `json:"created"`
	LastUpdated             json.RawMessage `json:"last_updated"`
}

// content checks the input's own fields (records.ValidateClient): name,
// description, lifetime, and the scope list's length and names.
func (in *ClientInput) content() []FieldError {
	var cl store.Client
	in.apply(&cl)
	return records.ValidateClient(cl)
}

// TooLarge refuses an input whose scope list is over the bound, by its
// count alone: a shell calls it right after decoding, before any other
// check, and every operation calls it first.
func (in *ClientInput) TooLarge() error {
	if len(in.Scopes) <= records.MaxClientScopes {
		return nil
	}
	return invalid(in.content())
}

func (in *ClientInput) apply(cl *store.Client) {
	cl.ClientName = in.ClientName
	cl.Description = in.Description
	cl.Scopes = nonNil(in.Scopes)
	cl.AccessTokenLifetime = in.AccessTokenLifetime
	cl.RequireDPoP = in.RequireDPoP
	if in.Active != nil {
		cl.Active = *in.Active
	}
}

// scopeErrors checks the input's content and its scopes for org, the
// client's owner, over recs (read in the write transaction). Scopes in
// keep (already on the client) are not checked again: losing access to one
// makes the token endpoint refuse it, and must not block editing the
// client's other fields.
func (in *ClientInput) scopeErrors(recs access.SupplierRecords, org string, keep []string) []FieldError {
	errs := in.content()
	for i, sc := range in.Scopes {
		f := fmt.Sprintf("scopes[%d]", i)
		switch {
		case !records.ValidScopeName(sc):
			// Reported by content.
		case slices.Index(in.Scopes, sc) < i:
			errs = append(errs, field(f, "scope %s is listed twice", sc))
		case slices.Contains(keep, sc):
		case !scopeActive(recs, sc) || !access.ClientMayList(recs, sc, org):
			// One message for every reason, so that it tells nothing about
			// the private scopes of other orgs.
			errs = append(errs, field(f, "organisation %s cannot get scope %s: it does not exist, is deactivated, or the org has no access, no delegation, and it is not accessible for all", org, sc))
		}
	}
	return errs
}

// scopeActive reports whether scope exists and is active: a client may keep
// a scope that was deactivated after it was listed, but not newly list one.
func scopeActive(recs access.Records, scope string) bool {
	sc, ok := recs.Scope(scope)
	return ok && sc.Active
}

// CreateClient creates a client of the actor's org; the platform admin may
// name another client_orgno, which is how an organisation gets its first,
// certificate-authenticated client.
func (s *Service) CreateClient(ctx context.Context, a *Actor, in ClientInput) (store.Client, error) {
	if err := authorize(ctx, s.store, a, NeedClientsWrite); err != nil {
		return store.Client{}, err
	}
	if err := in.TooLarge(); err != nil {
		return store.Client{}, err
	}
	org := cmp.Or(in.ClientOrgno, a.Org)
	var errs []FieldError
	if in.ClientID != nil {
		errs = append(errs, field("client_id", "is assigned by the server; leave it out"))
	}
	switch {
	case len(records.CheckOrg("client_orgno", org)) > 0:
		errs = append(errs, records.CheckOrg("client_orgno", org)...)
		org = a.Org // check the scopes for the actor's org instead
	case org != a.Org && !a.Has(records.AdminScope):
		errs = append(errs, field("client_orgno", "must be your own organisation (%s); leave it out", a.Org))
		org = a.Org
	}
	if in.IntegrationType != "" && in.IntegrationType != protocol.IntegrationMaskinporten {
		errs = append(errs, field("integration_type", "must be %q", protocol.IntegrationMaskinporten))
	}
	if in.TokenEndpointAuthMethod != "" && in.TokenEndpointAuthMethod != protocol.AuthPrivateKeyJWT {
		errs = append(errs, field("token_endpoint_auth_method", "must be %q", protocol.AuthPrivateKeyJWT))
	}
	if in.ManagedBy != nil && *in.ManagedBy != a.Supplier {
		// managed_by says who acted, never what the caller asks for.
		errs = append(errs, field("managed_by", "is set by the server (the vendor that creates a client for a consumer); leave it out"))
	}
	var out store.Client
	err := s.commit(ctx, a, NeedClientsWrite, func(tx store.Tx, now time.Time) (change, error) {
		recs, err := loadRecords(ctx, tx, org, in.Scopes)
		if err != nil {
			return change{}, err
		}
		errs := append(slices.Clone(errs), in.scopeErrors(recs, org, nil)...)
		if a.Supplier != "" {
			// A vendor's client is managed by it: it lists only what the
			// consumer could delegate (vendor.go).
			errs = append(errs, managedScopeErrors(recs, s.cfg.Issuer, org, in.Scopes, nil)...)
		}
		if len(errs) > 0 {
			return change{}, invalid(errs)
		}
		out = store.Client{
			ClientID: uuid.NewString(), ClientOrgno: org,
			IntegrationType: protocol.IntegrationMaskinporten, TokenEndpointAuthMethod: protocol.AuthPrivateKeyJWT,
			Keys: []store.ClientKey{}, ManagedBy: a.Supplier, Active: true, Created: now, LastUpdated: now,
		}
		in.apply(&out)
		if err := tx.CreateClient(ctx, out); err != nil {
			return change{}, err
		}
		return change{action: "client.create", kind: "client", target: out.ClientID, orgs: []string{org}, after: out}, nil
	})
	return out, err
}

// ownClient reads a client of the actor's org; another org's client is
// missing, exactly as one that does not exist.
func ownClient(ctx context.Context, rd store.Reader, a *Actor, id string) (store.Client, error) {
	cl, err := rd.GetClient(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && cl.ClientOrgno != a.Org) {
		return store.Client{}, notFound("your organisation has no client %q", id)
	}
	return cl, err
}

// GetClient reads one of the actor's org's clients.
func (s *Service) GetClient(ctx context.Context, a *Actor, id string) (store.Client, error) {
	if err := authorize(ctx, s.store, a, NeedClientsRead); err != nil {
		return store.Client{}, err
	}
	return ownClient(ctx, s.store, a, id)
}

// ListClients is a page of the actor's org's clients, the deactivated ones
// too when inactive.
func (s *Service) ListClients(ctx context.Context, a *Actor, inactive bool, p store.Page) ([]store.Client, error) {
	if err := authorize(ctx, s.store, a, NeedClientsRead); err != nil {
		return nil, err
	}
	return s.store.PageClients(ctx, store.ClientFilter{ClientOrgno: a.Org, ActiveOnly: !inactive}, p)
}

// UpdateClient replaces the mutable fields of one of the actor's org's
// clients.
func (s *Service) UpdateClient(ctx context.Context, a *Actor, id string, in ClientInput) (store.Client, error) {
	if err := authorize(ctx, s.store, a, NeedClientsWrite); err != nil {
		return store.Client{}, err
	}
	if err := in.TooLarge(); err != nil {
		return store.Client{}, err
	}
	var out store.Client
	err := s.commit(ctx, a, NeedClientsWrite, func(tx store.Tx, now time.Time) (change, error) {
		// Ownership first: another org's client is "not found" whatever
		// the input.
		before, err := ownClient(ctx, tx, a, id)
		if err != nil {
			return change{}, err
		}
		if err := adminClientRefusal(a, before); err != nil {
			return change{}, err
		}
		recs, err := loadRecords(ctx, tx, a.Org, in.Scopes)
		if err != nil {
			return change{}, err
		}
		errs := in.scopeErrors(recs, a.Org, before.Scopes)
		if a.Supplier != "" || before.ManagedBy != "" {
			// What a vendor adds, and what a managed client lists, is
			// bounded by what the consumer could delegate (vendor.go).
			errs = append(errs, managedScopeErrors(recs, s.cfg.Issuer, a.Org, in.Scopes, before.Scopes)...)
		}
		if in.ManagedBy != nil && *in.ManagedBy != before.ManagedBy {
			errs = append(errs, field("managed_by", "cannot change"))
		}
		if in.ClientID != nil && *in.ClientID != before.ClientID {
			errs = append(errs, field("client_id", "cannot change"))
		}
		if in.ClientOrgno != "" && in.ClientOrgno != before.ClientOrgno {
			errs = append(errs, field("client_orgno", "cannot change"))
		}
		if in.IntegrationType != "" && in.IntegrationType != before.IntegrationType {
			errs = append(errs, field("integration_type", "cannot change"))
		}
		if in.TokenEndpointAuthMethod != "" && in.TokenEndpointAuthMethod != before.TokenEndpointAuthMethod {
			errs = append(errs, field("token_endpoint_auth_method", "cannot change"))
		}
		if len(errs) > 0 {
			return change{}, invalid(errs)
		}
		if a.Supplier != "" && !before.Active && in.Active != nil && *in.Active {
			return change{}, forbidden("client %s is deactivated, and a vendor cannot reactivate a client: organisation %s may", before.ClientID, a.Org)
		}
		out = before
		in.apply(&out)
		out.LastUpdated = now
		if err := tx.UpdateClient(ctx, out); err != nil {
			return change{}, err
		}
		ch := change{action: "client.update", kind: "client", target: out.ClientID, orgs: []string{out.ClientOrgno}, before: before, after: out}
		if before.Active && !out.Active {
			ch.event = store.EventClientDeactivated
		}
		return ch, nil
	})
	return out, err
}

// DeactivateClient deactivates one of the actor's org's clients.
func (s *Service) DeactivateClient(ctx context.Context, a *Actor, id string) error {
	if err := authorize(ctx, s.store, a, NeedClientsWrite); err != nil {
		return err
	}
	return s.commit(ctx, a, NeedClientsWrite, func(tx store.Tx, now time.Time) (change, error) {
		before, err := ownClient(ctx, tx, a, id)
		if err != nil {
			return change{}, err
		}
		if err := adminClientRefusal(a, before); err != nil {
			return change{}, err
		}
		after := before
		after.Active = false
		after.LastUpdated = now
		if err := tx.UpdateClient(ctx, after); err != nil {
			return change{}, err
		}
		return change{action: "client.deactivate", event: store.EventClientDeactivated, kind: "client", target: before.ClientID, orgs: []string{before.ClientOrgno}, before: before, after: after}, nil
	})
}
