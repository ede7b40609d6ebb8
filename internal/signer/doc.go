// Package signer owns the server's token signing keys: loading or generating
// them, signing access tokens (JWS with kid and typ at+jwt), and publishing
// the JWKS. A Set has one active key and any number of published keys (the
// next key before it is used, retired keys until their tokens expire).
package signer
