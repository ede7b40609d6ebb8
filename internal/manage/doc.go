// Package manage is portvakt's self-service core: the operations through
// which organisations manage their records (the platform admin its prefixes,
// providers their scopes and allow-lists, consumers their clients, keys and
// delegations, vendors what consumers delegated to them, every org the
// people who act for it in the web console: members.go) and read their
// audit trail. The JSON API (internal/selfservice) and the web console are thin
// shells over it: they decode, call, and present what it returns.
//
// Every operation takes (ctx, actor, input) and returns records or an
// *Error. The Actor is who acts: the organisation acted for, the client (or
// person) acting, the admin scopes it holds, and the vendor organisation when
// a vendor acts for a consumer through a delegated admin scope. An operation
// first checks that the actor holds one of the admin scopes it needs and,
// for a vendor, that the consumer still delegates one of them; a write checks
// that again inside its transaction, so a revoke committed a moment ago
// cannot slip through.
//
// Errors have a kind (invalid, forbidden, not found, conflict, insufficient
// scope) and a public detail written for the person who must fix the
// request; the shells map the kind to their own presentation (an RFC 9457
// problem, a form message). Store sentinels (store.ErrUnavailable,
// store.ErrReadOnly) pass through unchanged; anything else is a server error
// whose cause only the log sees.
//
// What a record may hold is package records' rule (one Validate per record
// kind, shared with the config file's declared records); this package adds
// the rules that need other records: who owns what, who may list or delegate
// which scope (the pure decision of package access, over the records the
// write transaction read), what a vendor may do (vendor.go). Another org's
// record is "not found", exactly as one that does not exist.
//
// Every change runs in one store transaction that also appends its audit
// events, and is followed by rules.Cache.Invalidate, so the token endpoint
// of this process sees it at once (other replicas follow the change log).
package manage
