package resource

import (
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portvakt/portvakt/pkg/mtls"
)

// Claims are a verified token's claims.
type Claims struct {
	Issuer   string
	ClientID string
	// ClientAMR is how the client authenticated: "virksomhetssertifikat"
	// (enterprise certificate) or "private_key_jwt" (registered key).
	ClientAMR string
	// Scope is the scope claim as sent; Scopes is it split on spaces.
	Scope  string
	Scopes []string
	// ConsumerOrg is the org the token acts for: the client's org, or the
	// customer that delegated to it. This is usually whose data to serve.
	ConsumerOrg string
	// SupplierOrg is the vendor's org when the token comes from a
	// delegation; empty otherwise.
	SupplierOrg string
	// DelegationSource is the issuer of the delegation, when delegated.
	DelegationSource string
	// Audience holds aud, a string or an array in the token.
	Audience  []string
	PID       string
	IssuedAt  time.Time
	ExpiresAt time.Time
	JTI       string
	// JKT is the thumbprint of the DPoP key the token is bound to (cnf.jkt),
	// empty for a bearer token.
	JKT string
	// X5T is the thumbprint of the client certificate the token is bound
	// to (cnf.x5t#S256, RFC 8705), empty when it is not.
	X5T string
	// Raw holds every claim as decoded JSON.
	Raw map[string]any
}

// HasScope reports whether s is among the granted scopes.
func (c *Claims) HasScope(s string) bool { return slices.Contains(c.Scopes, s) }

// Delegated reports whether a vendor (SupplierOrg) acts for ConsumerOrg.
func (c *Claims) Delegated() bool { return c.SupplierOrg != "" }

const (
	orgAuthority = "iso6523-actorid-upis"
	orgPrefix    = "0192:"
)

func claimsFrom(mc jwt.MapClaims) (*Claims, error) {
	c := &Claims{Raw: mc}
	var bad string
	str := func(name string) string {
		v, ok := mc[name]
		if !ok {
			return ""
		}
		s, ok := v.(string)
		if !ok && bad == "" {
			bad = name
		}
		return s
	}
	c.Issuer = str("iss")
	c.ClientID = str("client_id")
	c.ClientAMR = str("client_amr")
	c.Scope = str("scope")
	c.Scopes = strings.Fields(c.Scope)
	c.DelegationSource = str("delegation_source")
	c.PID = str("pid")
	c.JTI = str("jti")
	if bad != "" {
		return nil, invalid("claim "+bad+" is not a string", nil)
	}
	var ok bool
	if c.ConsumerOrg, ok = orgClaim(mc["consumer"]); !ok {
		return nil, invalid("claim consumer is malformed", nil)
	}
	if c.SupplierOrg, ok = orgClaim(mc["supplier"]); !ok {
		return nil, invalid("claim supplier is malformed", nil)
	}
	if cnf, ok := mc["cnf"]; ok {
		m, isObj := cnf.(map[string]any)
		if !isObj {
			return nil, invalid("claim cnf is malformed", nil)
		}
		for name, val := range m {
			s, _ := val.(string)
			switch {
			case name == "jkt" && s != "":
				c.JKT = s
			case name == mtls.CnfMember && s != "":
				c.X5T = s
			case name == "jkt" || name == mtls.CnfMember:
				return nil, invalid("claim cnf."+name+" is malformed", nil)
			default:
				// A confirmation this library cannot check: fail closed.
				return nil, invalid("claim cnf names a confirmation method this verifier does not know", nil)
			}
		}
		if c.JKT == "" && c.X5T == "" {
			return nil, invalid("claim cnf is empty", nil)
		}
	}
	aud, err := mc.GetAudience()
	if err != nil {
		return nil, invalid("claim aud is malformed", err)
	}
	c.Audience = []string(aud)
	if t, err := mc.GetIssuedAt(); err == nil && t != nil {
		c.IssuedAt = t.Time
	}
	if t, err := mc.GetExpirationTime(); err == nil && t != nil {
		c.ExpiresAt = t.Time
	}
	return c, nil
}

// orgClaim reads {"authority":"iso6523-actorid-upis","ID":"0192:<org>"}.
// An absent claim is fine; a present one must have that exact shape.
func orgClaim(v any) (string, bool) {
	if v == nil {
		return "", true
	}
	m, ok := v.(map[string]any)
	if !ok {
		return "", false
	}
	auth, _ := m["authority"].(string)
	id, _ := m["ID"].(string)
	org, found := strings.CutPrefix(id, orgPrefix)
	if auth != orgAuthority || !found || len(org) != 9 || strings.Trim(org, "0123456789") != "" {
		return "", false
	}
	return org, true
}
