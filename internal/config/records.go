package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/google/uuid"

	"github.com/portvakt/portvakt/internal/norid"
	"github.com/portvakt/portvakt/internal/protocol"
	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/store"
)

// Records are declared in the config file and overlay the database
// read-only (SPEC section 1): how a platform is bootstrapped and how the dev
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
	Inactive            bool              `mapstructure:"inactive"`
}

// ValidPrefix reports whether p is a valid scope prefix (records.ValidPrefix).
func ValidPrefix(p string) bool { return records.ValidPrefix(p) }

// ValidSubscope reports whether s is a valid subscope (records.ValidSubscope).
func ValidSubscope(s string) bool { return records.ValidSubscope(s) }

// validate checks the declared records with the rules every record
// follows (package records) and those of the file (declared prefixes,
// unique client ids), every problem at once.
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
	prefixes := map[string]bool{"portvakt": true}
	for i, p := range r.Prefixes {
		key := fmt.Sprintf("records.prefixes[%d]", i)
		if !ValidPrefix(p.Prefix) {
			bad(key+".prefix", "%q must match [a-z0-9]+, at most %d characters", p.Prefix, records.MaxPrefix)
		}
		if p.Prefix == "portvakt" {
			bad(key+".prefix", "the prefix portvakt is built in and owned by platform.org")
		}
		if !norid.ValidOrg(p.OwnerOrg) {
			bad(key+".owner_org", "%q is not a valid organisation number", p.OwnerOrg)
		}
		prefixes[p.Prefix] = true
	}
	for i, s := range r.Scopes {
		key := fmt.Sprintf("records.scopes[%d]", i)
		if !prefixes[s.Prefix] || s.Prefix == "portvakt" {
			bad(key+".prefix", "%q is not a declared prefix", s.Prefix)
		}
		if ValidPrefix(s.Prefix) { // else named above
			follow(key, records.ValidateScopeName(s.Prefix, s.Subscope))
		}
		// A declared delegable scope names this issuer: always valid.
		follow(key, records.ValidateScopeContent(store.Scope{
			Description: s.Description, LongDescription: s.LongDescription,
			AllowedIntegrationTypes: s.AllowedIntegrationTypes, ATMaxAge: s.ATMaxAge,
			Visibility: s.Visibility, Audiences: s.Audiences,
		}, c.Issuer))
	}
	for i, a := range r.Access {
		key := fmt.Sprintf("records.access[%d]", i)
		if a.Scope == "" {
			bad(key+".scope", "is required")
		}
		if !norid.ValidOrg(a.ConsumerOrgno) {
			bad(key+".consumer_orgno", "%q is not a valid organisation number", a.ConsumerOrgno)
		}
	}
	for i, d := range r.Delegations {
		key := fmt.Sprintf("records.delegations[%d]", i)
		if d.Scope == "" {
			bad(key+".scope", "is required")
		}
		if !norid.ValidOrg(d.ConsumerOrgno) {
			bad(key+".consumer_orgno", "%q is not a valid organisation number", d.ConsumerOrgno)
		}
		if !norid.ValidOrg(d.SupplierOrgno) {
			bad(key+".supplier_orgno", "%q is not a valid organisation number", d.SupplierOrgno)
		}
		if d.ConsumerOrgno == d.SupplierOrgno {
			bad(key, "consumer and supplier are the same org")
		}
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
		if !norid.ValidOrg(cl.ClientOrgno) {
			bad(key+".client_orgno", "%q is not a valid organisation number", cl.ClientOrgno)
		}
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

// Static turns the declared records into store records. The issuer becomes
// the delegation source of delegable scopes; now stamps created times; keys
// are valid for a year from now. Key material is checked by the caller.
func (c *Config) Static(now time.Time) (store.StaticRecords, error) {
	r := c.Records
	out := Builtin(c.Issuer, c.Platform.Org, now)
	owner := map[string]string{}
	for _, p := range r.Prefixes {
		owner[p.Prefix] = p.OwnerOrg
		out.Prefixes = append(out.Prefixes, store.Prefix{Prefix: p.Prefix, OwnerOrg: p.OwnerOrg, Created: now, LastUpdated: now})
	}
	for _, s := range r.Scopes {
		vis := s.Visibility
		if vis == "" {
			vis = store.VisibilityPublic
		}
		sc := store.Scope{
			Name: s.Prefix + ":" + s.Subscope, Prefix: s.Prefix, Subscope: s.Subscope,
			Description: s.Description, LongDescription: s.LongDescription,
			Active: !s.Inactive, AccessibleForAll: s.AccessibleForAll,
			AllowedIntegrationTypes: nonNil(s.AllowedIntegrationTypes), ATMaxAge: s.ATMaxAge,
			Visibility: vis, RequiresAudience: s.RequiresAudience, Audiences: nonNil(s.Audiences),
			OwnerOrgno: owner[s.Prefix], Created: now, LastUpdated: now,
		}
		if s.Delegable {
			sc.DelegationSource = c.Issuer
		}
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
		st := store.AccessApproved
		if a.Denied {
			st = store.AccessDenied
		}
		out.Access = append(out.Access, store.Access{Scope: a.Scope, ConsumerOrgno: a.ConsumerOrgno, OwnerOrgno: scopeOwner(a.Scope), State: st, Created: now, LastUpdated: now})
	}
	for _, d := range r.Delegations {
		st := store.DelegationActive
		if d.Revoked {
			st = store.DelegationRevoked
		}
		out.Delegations = append(out.Delegations, store.Delegation{Scope: d.Scope, ConsumerOrgno: d.ConsumerOrgno, SupplierOrgno: d.SupplierOrgno, State: st, Created: now, LastUpdated: now})
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
			AccessTokenLifetime: cl.AccessTokenLifetime, Keys: keys, Active: !cl.Inactive,
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

// AdminScopes are the built-in scopes of the self-service API (SPEC 4).
var AdminScopes = []string{
	"portvakt:scopes.read", "portvakt:scopes.write", "portvakt:clients.read",
	"portvakt:clients.write", "portvakt:delegations.write", "portvakt:audit.read",
}

// AdminScope is the platform admin's own scope.
const AdminScope = "portvakt:admin"

// Builtin are the records every portvakt has without config: the prefix
// portvakt owned by the platform admin org, its admin scopes (public,
// accessible for all, delegable, no lifetime cap) and portvakt:admin
// (private, not delegable, only the platform admin org has access).
func Builtin(issuer, platformOrg string, now time.Time) store.StaticRecords {
	r := store.StaticRecords{
		Prefixes: []store.Prefix{{Prefix: "portvakt", OwnerOrg: platformOrg, Created: now, LastUpdated: now}},
	}
	mk := func(name, desc string) store.Scope {
		return store.Scope{
			Name: name, Prefix: "portvakt", Subscope: name[len("portvakt:"):], Description: desc,
			Active: true, AccessibleForAll: true, DelegationSource: issuer,
			AllowedIntegrationTypes: []string{}, Visibility: store.VisibilityPublic, Audiences: []string{},
			OwnerOrgno: platformOrg, Created: now, LastUpdated: now,
		}
	}
	for _, n := range AdminScopes {
		r.Scopes = append(r.Scopes, mk(n, "portvakt self-service API: "+n[len("portvakt:"):]))
	}
	admin := mk(AdminScope, "portvakt platform administration")
	admin.AccessibleForAll, admin.DelegationSource, admin.Visibility = false, "", store.VisibilityPrivate
	r.Scopes = append(r.Scopes, admin)
	r.Access = []store.Access{{Scope: AdminScope, ConsumerOrgno: platformOrg, OwnerOrgno: platformOrg, State: store.AccessApproved, Created: now, LastUpdated: now}}
	return r
}
