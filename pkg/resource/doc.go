// Package resource is the provider side of portvakt (and of Maskinporten): a
// Verifier that checks access tokens against the server's published keys,
// and net/http middleware that demands a valid token with the right scopes
// and hands the verified claims to the handler.
//
//	v, err := resource.NewVerifier(ctx, resource.VerifierConfig{Issuer: "https://auth.example.no/"})
//	mux.Handle("/invoices", resource.RequireScope(v, "acme:invoices.read")(invoices))
//
// In the handler, resource.FromContext(r.Context()) returns the Claims:
// the consumer org (the org the data is for), the supplier org when a vendor
// acts for it by delegation, the scopes, the client and the audience.
//
// The key set (JWKS) is found by RFC 8414 metadata discovery, cached,
// refreshed every RefreshInterval and on a token whose kid is unknown (at
// most once per MinRefreshInterval, so junk tokens cannot make the verifier
// hammer the server). Only asymmetric algorithms are accepted; "none" and
// HMAC never are.
//
// This package must not import portvakt's internal packages: outside programs
// import it.
package resource
