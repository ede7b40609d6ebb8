// Package selfservice is the self-service API under {issuer}api/v1: the JSON
// face of the self-service core (internal/manage). Providers manage their
// scopes and allow-lists, consumers their clients, keys and delegations, the
// platform admin the prefixes, all with access tokens from this server.
//
// A handler only reads its request (path, query, a strictly decoded JSON
// body of at most 64 KiB), calls one operation of the core with the caller
// as its actor, and writes the answer; every rule is the core's. The route
// table (routes) is the API's contract: the OpenAPI test compares it with
// openapi.json. A route names the admin scopes it needs (the core's
// manage.Need sets) and checks them before it reads its input, so a caller
// without the scope learns that first; the core checks them again.
//
// Bearer tokens are portvakt's own access tokens, verified against the
// server's signing keys with no expiry leeway, the exact issuer and typ
// at+jwt (auth.go).
//
// Errors are RFC 9457 problem details. Handlers return errors and one
// function, writeError, turns them into responses: a *Problem is written as
// it is; a refusal of the core (*manage.Error) becomes the problem of its
// kind (400 with its field errors, 403, 404, 409, or 403 insufficient_scope
// with its WWW-Authenticate challenge); a store sentinel becomes its problem
// (ErrUnavailable 503, ErrReadOnly 409); anything else is a generic 500 whose
// cause goes only to the access log. A validation problem lists at most 20
// field errors and counts the rest (errors_omitted).
//
// Lists are paged by key (paging.go): ?limit= and ?cursor=, with a Link
// header (rel="next") to the next page.
package selfservice
