// Package client is the consumer side of portvakt (and of Maskinporten): it
// builds and signs JWT grants (RFC 7523) with an enterprise certificate (x5c)
// or a registered key (kid), exchanges them at the token endpoint, and caches
// the access token until shortly before it expires.
//
// Three lines, in golang.org/x/oauth2's shape: a Config naming the signing
// files, and an *http.Client that adds a fresh token to every request:
//
//	conf := &client.Config{
//		Issuer:   "https://auth.example.no/",
//		ClientID: "0b1ed1ac-4e3a-4c83-9f4b-0c1a1d2e3f40",
//		Scopes:   []string{"acme:invoices.read"},
//		PKCS12File: "virksomhetssertifikat.p12", PKCS12Password: os.Getenv("P12_PASSWORD"),
//	}
//	resp, err := conf.Client(ctx).Get("https://api.example.no/invoices")
//
// The signing key comes from CertFile and KeyFile (PEM), from PKCS12File and
// PKCS12Password, or, for a key registered with the client, from KeyFile and
// KeyID. conf.TokenSource(ctx) is the oauth2.TokenSource behind the client.
// Neither fails when made: a missing file or a wrong password is the error of
// every request, as with x/oauth2.
//
// With the key in memory rather than in files, build a Signer and use
// NewTokenSource, which reports a bad Config at once:
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
// With Config.MTLS set (&client.MTLS{} reuses the enterprise certificate
// the grants are signed with, usually also the client's TLS certificate),
// the token request and every request of the returned *http.Client present
// that certificate in the TLS handshake (RFC 8705), so the server binds the
// token to it (cnf.x5t#S256) and a resource server accepts it only over a
// connection made with it. MTLS.CertFile and KeyFile name another
// certificate; a client that signs with a registered key must name one.
// DPoP and MTLS can be combined: the token is then bound to both.
//
// Errors from the token endpoint are *Error values carrying the OAuth error
// code and description; inspect them with errors.As.
//
// This package must not import portvakt's internal packages: outside programs
// import it.
package client
