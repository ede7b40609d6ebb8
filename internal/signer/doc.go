// Package signer owns the server's token signing keys: loading or generating
// them, signing (a JWS with kid, alg and typ at+jwt for access tokens, any
// typ through SignType), and publishing them, as the JWKS and as a
// resource.KeySet with which the server verifies its own tokens in process.
// A Set has one active key and any number of published keys (the next key
// before it is used, retired keys until their tokens expire).
//
// Keys can live in the store, shared by every replica (Keeper): private
// parts sealed with AES-256-GCM under a key-encryption key (KEK, the kid as
// additional data), rotated on a Policy — NEXT published before it signs,
// CURRENT, RETIRED until its tokens expire — by the one replica holding a
// lease, each step a pure function of the stored keys and the clock. A Key
// holds any crypto.Signer, so a key that never leaves an HSM fits too: a
// Vault keeps the private parts, a KEK sealing them into the store or an
// HSM (package hsm) keeping them in its token, the store then holding only a
// reference to each.
//
// The server signs with RS256 or ES256 only (Algorithms), a narrower list
// than the one it accepts from others (package jwa). JWTs are made with
// golang-jwt; go-jose is used for JWKs only.
package signer
