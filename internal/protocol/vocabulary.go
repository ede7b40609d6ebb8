package protocol

import "net/url"

// GrantTypeJWTBearer is the only grant the token endpoint serves (RFC 7523).
const GrantTypeJWTBearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// client_amr values: how the client authenticated its grant.
const (
	AMRCertificate   = "virksomhetssertifikat"
	AMRPrivateKeyJWT = "private_key_jwt"
)

// Integration types and authentication methods a client may have.
const (
	IntegrationMaskinporten = "maskinporten"
	AuthPrivateKeyJWT       = "private_key_jwt"
)

// AudienceUnspecified is the token aud when the grant named no resource.
const AudienceUnspecified = "unspecified"

// TokenType is the JOSE typ of portvakt access tokens (RFC 9068).
const TokenType = "at+jwt"

// ISO 6523 actor authority used in consumer and supplier claims.
const OrgAuthority = "iso6523-actorid-upis"

// OrgPrefix precedes an organisation number in an ISO 6523 actor ID.
const OrgPrefix = "0192:"

// Org is the consumer or supplier claim of an access token.
type Org struct {
	Authority string `json:"authority"`
	ID        string `json:"ID"`
}

// NewOrg wraps a 9-digit organisation number as an ISO 6523 actor.
func NewOrg(orgno string) Org { return Org{Authority: OrgAuthority, ID: OrgPrefix + orgno} }

// Orgno returns the organisation number of o, or "" when o is not a Norwegian
// organisation (authority and prefix must both match).
func (o Org) Orgno() string {
	if o.Authority != OrgAuthority || len(o.ID) != len(OrgPrefix)+9 || o.ID[:len(OrgPrefix)] != OrgPrefix {
		return ""
	}
	return o.ID[len(OrgPrefix):]
}

// AccessTokenClaims are the claims of a portvakt access token (docs/protocol.md).
// Aud is a string or an array of strings.
type AccessTokenClaims struct {
	Issuer           string `json:"iss"`
	ClientID         string `json:"client_id"`
	ClientAMR        string `json:"client_amr"`
	TokenType        string `json:"token_type"`
	Scope            string `json:"scope"`
	Consumer         Org    `json:"consumer"`
	Supplier         *Org   `json:"supplier,omitempty"`
	DelegationSource string `json:"delegation_source,omitempty"`
	Aud              any    `json:"aud"`
	PID              string `json:"pid,omitempty"`
	IssuedAt         int64  `json:"iat"`
	ExpiresAt        int64  `json:"exp"`
	JTI              string `json:"jti"`
	// Cnf binds the token to a key (RFC 7800); nil for a bearer token.
	Cnf *Confirmation `json:"cnf,omitempty"`
}

// Token types: the token_type claim and the response's token_type.
const (
	TokenTypeBearer = "Bearer"
	TokenTypeDPoP   = "DPoP"
)

// Confirmation is a bound token's cnf claim.
type Confirmation struct {
	// JKT is the RFC 7638 thumbprint of the DPoP key (RFC 9449 section 6.1).
	JKT string `json:"jkt,omitempty"`
	// X5T is the x5t#S256 of the client certificate (RFC 8705 section
	// 3.1): the base64url SHA-256 of its DER.
	X5T string `json:"x5t#S256,omitempty"`
}

// ValidResource reports whether s is an absolute URI usable as an RFC 8707
// resource indicator (a scheme, no fragment).
func ValidResource(s string) bool {
	if s == "" || len(s) > 2048 {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && u.IsAbs() && u.Fragment == "" && (u.Host != "" || u.Opaque != "")
}
