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
// A Verifier finds keys in a KeySet (go-oidc's KeySet is the model, cut to
// key lookup: the Verifier does every check itself). By default it is a
// RemoteKeySet: the JWKS found by RFC 8414 metadata discovery, cached,
// refreshed every RefreshInterval and on a token whose kid is unknown (at
// most once per MinRefreshInterval, so junk tokens cannot make the verifier
// hammer the server). A StaticKeySet holds keys already in memory; portvakt
// verifies its own tokens that way, against its signing keys.
//
// What a Verifier accepts: a JWS whose alg is on the allow-list of package
// jwa ("none" and HMAC never are), the alg of the key its kid names (and one
// that fits that key), typ at+jwt, the exact issuer, an exp, and the
// audience when one is configured. Leeway on exp, nbf and iat is 5 s unless
// configured: VerifierConfig.Leeway for another amount, NoLeeway for none
// (a zero-valued config never means "no leeway", so it keeps the safe
// default).
//
// DPoP-bound tokens (RFC 9449; cnf.jkt in the token, Claims.JKT) are
// accepted only as "Authorization: DPoP <token>" with one DPoP proof made
// by the bound key for this very request: htm its method, htu its URL under
// VerifierConfig.DPoP.PublicURL (never read from the Host or forwarded
// headers unless URLFromForwardedHeaders says so), ath the token's hash, a
// recent iat, and a jti not seen before by this Verifier (an in-memory,
// bounded cache). A bound token sent as Bearer is refused, so a stolen one
// is worthless without its key. Challenges follow RFC 6750 and RFC 9449:
// "DPoP algs=..." beside "Bearer", and error="invalid_dpop_proof",
// "use_dpop_nonce" (with DPoP-Nonce) or "invalid_token". Verify checks
// bearer tokens; VerifyDPoP checks a token with its proof.
//
// Certificate-bound tokens (RFC 8705 section 3; cnf.x5t#S256, Claims.X5T)
// are accepted only with the request that carries that client certificate:
// on its TLS connection (serve TLS with a tls.Config that asks for client
// certificates), or, behind a TLS-terminating proxy, in the header
// VerifierConfig.MTLS names, believed only from its TrustedProxies. Another
// certificate, none, or plain HTTP is 401 invalid_token with a Bearer
// challenge. VerifyBearer checks a bearer token with its request; a token
// bound both to a DPoP key and a certificate needs both (VerifyDPoP checks
// the certificate too). A cnf this package does not know is refused.
//
// Every refusal of the middleware has the same shape: the status, its
// challenge, and a JSON body {"error","error_description"} (the bare 401
// for a request without credentials too). The description is public; the
// private cause (TokenError.Cause) goes to VerifierConfig.Log when one is
// set, one line per refused request.
//
// This package must not import portvakt's internal packages: outside programs
// import it.
package resource
