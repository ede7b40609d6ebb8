// Package jwa owns the one list of JWS signature algorithms portvakt accepts
// (RFC 7518 names) and which public key each of them fits. The token
// endpoint checks client assertions against it, the self-service API checks
// uploaded keys against it, and pkg/resource checks access tokens against
// it; the server's own, narrower list of what it signs with is in
// internal/signer.
//
// The list holds RSA (PKCS #1 v1.5 and PSS, SHA-256/384/512, keys of at
// least MinRSABits) and ECDSA (P-256 with SHA-256, P-384 with SHA-384).
// "none" and HMAC are never on it: a verifier that accepted either could be
// handed a token made without the signer's private key.
//
// Every function returns a fresh slice, so no caller can widen the list for
// the others.
package jwa
