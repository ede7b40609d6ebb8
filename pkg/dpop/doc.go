// Package dpop owns DPoP (RFC 9449), proof of possession for OAuth tokens,
// for all three sides of portvakt: the token endpoint and the resource
// library verify proofs with a Verifier, the client library makes them with
// a Key, and a server that wants fresh proofs hands out Nonces.
//
// A Verifier applies every rule of RFC 9449 section 4.3 in a fixed order,
// cheapest first, and verifies the signature last: the size of the proof;
// three base64url parts, strictly decoded; typ dpop+jwt; an alg on the
// allow-list of package jwa (never none, never HMAC) that fits the key; a
// jwk header holding a public key (no private members; RSA of 2048 to 8192
// bits, or EC P-256 or P-384); no crit; jti; htm equal to the request's
// method; htu equal to the request's URL without query and fragment; iat
// not older than MaxAge nor further ahead than Leeway; the nonce when
// Nonces are configured; ath (the SHA-256 of the access token) when the
// request carries one; then the signature with that jwk. The answer is a
// Proof carrying the key's RFC 7638 thumbprint (the jkt a bound token's cnf
// names) and the jti with how long it must be remembered. Keeping jti
// single use is the caller's: the token endpoint inserts it in the store,
// a resource server can use a ReplayCache.
//
// Errors are *Error: ErrInvalidProof, or ErrUseNonce when only the nonce is
// missing or stale, with a Description fit for the caller.
//
// This package must not import portvakt's internal packages: outside
// programs import it.
package dpop
