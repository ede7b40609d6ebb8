package access

import (
	"slices"
	"strings"
	"time"

	"github.com/portvakt/portvakt/internal/protocol"
	"github.com/portvakt/portvakt/internal/store"
)

// Records are the access rules Decide reads. Implementations are in-memory
// and must not block: Decide runs on the token endpoint's hot path.
type Records interface {
	// Scope returns the scope named name, active or not.
	Scope(name string) (store.Scope, bool)
	// HasAccess reports whether an APPROVED access row (scope, consumerOrg) exists.
	HasAccess(scope, consumerOrg string) bool
	// HasDelegation reports whether an ACTIVE delegation (scope, consumerOrg,
	// supplierOrg) exists.
	HasDelegation(scope, consumerOrg, supplierOrg string) bool
}

// SupplierRecords adds the one lookup ClientMayList needs beyond Records: a
// client's org may list a scope delegated to it by any consumer, so the
// consumers have to be enumerable.
type SupplierRecords interface {
	Records
	// Delegators returns the consumer orgs with an ACTIVE delegation of scope
	// to supplierOrg. The caller must not modify the slice.
	Delegators(scope, supplierOrg string) []string
}

// Policy is the server-wide part of the decision.
type Policy struct {
	// Issuer is this server's issuer, the only delegation source it honours.
	Issuer string
	// DefaultLifetime is the token lifetime when neither the scopes nor the
	// client cap it (docs/protocol.md: 120 s).
	DefaultLifetime time.Duration
}

// Request is a token request after the assertion has been verified and its
// claims parsed and validated.
type Request struct {
	Client      store.Client // active and authenticated
	Scopes      []string     // request order, duplicates removed
	ConsumerOrg string       // "" = not delegated; else a valid org other than the client's
	Resources   []string     // validated absolute URIs, request order, duplicates removed
	Binding     Binding      // what the token can be bound to
}

// Binding is what the request can bind its token to, found and verified
// before the decision: JKT is the RFC 7638 thumbprint of the key of the
// request's valid DPoP proof (RFC 9449), X5T the SHA-256 thumbprint of the
// client certificate of its connection (RFC 8705), base64url; each empty
// when the request has none. The token is bound to every one that is set.
type Binding struct {
	JKT string
	X5T string
}

// Grant is what the token will say.
type Grant struct {
	Scopes           []string // granted = requested, request order
	ConsumerOrg      string   // the client's org, or Request.ConsumerOrg when delegated
	SupplierOrg      string   // the client's org when delegated, else ""
	DelegationSource string   // Policy.Issuer when delegated, else ""
	Audience         []string // Request.Resources; nil when none
	Lifetime         time.Duration
}

// Decide grants every requested scope or none (docs/protocol.md). Scopes are checked
// in request order, each through the same fixed sequence of rules, and the
// first failure is returned, so one request always gets the same answer. The
// resource rules run only once every scope is granted. Errors are
// *protocol.Error.
func Decide(p Policy, req Request, recs Records) (Grant, error) {
	if len(req.Scopes) == 0 {
		return Grant{}, protocol.InvalidScope("the assertion's scope claim is empty; list the scopes to request, separated by spaces")
	}
	if req.Client.RequireDPoP && req.Binding.JKT == "" {
		// RFC 9449 says a client that always uses DPoP must be refused
		// without a proof, but names no error code for it; invalid_dpop_proof
		// is for a proof that was sent and is invalid. A required request
		// header missing is RFC 6749's invalid_request, which is also what
		// Keycloak answers when a client that requires DPoP sends no proof.
		return Grant{}, protocol.InvalidRequest("client %s requires DPoP (require_dpop): send a DPoP proof (RFC 9449) in the DPoP header of every token request", req.Client.ClientID)
	}
	clientOrg := req.Client.ClientOrgno
	// A few scopes per request is the common case: keep them on the stack.
	var buf [4]store.Scope
	scopes := buf[:0]
	for _, name := range req.Scopes {
		s, err := checkScope(p, req, recs, name)
		if err != nil {
			return Grant{}, err
		}
		if err := checkBinding(s, req.Binding); err != nil {
			return Grant{}, err
		}
		scopes = append(scopes, s)
	}
	if err := checkResources(scopes, req.Resources); err != nil {
		return Grant{}, err
	}

	g := Grant{
		Scopes:      slices.Clone(req.Scopes),
		ConsumerOrg: clientOrg,
		Lifetime:    lifetime(p, req.Client, scopes),
	}
	if req.ConsumerOrg != "" {
		g.ConsumerOrg = req.ConsumerOrg
		g.SupplierOrg = clientOrg
		g.DelegationSource = p.Issuer
	}
	if len(req.Resources) > 0 {
		g.Audience = slices.Clone(req.Resources)
	}
	return g, nil
}

func checkScope(p Policy, req Request, recs Records, name string) (store.Scope, error) {
	c := req.Client
	s, ok := recs.Scope(name)
	if !ok || !s.Active {
		return s, protocol.InvalidScope("scope %q does not exist or is not active; check its name", name)
	}
	if !slices.Contains(c.Scopes, name) {
		return s, protocol.InvalidScope("client %s is not allowed scope %q; add it to the client's scopes", c.ClientID, name)
	}
	if len(s.AllowedIntegrationTypes) > 0 && !slices.Contains(s.AllowedIntegrationTypes, c.IntegrationType) {
		return s, protocol.InvalidScope("scope %q is not available to clients of integration type %q; use a client of type %s",
			name, c.IntegrationType, strings.Join(s.AllowedIntegrationTypes, " or "))
	}
	if c.ManagedBy != "" {
		// A client a vendor manages for its owner gets only what the owner
		// could delegate, and acts only for the owner: the vendor was given
		// the owner's clients, not what other orgs delegated to the owner
		// (docs/selfservice.md, delegated administration). The self-service API keeps
		// such scopes off the client; this holds when a scope changes later.
		if req.ConsumerOrg != "" {
			return s, protocol.InvalidScope("client %s is managed by a vendor for organisation %s and acts only for it; request scope %q without consumer_org", c.ClientID, c.ClientOrgno, name)
		}
		if !delegable(p, s) {
			return s, protocol.InvalidScope("scope %q cannot be delegated, and client %s is managed by a vendor: its owner must use a client of its own", name, c.ClientID)
		}
	}
	if req.ConsumerOrg == "" {
		if !recs.HasAccess(name, c.ClientOrgno) && !s.AccessibleForAll {
			return s, protocol.InvalidScope("organisation %s has no access to scope %q; ask the scope's owner to grant it", c.ClientOrgno, name)
		}
		return s, nil
	}
	if !recs.HasAccess(name, req.ConsumerOrg) && !s.AccessibleForAll {
		return s, protocol.InvalidScope("consumer_org %s has no access to scope %q, so it cannot delegate it; the consumer must first be granted the scope by its owner", req.ConsumerOrg, name)
	}
	if !delegable(p, s) {
		return s, protocol.InvalidScope("scope %q cannot be delegated; request it without consumer_org", name)
	}
	if !recs.HasDelegation(name, req.ConsumerOrg, c.ClientOrgno) {
		return s, protocol.InvalidScope("organisation %s has not delegated scope %q to organisation %s; the consumer must delegate it to you", req.ConsumerOrg, name, c.ClientOrgno)
	}
	return s, nil
}

// checkBinding: a scope's token_binding is met by the binding the request
// found. It runs once the org is known to get the scope, so what a scope
// requires is told only to those who could get it. A binding this server
// does not know refuses the scope (fail closed).
func checkBinding(s store.Scope, b Binding) error {
	switch s.TokenBinding {
	case "", store.TokenBindingNone:
		return nil
	case store.TokenBindingDPoP:
		if b.JKT != "" {
			return nil
		}
		return protocol.InvalidScope("scope %q requires a DPoP-bound token (token_binding: dpop); send a DPoP proof (RFC 9449) in the DPoP header of the token request", s.Name)
	case store.TokenBindingMTLS:
		if b.X5T != "" {
			return nil
		}
		return protocol.InvalidScope("scope %q requires a certificate-bound token (token_binding: mtls); request the token over a TLS connection with a client certificate (RFC 8705)", s.Name)
	case store.TokenBindingAny:
		if b.JKT != "" || b.X5T != "" {
			return nil
		}
		return protocol.InvalidScope("scope %q requires a DPoP- or certificate-bound token (token_binding: any); send a DPoP proof in the DPoP header, or request the token over TLS with a client certificate", s.Name)
	}
	return protocol.InvalidScope("scope %q requires a token binding this server does not know (token_binding: %q); ask the scope's owner to set none, dpop, mtls or any", s.Name, s.TokenBinding)
}

// delegable: this server is the only delegation registry it trusts, so a
// scope naming another source (or none) cannot be delegated here. An empty
// Issuer never matches.
func delegable(p Policy, s store.Scope) bool {
	return s.DelegationSource != "" && s.DelegationSource == p.Issuer
}

func checkResources(scopes []store.Scope, resources []string) error {
	for _, s := range scopes {
		if s.RequiresAudience && len(resources) == 0 {
			return protocol.InvalidTarget("scope %q requires a resource; add a resource claim naming the API you call", s.Name)
		}
		if len(s.Audiences) == 0 {
			continue
		}
		for _, r := range resources {
			if !slices.Contains(s.Audiences, r) {
				return protocol.InvalidTarget("resource %q is not an audience of scope %q; use one of: %s", r, s.Name, strings.Join(s.Audiences, " "))
			}
		}
	}
	return nil
}

// lifetime is the smallest non-zero cap among the scopes' at_max_age and the
// client's access_token_lifetime; without any cap, the default. A negative
// cap (which validation refuses) counts as none rather than as an expired token.
func lifetime(p Policy, c store.Client, scopes []store.Scope) time.Duration {
	least := 0
	consider := func(secs int) {
		if secs > 0 && (least == 0 || secs < least) {
			least = secs
		}
	}
	consider(c.AccessTokenLifetime)
	for _, s := range scopes {
		consider(s.ATMaxAge)
	}
	if least == 0 {
		return p.DefaultLifetime
	}
	return time.Duration(least) * time.Second
}

// CanGet reports whether org can obtain scope itself: the scope is active and
// org has APPROVED access or the scope is accessible for all. This is the
// rule for making a delegation (the consumer must be able to get the scope).
func CanGet(recs Records, scope, org string) bool {
	s, ok := recs.Scope(scope)
	return ok && s.Active && reaches(recs, s, org)
}

// reaches reports whether org has access to s whatever its active flag:
// APPROVED access, or accessible for all.
func reaches(recs Records, s store.Scope, org string) bool {
	return s.AccessibleForAll || recs.HasAccess(s.Name, org)
}

// ClientMayList reports whether a client of org may list scope (docs/selfservice.md):
// org has access to it itself, or an ACTIVE delegation of the delegable
// scope to org exists from a consumer that has access to it.
// Accessible-for-all scopes are covered by the first.
//
// The scope's active flag does not matter here: scopes are never deleted,
// only deactivated, and a client that lists a deactivated scope is refused
// it at token time (invalid_scope). Listing is about access, not about the
// scope's state, so deactivating a scope never makes a declared client
// invalid.
//
// Delegable here means "has a delegation source": the caller (the
// self-service API) does not know the issuer, and a delegation can only be
// recorded for a delegable scope anyway. Decide applies the stricter
// issuer check when a token is requested.
func ClientMayList(recs SupplierRecords, scope, org string) bool {
	s, ok := recs.Scope(scope)
	if !ok {
		return false
	}
	if reaches(recs, s, org) {
		return true
	}
	if !s.Delegable() {
		return false
	}
	for _, consumer := range recs.Delegators(scope, org) {
		if reaches(recs, s, consumer) {
			return true
		}
	}
	return false
}
