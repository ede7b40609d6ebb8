package store

import (
	"encoding/json"
	"time"
)

// Scope visibility.
const (
	VisibilityPublic  = "PUBLIC"
	VisibilityPrivate = "PRIVATE"
)

// Access and delegation states. Rows are never deleted: removing access sets
// DENIED, removing a delegation sets REVOKED. A consumer's request for access
// is a row in REQUESTED, withdrawn it is WITHDRAWN. Only APPROVED grants
// tokens: every other state, known or not, is no access.
const (
	AccessApproved    = "APPROVED"
	AccessDenied      = "DENIED"
	AccessRequested   = "REQUESTED"
	AccessWithdrawn   = "WITHDRAWN"
	DelegationActive  = "ACTIVE"
	DelegationRevoked = "REVOKED"
)

// Prefix is a scope prefix assigned by the platform admin to a provider org.
type Prefix struct {
	Prefix      string    `json:"prefix"`
	OwnerOrg    string    `json:"owner_org"`
	Created     time.Time `json:"created"`
	LastUpdated time.Time `json:"last_updated"`
}

// Scope is an API scope defined by the owner of its prefix. Name is
// Prefix + ":" + Subscope and never changes.
type Scope struct {
	Name                    string    `json:"name"`
	Prefix                  string    `json:"prefix"`
	Subscope                string    `json:"subscope"`
	Description             string    `json:"description"`
	LongDescription         string    `json:"long_description"`
	Active                  bool      `json:"active"`
	AccessibleForAll        bool      `json:"accessible_for_all"`
	DelegationSource        string    `json:"delegation_source,omitempty"`
	AllowedIntegrationTypes []string  `json:"allowed_integration_types"`
	ATMaxAge                int       `json:"at_max_age"`
	Visibility              string    `json:"visibility"`
	RequiresAudience        bool      `json:"requires_audience"`
	Audiences               []string  `json:"audiences"`
	OwnerOrgno              string    `json:"owner_orgno"`
	Created                 time.Time `json:"created"`
	LastUpdated             time.Time `json:"last_updated"`
}

// Delegable reports whether consumers may delegate the scope to a vendor.
func (s Scope) Delegable() bool { return s.DelegationSource != "" }

// Access is one row of a provider's allow-list for a scope.
type Access struct {
	Scope         string    `json:"scope"`
	ConsumerOrgno string    `json:"consumer_orgno"`
	OwnerOrgno    string    `json:"owner_orgno"`
	State         string    `json:"state"`
	Reason        string    `json:"reason"` // the last transition's free text, optional
	Created       time.Time `json:"created"`
	LastUpdated   time.Time `json:"last_updated"`
}

// Delegation lets SupplierOrgno (a vendor) get Scope on behalf of ConsumerOrgno.
type Delegation struct {
	Scope         string    `json:"scope"`
	ConsumerOrgno string    `json:"consumer_orgno"`
	SupplierOrgno string    `json:"supplier_orgno"`
	State         string    `json:"state"`
	Created       time.Time `json:"created"`
	LastUpdated   time.Time `json:"last_updated"`
}

// ClientKey is one registered public key of a client, valid until Expires
// (one year from upload).
type ClientKey struct {
	KID     string          `json:"kid"`
	JWK     json.RawMessage `json:"jwk"` // the public JWK as uploaded
	Created time.Time       `json:"created"`
	Expires time.Time       `json:"expires"`
	// UploadedBy is the org whose caller uploaded the key: the client's
	// own org, or the vendor that acted for it through a delegated admin
	// scope. Empty means the client's own org: keys declared in config and
	// keys uploaded before the field existed.
	UploadedBy string `json:"uploaded_by"`
}

// Client is an integration owned by ClientOrgno.
type Client struct {
	ClientID                string      `json:"client_id"`
	ClientOrgno             string      `json:"client_orgno"`
	ClientName              string      `json:"client_name"`
	Description             string      `json:"description"`
	IntegrationType         string      `json:"integration_type"`
	TokenEndpointAuthMethod string      `json:"token_endpoint_auth_method"`
	Scopes                  []string    `json:"scopes"`
	AccessTokenLifetime     int         `json:"access_token_lifetime"`
	Keys                    []ClientKey `json:"keys"`
	// ManagedBy is the vendor org whose caller created the client while
	// acting for ClientOrgno through a delegated admin scope; empty for a
	// client the owner (or the platform admin, or the config) made. It
	// never changes.
	ManagedBy   string    `json:"managed_by"`
	Active      bool      `json:"active"`
	Created     time.Time `json:"created"`
	LastUpdated time.Time `json:"last_updated"`
}

// IssuedToken records one issued access token. Its insert, unique on
// (ClientID, AssertionJTI), is the replay check.
type IssuedToken struct {
	ClientID      string    `json:"client_id"`
	AssertionJTI  string    `json:"assertion_jti"`
	TokenJTI      string    `json:"token_jti"`
	ConsumerOrgno string    `json:"consumer_orgno"`
	SupplierOrgno string    `json:"supplier_orgno,omitempty"`
	Scopes        []string  `json:"scopes"`
	Audience      []string  `json:"aud"`
	IssuedAt      time.Time `json:"iat"`
	ExpiresAt     time.Time `json:"exp"`
	ClientAMR     string    `json:"client_amr"`
}

// AuditEvent is one append-only record of an administrative change.
type AuditEvent struct {
	ID            int64     `json:"id"`
	Time          time.Time `json:"time"`
	ActorOrg      string    `json:"actor_org"`
	ActorClientID string    `json:"actor_client_id"`
	ActorTokenJTI string    `json:"actor_token_jti"`
	// ActorPerson is the person acting through the web console (the
	// member's subject); empty for API clients.
	ActorPerson string          `json:"actor_person,omitempty"`
	Action      string          `json:"action"`      // e.g. "scope.create"
	TargetKind  string          `json:"target_kind"` // "prefix", "scope", "access", "delegation", "client"
	Target      string          `json:"target"`
	Orgs        []string        `json:"orgs"` // every org concerned, for visibility
	Before      json.RawMessage `json:"before,omitempty"`
	After       json.RawMessage `json:"after,omitempty"`
}

// Change kinds: which kind of record a committed Update wrote.
const (
	ChangeNone       = "none" // the Update wrote no record (only audit, or nothing)
	ChangePrefix     = "prefix"
	ChangeScope      = "scope"
	ChangeAccess     = "access"
	ChangeDelegation = "delegation"
	ChangeClient     = "client"
)

// Change names one record that a committed Update wrote, by its key: Name
// is the prefix, the scope name (also of an access row or a delegation) or
// the client id; ConsumerOrgno is set for access rows and delegations,
// SupplierOrgno for delegations. It says which record changed, not how:
// readers fetch the record.
type Change struct {
	Generation    int64  `json:"generation"`
	Kind          string `json:"kind"`
	Name          string `json:"name"`
	ConsumerOrgno string `json:"consumer_orgno,omitempty"`
	SupplierOrgno string `json:"supplier_orgno,omitempty"`
}
