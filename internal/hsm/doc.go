// Package hsm keeps the server's signing keys in a hardware security module
// over PKCS#11 (crypto11): a Token is a signer.Vault whose keys are
// generated in the token, sensitive and not extractable, and never leave
// it. The store keeps each key's public JWK and a reference to it in the
// token (an RFC 7512 "pkcs11:" URI with its label and id), by which every
// replica finds it.
//
// PKCS#11 needs cgo and a vendor's module, so it is built only with the
// pkcs11 build tag; without it Connect refuses with ErrNotBuilt, and the
// static binary stays static. The tests run against SoftHSM2
// (scripts/softhsm.sh).
package hsm
