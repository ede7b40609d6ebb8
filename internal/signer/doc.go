// Package signer owns the server's token signing keys: loading or generating
// them, signing (a JWS with kid, alg and typ at+jwt for access tokens, any
// typ through SignType), and publishing them, as the JWKS and as a
// resource.KeySet with which the server verifies its own tokens in process.
// A Set has one active key and any number of published keys (the next key
// before it is used, retired keys until their tokens expire).
//
// The server signs with RS256 or ES256 only (Algorithms), a narrower list
// than the one it accepts from others (package jwa). JWTs are made with
// golang-jwt; go-jose is used for JWKs only.
package signer
