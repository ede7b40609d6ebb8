// Package exchange is the token exchange of the JWT grant: it takes the typed
// request (one assertion), authenticates the client by its registered key or
// its enterprise certificate, checks the assertion's claims, asks the access
// decision for the scopes, signs the access token and writes the one
// issued-token row whose unique insert is the replay check. Every rule runs in
// the fixed order of docs/protocol.md so one request always gets the same answer.
// Before the client's key or certificate is touched, the request is counted
// against the rate limits (internal/ratelimit), so a flood costs no
// signature work. It knows nothing of HTTP or fosite.
//
// A request may carry a DPoP proof (RFC 9449): it is verified (pkg/dpop)
// after the rate limits and before the client's key or certificate, made
// single use by its insert in the store after the decision and before the
// replay insert, and binds the token to its key (cnf.jkt, token_type DPoP).
// What the request can bind its token to (access.Binding) goes into the
// access decision, which holds it against the client's require_dpop and
// each scope's token_binding, and into the issued-token row (cnf_jkt,
// cnf_x5t).
//
// It reports through its Observer (Config.Observer), the one shape every
// reporting package has: each step of the grant (the Step constants) is
// told as it starts and ends, with its context and error, and the
// implementation turns steps into spans and the signing step into a
// duration metric. Nil observes nothing; the package imports no telemetry
// library.
package exchange
