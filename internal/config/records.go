package config

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/google/uuid"

	"github.com/portvakt/portvakt/internal/protocol"
	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/store"
)

// Records are declared in the config file and overlay the database
// read-only (docs/selfservice.md): how a platform is bootstrapped and how the dev
// mode seeds its demo.
type Records struct {
	Prefixes    []PrefixRecord     `mapstructure:"prefixes"`
	Scopes      []ScopeRecord      `mapstructure:"scopes"`
	Access      []AccessRecord     `mapstructure:"access"`
	Delegations []DelegationRecord `mapstructure:"delegations"`
	Clients     []ClientRecord     `mapstructure:"clients"`
}

// PrefixRecord assigns a prefix to a provider org.
type PrefixRecord struct {
	Prefix   string `mapstructure:"prefix"`
	OwnerOrg string `mapstructure:"owner_org"`
}

// ScopeRecord declares a scope; its owner is the owner of its prefix.
type ScopeRecord struct {
	Prefix                  string   `mapstructure:"prefix"`
	Subscope                string   `mapstructure:"subscope"`
	Description             string   `mapstructure:"description"`
	LongDescription         string   `mapstructure:"long_description"`
	Inactive                bool     `mapstructure:"inactive"`
	AccessibleForAll        bool     `mapstructure:"accessible_for_all"`
	Delegable               bool     `mapstructure:"delegable"`
	AllowedIntegrationTypes []string `mapstructure:"allowed_integration_types"`
	ATMaxAge                int      `mapstructure:"at_max_age"`
	Visibility              string   `mapstructure:"visibility"`
	RequiresAudience        bool     `mapstructure:"requires_audience"`
	Audiences               []string `mapstructure:"audiences"`
	TokenBinding            string   `mapstructure:"token_binding"`
}

// AccessRecord puts a consumer on a scope's allow-list.
type AccessRecord struct {
	Scope         string `mapstructure:"scope"`
	ConsumerOrgno string `mapstructure:"consumer_orgno"`
	Denied        bool   `mapstructure:"denied"`
}

// DelegationRecord lets a supplier get a scope for a consumer.
type DelegationRecord struct {
	Scope         string `mapstructure:"scope"`
	ConsumerOrgno string `mapstructure:"consumer_orgno"`
	SupplierOrgno string `mapstructure:"supplier_orgno"`
	Revoked       bool   `mapstructure:"revoked"`
}

// ClientRecord declares a client. Keys come inline (jwks, a list of public
// JWKs) or from a JWKS file (jwks_file, relative to the config file).
type ClientRecord struct {
	ClientID            string            `mapstructure:"client_id"`
	ClientOrgno         string            `mapstructure:"client_orgno"`
	ClientName          string            `mapstructure:"client_name"`
	Description         string            `mapstructure:"description"`
	Scopes              []string          `mapstructure:"scopes"`
	AccessTokenLifetime int               `mapstructure:"access_token_lifetime"`
	JWKS                []json.RawMessage `mapstructure:"jwks"`
	JWKSFile            string            `mapstructure:"jwks_file"`
	RequireDPoP         bool              `mapstructure:"require_dpop"`
	Inactive            bool              `mapstructure:"inactive"`
}

// validate checks each declared record with its kind's one Validate
// (package records), and the rules of the file itself (the built-in prefix
// is not declared, a scope's prefix is declared, client ids are unique, keys
// come inline or from a file), every problem at once.
func (r *Records) validate(c *Config) []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	follow := func(key string, problems []records.FieldError) {
		for _, p := range records.Within(key, problems) {
			errs = append(errs, p)
		}
	}
	prefixes := map[string]bool{records.BuiltinPrefix: true}
	for i, p := range r.Prefixes {
		key := fmt.Sprintf("records.prefixes[%d]", i)
		follow(key, records.ValidatePrefix(store.Prefix{Prefix: p.Prefix, OwnerOrg: p.OwnerOrg}))
		if p.Prefix == records.BuiltinPrefix {
			bad(key+".prefix", "the prefix %s is built in and owned by platform.org", records.BuiltinPrefix)
		}
		prefixes[p.Prefix] = true
	}
	for i, s := range r.Scopes {
		key := fmt.Sprintf("records.scopes[%d]", i)
		if !prefixes[s.Prefix] || s.Prefix == records.BuiltinPrefix {
			bad(key+".prefix", "%q is not a declared prefix", s.Prefix)
		}
		// A declared delegable scope names this issuer: always valid.
		follow(key, records.ValidateScope(r.scope(s, c.Issuer, ""), c.Issuer))
	}
	for i, a := range r.Access {
		follow(fmt.Sprintf("records.access[%d]", i), records.ValidateAccess(a.record("")))
	}
	for i, d := range r.Delegations {
		follow(fmt.Sprintf("records.delegations[%d]", i), records.ValidateDelegation(d.record()))
	}
	seen := map[string]bool{}
	for i, cl := range r.Clients {
		key := fmt.Sprintf("records.clients[%d]", i)
		if _, err := uuid.Parse(cl.ClientID); err != nil {
			bad(key+".client_id", "%q must be a UUID", cl.ClientID)
		}
		if seen[cl.ClientID] {
			bad(key+".client_id", "%q is declared twice", cl.ClientID)
		}
		seen[cl.ClientID] = true
		follow(key, records.CheckOrg("client_orgno", cl.ClientOrgno))
		follow(key, records.ValidateClient(store.Client{
			ClientName: cl.ClientName, Description: cl.Description,
			Scopes: cl.Scopes, AccessTokenLifetime: cl.AccessTokenLifetime,
		}))
		if len(cl.JWKS) > 0 && cl.JWKSFile != "" {
			bad(key, "give jwks or jwks_file, not both")
		}
		if _, problems := records.ValidateClientKeys("jwks", cl.JWKS); len(cl.JWKS) > 0 {
			follow(key, problems)
		}
		if cl.JWKSFile != "" {
			if _, err := os.Stat(c.Path(cl.JWKSFile)); err != nil {
				bad(key+".jwks_file", "%v", err)
			}
		}
	}
	return errs
}

// scope is the store record of a declared scope; owner is its prefix's
// owner. A delegable scope names this issuer as its delegation source.
func (r *Records) scope(s ScopeRecord, issuer, owner string) store.Scope {
	sc := store.Scope{
		Name: s.Prefix + ":" + s.Subscope, Prefix: s.Prefix, Subscope: s.Subscope,
		Description: s.Description, LongDescription: s.LongDescription,
		Active: !s.Inactive, AccessibleForAll: s.AccessibleForAll,
		AllowedIntegrationTypes: nonNil(s.AllowedIntegrationTypes), ATMaxAge: s.ATMaxAge,
		Visibility: cmp.Or(s.Visibility, store.VisibilityPublic), RequiresAudience: s.RequiresAudience,
		Audiences: nonNil(s.Audiences), TokenBinding: cmp.Or(s.TokenBinding, store.TokenBindingNone), OwnerOrgno: owner,
	}
	if s.Delegable {
		sc.DelegationSource = issuer
	}
	return sc
}

func (a AccessRecord) record(owner string) store.Access {
	st := store.AccessApproved
	if a.Denied {
		st = store.AccessDenied
	}
	return store.Access{Scope: a.Scope, ConsumerOrgno: a.ConsumerOrgno, OwnerOrgno: owner, State: st}
}

func (d DelegationRecord) record() store.Delegation {
	st := store.DelegationActive
	if d.Revoked {
		st = store.DelegationRevoked
	}
	return store.Delegation{Scope: d.Scope, ConsumerOrgno: d.ConsumerOrgno, SupplierOrgno: d.SupplierOrgno, State: st}
}

// Static turns the declared records into store records. The issuer becomes
// the delegation source of delegable scopes; now stamps created times; keys
// are valid for a year from now. Key material is checked by the caller.
func (c *Config) Static(now time.Time) (store.StaticRecords, error) {
	r := c.Records
	out := records.Builtin(c.Issuer, c.Platform.Org, now)
	owner := map[string]string{}
	for _, p := range r.Prefixes {
		owner[p.Prefix] = p.OwnerOrg
		out.Prefixes = append(out.Prefixes, store.Prefix{Prefix: p.Prefix, OwnerOrg: p.OwnerOrg, Created: now, LastUpdated: now})
	}
	for _, s := range r.Scopes {
		sc := r.scope(s, c.Issuer, owner[s.Prefix])
		sc.Created, sc.LastUpdated = now, now
		out.Scopes = append(out.Scopes, sc)
	}
	scopeOwner := func(name string) string {
		for _, s := range out.Scopes {
			if s.Name == name {
				return s.OwnerOrgno
			}
		}
		return ""
	}
	for _, a := range r.Access {
		row := a.record(scopeOwner(a.Scope))
		row.Created, row.LastUpdated = now, now
		out.Access = append(out.Access, row)
	}
	for _, d := range r.Delegations {
		row := d.record()
		row.Created, row.LastUpdated = now, now
		out.Delegations = append(out.Delegations, row)
	}
	for i, cl := range r.Clients {
		keys, err := c.clientKeys(cl, now)
		if err != nil {
			return out, fmt.Errorf("records.clients[%d]: %w", i, err)
		}
		out.Clients = append(out.Clients, store.Client{
			ClientID: cl.ClientID, ClientOrgno: cl.ClientOrgno, ClientName: cl.ClientName,
			Description: cl.Description, IntegrationType: protocol.IntegrationMaskinporten,
			TokenEndpointAuthMethod: protocol.AuthPrivateKeyJWT, Scopes: nonNil(cl.Scopes),
			AccessTokenLifetime: cl.AccessTokenLifetime, Keys: keys, RequireDPoP: cl.RequireDPoP, Active: !cl.Inactive,
			Created: now, LastUpdated: now,
		})
	}
	return out, nil
}

func (c *Config) clientKeys(cl ClientRecord, now time.Time) ([]store.ClientKey, error) {
	raw := cl.JWKS
	if cl.JWKSFile != "" {
		b, err := os.ReadFile(c.Path(cl.JWKSFile))
		if err != nil {
			return nil, err
		}
		var set struct {
			Keys []json.RawMessage `json:"keys"`
		}
		if err := json.Unmarshal(b, &set); err != nil {
			return nil, fmt.Errorf("jwks_file %s: %w", cl.JWKSFile, err)
		}
		raw = set.Keys
	}
	// The same rules as an upload: public members only, key sizes, kid.
	keys, problems := records.ValidateClientKeys("jwks", raw)
	if len(problems) > 0 {
		errs := make([]error, len(problems))
		for i, p := range problems {
			errs[i] = p
		}
		return nil, errors.Join(errs...)
	}
	for i := range keys {
		keys[i].Created, keys[i].Expires = now, now.AddDate(1, 0, 0)
	}
	return nonNilKeys(keys), nil
}

func nonNilKeys(k []store.ClientKey) []store.ClientKey {
	if k == nil {
		return []store.ClientKey{}
	}
	return k
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
