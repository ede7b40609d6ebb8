// Package client is the consumer side of portvakt (and of Maskinporten): it
// builds and signs JWT grants (RFC 7523) with an enterprise certificate (x5c)
// or a registered key (kid), exchanges them at the token endpoint, and caches
// the access token until shortly before it expires.
//
// A TokenSource is an oauth2.TokenSource, so it plugs into oauth2.Transport:
//
//	key, chain, _ := client.LoadPKCS12(p12, password)
//	signer, _ := client.CertificateSigner(key, chain)
//	ts, _ := client.NewTokenSource(ctx, client.Config{Issuer: issuer, ClientID: id, Scopes: scopes, Signer: signer})
//	httpClient := &http.Client{Transport: &oauth2.Transport{Source: ts}}
//
// Prefer oauth2.Transport over oauth2.NewClient: NewClient wraps the source in
// oauth2.ReuseTokenSource, which keeps a token until 10 s before expiry and so
// overrides RenewBefore. TokenSource caches on its own.
//
// A Client holds the signing material and endpoint once and hands out one
// cached TokenSource per (scopes, resources, consumer_org): use it when one
// program asks for several scope sets or acts for several customers.
//
// With Config.DPoP set (&client.DPoP{} generates the key), every token is
// bound to a key the program holds (RFC 9449), so a token that leaks is
// worthless alone: TokenSource.HTTPClient sends each request with
// "Authorization: DPoP" and a fresh proof, and both it and the token
// requests retry once with a server's DPoP-Nonce when told use_dpop_nonce.
//
// Errors from the token endpoint are *Error values carrying the OAuth error
// code and description; inspect them with errors.As.
//
// This package must not import portvakt's internal packages: outside programs
// import it.
package client
