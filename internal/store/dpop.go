package store

import "time"

// DPoPProof is a DPoP proof the token endpoint accepted (RFC 9449): its
// insert, unique on (JKT, JTI) while Until has not passed, keeps a proof
// single use, also across replicas.
type DPoPProof struct {
	// JKT is the thumbprint of the proof's key, JTI the proof's jti: two
	// keys may use the same jti.
	JKT string
	JTI string
	// Until is when the proof's iat leaves the accepted window: the row may
	// be purged after it.
	Until time.Time
}
