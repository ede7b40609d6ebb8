package sqlstore

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"time"

	"github.com/portvakt/portvakt/internal/store"
)

// dbTime is a timestamp column: written in UTC truncated to microseconds
// (what PostgreSQL keeps, so both engines read back the same value), the zero
// time as NULL. SQLite hands TIMESTAMP WITH TIME ZONE back as text, which Scan
// parses.
type dbTime struct{ time.Time }

func ts(t time.Time) dbTime { return dbTime{t} }

// Value implements driver.Valuer.
func (t dbTime) Value() (driver.Value, error) {
	if t.IsZero() {
		return nil, nil
	}
	return t.UTC().Truncate(time.Microsecond), nil
}

// sqliteTimeLayouts are what the SQLite driver writes (the first) and what
// other tools may have written.
var sqliteTimeLayouts = []string{
	"2006-01-02 15:04:05.999999999-07:00",
	"2006-01-02T15:04:05.999999999-07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
}

// Scan implements sql.Scanner.
func (t *dbTime) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		t.Time = time.Time{}
		return nil
	case time.Time:
		t.Time = v.UTC()
		return nil
	case string:
		return t.parse(v)
	case []byte:
		return t.parse(string(v))
	}
	return fmt.Errorf("sqlstore: cannot scan %T into a timestamp", src)
}

func (t *dbTime) parse(s string) error {
	for _, layout := range sqliteTimeLayouts {
		if v, err := time.Parse(layout, s); err == nil {
			t.Time = v.UTC()
			return nil
		}
	}
	return fmt.Errorf("sqlstore: unparsable timestamp %q", s)
}

// jsonText marshals a list for a TEXT column. nil and empty stay distinct
// ("null" and "[]") so that records round-trip exactly.
func jsonText(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("sqlstore: encode column: %w", err)
	}
	return string(b), nil
}

func fromJSONText(s string, v any) error {
	if s == "" {
		return nil
	}
	if err := json.Unmarshal([]byte(s), v); err != nil {
		return fmt.Errorf("sqlstore: decode column: %w", err)
	}
	return nil
}

type prefixRow struct {
	Prefix      string `gorm:"primaryKey"`
	OwnerOrg    string
	Created     dbTime
	LastUpdated dbTime
}

func (prefixRow) TableName() string { return "prefixes" }

func prefixToRow(p store.Prefix) prefixRow {
	return prefixRow{Prefix: p.Prefix, OwnerOrg: p.OwnerOrg, Created: ts(p.Created), LastUpdated: ts(p.LastUpdated)}
}

func (r prefixRow) record() store.Prefix {
	return store.Prefix{Prefix: r.Prefix, OwnerOrg: r.OwnerOrg, Created: r.Created.Time, LastUpdated: r.LastUpdated.Time}
}

type scopeRow struct {
	Name                    string `gorm:"primaryKey"`
	Prefix                  string
	Subscope                string
	Description             string
	LongDescription         string
	Active                  bool
	AccessibleForAll        bool
	DelegationSource        string
	AllowedIntegrationTypes string
	ATMaxAge                int64 `gorm:"column:at_max_age"`
	Visibility              string
	RequiresAudience        bool
	Audiences               string
	OwnerOrgno              string
	Created                 dbTime
	LastUpdated             dbTime
}

func (scopeRow) TableName() string { return "scopes" }

func scopeToRow(s store.Scope) (scopeRow, error) {
	types, err := jsonText(s.AllowedIntegrationTypes)
	if err != nil {
		return scopeRow{}, err
	}
	auds, err := jsonText(s.Audiences)
	if err != nil {
		return scopeRow{}, err
	}
	return scopeRow{
		Name: s.Name, Prefix: s.Prefix, Subscope: s.Subscope,
		Description: s.Description, LongDescription: s.LongDescription,
		Active: s.Active, AccessibleForAll: s.AccessibleForAll, DelegationSource: s.DelegationSource,
		AllowedIntegrationTypes: types, ATMaxAge: int64(s.ATMaxAge), Visibility: s.Visibility,
		RequiresAudience: s.RequiresAudience, Audiences: auds, OwnerOrgno: s.OwnerOrgno,
		Created: ts(s.Created), LastUpdated: ts(s.LastUpdated),
	}, nil
}

func (r scopeRow) record() (store.Scope, error) {
	s := store.Scope{
		Name: r.Name, Prefix: r.Prefix, Subscope: r.Subscope,
		Description: r.Description, LongDescription: r.LongDescription,
		Active: r.Active, AccessibleForAll: r.AccessibleForAll, DelegationSource: r.DelegationSource,
		ATMaxAge: int(r.ATMaxAge), Visibility: r.Visibility, RequiresAudience: r.RequiresAudience,
		OwnerOrgno: r.OwnerOrgno, Created: r.Created.Time, LastUpdated: r.LastUpdated.Time,
	}
	if err := fromJSONText(r.AllowedIntegrationTypes, &s.AllowedIntegrationTypes); err != nil {
		return store.Scope{}, err
	}
	if err := fromJSONText(r.Audiences, &s.Audiences); err != nil {
		return store.Scope{}, err
	}
	return s, nil
}

type accessRow struct {
	Scope         string `gorm:"primaryKey"`
	ConsumerOrgno string `gorm:"primaryKey"`
	OwnerOrgno    string
	State         string
	Reason        string // 00007
	Created       dbTime
	LastUpdated   dbTime
}

func (accessRow) TableName() string { return "access" }

func accessToRow(a store.Access) accessRow {
	return accessRow{Scope: a.Scope, ConsumerOrgno: a.ConsumerOrgno, OwnerOrgno: a.OwnerOrgno,
		State: a.State, Reason: a.Reason, Created: ts(a.Created), LastUpdated: ts(a.LastUpdated)}
}

func (r accessRow) record() store.Access {
	return store.Access{Scope: r.Scope, ConsumerOrgno: r.ConsumerOrgno, OwnerOrgno: r.OwnerOrgno,
		State: r.State, Reason: r.Reason, Created: r.Created.Time, LastUpdated: r.LastUpdated.Time}
}

type delegationRow struct {
	Scope         string `gorm:"primaryKey"`
	ConsumerOrgno string `gorm:"primaryKey"`
	SupplierOrgno string `gorm:"primaryKey"`
	State         string
	Created       dbTime
	LastUpdated   dbTime
}

func (delegationRow) TableName() string { return "delegations" }

func delegationToRow(d store.Delegation) delegationRow {
	return delegationRow{Scope: d.Scope, ConsumerOrgno: d.ConsumerOrgno, SupplierOrgno: d.SupplierOrgno,
		State: d.State, Created: ts(d.Created), LastUpdated: ts(d.LastUpdated)}
}

func (r delegationRow) record() store.Delegation {
	return store.Delegation{Scope: r.Scope, ConsumerOrgno: r.ConsumerOrgno, SupplierOrgno: r.SupplierOrgno,
		State: r.State, Created: r.Created.Time, LastUpdated: r.LastUpdated.Time}
}

type clientRow struct {
	ClientID                string `gorm:"primaryKey"`
	ClientOrgno             string
	ClientName              string
	Description             string
	IntegrationType         string
	TokenEndpointAuthMethod string
	Scopes                  string
	AccessTokenLifetime     int64
	JWKS                    string `gorm:"column:jwks"` // keys with their uploaded_by (00003)
	ManagedBy               string
	Active                  bool
	Created                 dbTime
	LastUpdated             dbTime
}

func (clientRow) TableName() string { return "clients" }

func clientToRow(c store.Client) (clientRow, error) {
	scopes, err := jsonText(c.Scopes)
	if err != nil {
		return clientRow{}, err
	}
	keys := c.Keys
	if keys != nil {
		keys = make([]store.ClientKey, len(c.Keys))
		for i, k := range c.Keys {
			k.Created = k.Created.UTC().Truncate(time.Microsecond)
			k.Expires = k.Expires.UTC().Truncate(time.Microsecond)
			keys[i] = k
		}
	}
	jwks, err := jsonText(keys)
	if err != nil {
		return clientRow{}, err
	}
	return clientRow{
		ClientID: c.ClientID, ClientOrgno: c.ClientOrgno, ClientName: c.ClientName,
		Description: c.Description, IntegrationType: c.IntegrationType,
		TokenEndpointAuthMethod: c.TokenEndpointAuthMethod, Scopes: scopes,
		AccessTokenLifetime: int64(c.AccessTokenLifetime), JWKS: jwks, ManagedBy: c.ManagedBy, Active: c.Active,
		Created: ts(c.Created), LastUpdated: ts(c.LastUpdated),
	}, nil
}

func (r clientRow) record() (store.Client, error) {
	c := store.Client{
		ClientID: r.ClientID, ClientOrgno: r.ClientOrgno, ClientName: r.ClientName,
		Description: r.Description, IntegrationType: r.IntegrationType,
		TokenEndpointAuthMethod: r.TokenEndpointAuthMethod,
		AccessTokenLifetime:     int(r.AccessTokenLifetime), ManagedBy: r.ManagedBy, Active: r.Active,
		Created: r.Created.Time, LastUpdated: r.LastUpdated.Time,
	}
	if err := fromJSONText(r.Scopes, &c.Scopes); err != nil {
		return store.Client{}, err
	}
	if err := fromJSONText(r.JWKS, &c.Keys); err != nil {
		return store.Client{}, err
	}
	for i := range c.Keys {
		c.Keys[i].Created = c.Keys[i].Created.UTC()
		c.Keys[i].Expires = c.Keys[i].Expires.UTC()
	}
	return c, nil
}

type issuedTokenRow struct {
	ClientID      string `gorm:"primaryKey"`
	AssertionJTI  string `gorm:"primaryKey;column:assertion_jti"`
	TokenJTI      string `gorm:"column:token_jti"`
	ConsumerOrgno string
	SupplierOrgno string
	Scopes        string
	Audience      string
	IssuedAt      dbTime
	ExpiresAt     dbTime
	ClientAMR     string `gorm:"column:client_amr"`
}

func (issuedTokenRow) TableName() string { return "issued_tokens" }

func (r issuedTokenRow) record() (store.IssuedToken, error) {
	t := store.IssuedToken{
		ClientID: r.ClientID, AssertionJTI: r.AssertionJTI, TokenJTI: r.TokenJTI,
		ConsumerOrgno: r.ConsumerOrgno, SupplierOrgno: r.SupplierOrgno,
		IssuedAt: r.IssuedAt.Time, ExpiresAt: r.ExpiresAt.Time, ClientAMR: r.ClientAMR,
	}
	if err := fromJSONText(r.Scopes, &t.Scopes); err != nil {
		return store.IssuedToken{}, err
	}
	if err := fromJSONText(r.Audience, &t.Audience); err != nil {
		return store.IssuedToken{}, err
	}
	return t, nil
}

type auditRow struct {
	ID            int64 `gorm:"primaryKey;autoIncrement:false"`
	EventTime     dbTime
	ActorOrg      string
	ActorClientID string
	ActorTokenJTI string `gorm:"column:actor_token_jti"`
	ActorPerson   string // 00010
	Action        string
	TargetKind    string
	Target        string
	Orgs          string
	BeforeState   *string
	AfterState    *string
}

func (auditRow) TableName() string { return "audit_events" }

func rawText(m json.RawMessage) *string {
	if len(m) == 0 {
		return nil
	}
	s := string(m)
	return &s
}

func textRaw(s *string) json.RawMessage {
	if s == nil {
		return nil
	}
	return json.RawMessage(*s)
}

func (r auditRow) record() (store.AuditEvent, error) {
	e := store.AuditEvent{
		ID: r.ID, Time: r.EventTime.Time, ActorOrg: r.ActorOrg, ActorClientID: r.ActorClientID,
		ActorTokenJTI: r.ActorTokenJTI, ActorPerson: r.ActorPerson, Action: r.Action, TargetKind: r.TargetKind, Target: r.Target,
		Before: textRaw(r.BeforeState), After: textRaw(r.AfterState),
	}
	if err := fromJSONText(r.Orgs, &e.Orgs); err != nil {
		return store.AuditEvent{}, err
	}
	return e, nil
}
