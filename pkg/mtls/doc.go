// Package mtls owns certificate-bound access tokens (RFC 8705 section 3) for
// the token endpoint and the resource library: the thumbprint a bound
// token's cnf names (x5t#S256, the base64url SHA-256 of the certificate's
// DER), and a Source that finds the client certificate of an HTTP request.
//
// A Source reads the certificate from the request's TLS connection, or,
// behind a TLS-terminating proxy, from one header the proxy sets. The header
// is believed only when the request's peer address is one of the configured
// trusted proxies: from any other address it is ignored (the Peer says so,
// for the log), so a client cannot claim a certificate it does not hold.
// The two compose: a request from a trusted proxy is judged by the header
// alone (the TLS certificate on that connection, if any, is the proxy's),
// every other request by its own TLS connection.
//
// The header holds one certificate, in one of two encodings, told apart by
// their first characters:
//   - PEM, URL-escaped: nginx's $ssl_client_escaped_cert, the AWS
//     application load balancer's X-Amzn-Mtls-Clientcert, Traefik's and
//     Caddy's escaped PEM. This is the common one.
//   - base64 DER (standard alphabet, padding optional), optionally
//     URL-escaped: HAProxy's %[ssl_c_der,base64].
//
// An empty header is no certificate (nginx sends "" when the client showed
// none); a header that is repeated, too large or does not parse is an error
// the caller answers with 400 invalid_request. Envoy's structured
// X-Forwarded-Client-Cert (By=...;Cert="...") is not read: configure Envoy
// to send the escaped PEM alone, or put nginx's format in the header.
//
// This package checks no chain: the TLS listener (or the proxy) verified the
// certificate when the client proved it holds the key. Binding needs only
// that proof of possession; the client authenticates with its grant.
//
// This package must not import portvakt's internal packages: outside
// programs import it.
package mtls
