// Package protocol is portvakt's protocol vocabulary: the OAuth 2.0 error type
// with a public face and a private cause, the grant type and error codes, and
// the Maskinporten-shaped claim names and values shared by the server and its
// tests. It holds no logic beyond constructing and describing those values.
package protocol
