package store

import (
	"encoding/json"
	"time"
)

// Signing key states: a key is published as NEXT before it signs, signs as
// CURRENT, and stays published as RETIRED until RemoveAfter, when it is
// deleted. At most one key is NEXT and one CURRENT.
const (
	SigningKeyNext    = "NEXT"
	SigningKeyCurrent = "CURRENT"
	SigningKeyRetired = "RETIRED"
)

// SigningKey is one of the server's token signing keys, shared by every
// replica. The private key is only ever stored sealed (the signer package
// seals it under the key-encryption key): the store never sees it in clear.
type SigningKey struct {
	KID       string
	Alg       string
	PublicJWK json.RawMessage
	// PrivateSealed is the private key sealed under the key-encryption
	// key, with the kid as additional data; or, for a key held in an HSM,
	// a reference to it in the token (a "pkcs11:" URI), never the key.
	PrivateSealed []byte
	State         string
	PublishedAt   time.Time
	ActivatedAt   time.Time // zero until CURRENT
	RetiredAt     time.Time // zero until RETIRED
	RemoveAfter   time.Time // zero until RETIRED
}

// SigningKeyUpdate moves the stored key Key.KID from the state From to
// Key.State with Key's times (the other fields of Key are ignored). The
// condition on From makes a rotation step apply once: of two replicas
// applying the same step, the second fails with ErrConflict.
type SigningKeyUpdate struct {
	From string
	Key  SigningKey
}

// SigningKeyChange is one atomic change to the signing keys: all of it,
// with its events, commits or none. Deletes (of RETIRED keys only) apply first, then the
// updates (retirements before activations, so that there is never a moment
// with two CURRENT keys), then the creates. A missing key, a key not in the
// expected state, or a second NEXT or CURRENT fails with ErrConflict.
type SigningKeyChange struct {
	Create []SigningKey
	Update []SigningKeyUpdate
	Delete []string // kids of RETIRED keys
	// Events are appended to the event outbox in the same transaction
	// (as by Tx.AppendEvent): signing_key.rotated when a key activates.
	Events []Event
}

// Lease asks for the named lease (the signing-key rotation's, say) for
// Owner until Now+TTL. It is granted when nobody holds it, Owner already
// does (a renewal), or the holder's lease ran out before Now.
type Lease struct {
	Name  string
	Owner string
	Now   time.Time
	TTL   time.Duration
}

// LeaseSigningKeyRotation names the lease of the one replica that rotates
// the signing keys.
const LeaseSigningKeyRotation = "signing_key_rotation"

// LeaseClientKeyScan names the lease of the latest scan for expiring
// client keys: taken for the scan interval, never renewed, so the replicas
// scan once per interval between them.
const LeaseClientKeyScan = "client_key_scan"
