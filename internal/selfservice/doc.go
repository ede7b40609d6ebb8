// Package selfservice is the self-service API under {issuer}api/v1 (SPEC
// section 4): providers manage their scopes and allow-lists, consumers their
// clients, keys and delegations, the platform admin the prefixes, all with
// access tokens from this server.
//
// Errors are RFC 9457 problem details. Handlers return errors and one
// function, writeError, turns them into responses: a *Problem is written as
// it is; a store sentinel becomes its problem (ErrUnavailable 503,
// ErrReadOnly 409); anything else is a generic 500 whose cause goes only to
// the access log. A validation problem lists at most 20 field errors and
// counts the rest (errors_omitted), so a body with thousands of bad entries
// gets a small answer.
//
// What a record may hold (names, descriptions, list sizes, uploaded keys)
// is package records' rule, shared with the config file's declared
// records; this package adds the rules that need the store (may the org
// list that scope?) and checks counts before it looks at items.
//
// Every change runs in one store.Update transaction that also appends the
// audit event, and is followed by rules.Cache.Invalidate, so the token
// endpoint of this process sees it at once (other replicas poll the store's
// generation).
//
// A vendor acting for a consumer through a delegated admin scope is bounded
// by the rules in vendor.go: it never ends up with more power than the
// consumer delegated to it, and revoking its portvakt:clients.write takes
// back what it put in place.
package selfservice
