// Package tokenendpoint serves POST {issuer}token through fosite: fosite
// parses the request, dispatches to portvakt's own TokenEndpointHandler for
// the JWT grant and renders RFC 6749 errors. The form checks fosite does not
// make the way docs/protocol.md wants (method, media type, body size, repeated or
// missing parameters, the grant type) run first. fosite types stay inside
// this package; the grant itself is the exchange package's.
//
// fosite is kept away from what it would otherwise do: no client is
// authenticated (CanSkipClientAuth), nothing is persisted through its
// storage (its Storage refuses everything) and no token is issued through
// its HandleHelper, so issuing a token writes exactly the one issued-token
// row. A request over a rate limit is answered 429 with Retry-After (the
// exchange counts it; this package writes the header).
//
// A DPoP header (RFC 9449) is checked here only for its count and size,
// before any signature work; the exchange verifies the proof. With
// Config.DPoPNonces, the answer to a request with a proof carries the
// current nonce in DPoP-Nonce (use_dpop_nonce tells a client to use it).
//
// A client certificate binds the token (RFC 8705 section 3, cnf.x5t#S256):
// Config.Certificates finds it on the TLS connection or, from a trusted
// proxy only, in the proxy's header. A header from any other address is
// ignored and named in the access line; a trusted proxy's header that does
// not parse is 400 invalid_request. The certificate never authenticates the
// client: the assertion does.
//
// Config.Observer is told the outcome of every token request (metrics),
// timed on Config.Now; nil observes nothing.
package tokenendpoint
