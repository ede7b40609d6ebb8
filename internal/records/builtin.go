package records

import (
	"strings"
	"time"

	"github.com/portvakt/portvakt/internal/store"
)

// BuiltinPrefix is the platform's own prefix: every portvakt has it, owned
// by the platform admin org, with the admin scopes of the self-service API
// under it.
const BuiltinPrefix = "portvakt"

// The built-in admin scopes. A write scope also reads what it writes.
const (
	ScopesRead       = "portvakt:scopes.read"
	ScopesWrite      = "portvakt:scopes.write"
	ClientsRead      = "portvakt:clients.read"
	ClientsWrite     = "portvakt:clients.write"
	DelegationsWrite = "portvakt:delegations.write"
	AuditRead        = "portvakt:audit.read"
	AccessRequest    = "portvakt:access.request"
	WebhooksWrite    = "portvakt:webhooks.write"
	MembersWrite     = "portvakt:members.write"
	// AdminScope is the platform admin's own scope: private, not
	// delegable, and only the platform admin org can get it.
	AdminScope = "portvakt:admin"
)

// AdminScopes are the built-in scopes every org may get (public,
// accessible for all, delegable, no lifetime cap), in the order they are
// listed to people.
var AdminScopes = []string{ScopesRead, ScopesWrite, ClientsRead, ClientsWrite, DelegationsWrite, AuditRead, AccessRequest, WebhooksWrite, MembersWrite}

// IsAdminScope reports whether name is under the platform's own prefix.
func IsAdminScope(name string) bool {
	prefix, _, ok := strings.Cut(name, ":")
	return ok && prefix == BuiltinPrefix
}

// Builtin are the records every portvakt has without configuration: the
// prefix portvakt owned by the platform admin org, the admin scopes and
// portvakt:admin with its one access row. issuer is the delegation source
// of the admin scopes; now stamps them.
func Builtin(issuer, platformOrg string, now time.Time) store.StaticRecords {
	r := store.StaticRecords{
		Prefixes: []store.Prefix{{Prefix: BuiltinPrefix, OwnerOrg: platformOrg, Created: now, LastUpdated: now}},
	}
	mk := func(name, desc string) store.Scope {
		return store.Scope{
			Name: name, Prefix: BuiltinPrefix, Subscope: name[len(BuiltinPrefix)+1:], Description: desc,
			Active: true, AccessibleForAll: true, DelegationSource: issuer,
			AllowedIntegrationTypes: []string{}, Visibility: store.VisibilityPublic, Audiences: []string{},
			OwnerOrgno: platformOrg, Created: now, LastUpdated: now,
		}
	}
	for _, n := range AdminScopes {
		r.Scopes = append(r.Scopes, mk(n, "portvakt self-service API: "+n[len(BuiltinPrefix)+1:]))
	}
	admin := mk(AdminScope, "portvakt platform administration")
	admin.AccessibleForAll, admin.DelegationSource, admin.Visibility = false, "", store.VisibilityPrivate
	r.Scopes = append(r.Scopes, admin)
	r.Access = []store.Access{{Scope: AdminScope, ConsumerOrgno: platformOrg, OwnerOrgno: platformOrg, State: store.AccessApproved, Created: now, LastUpdated: now}}
	return r
}
