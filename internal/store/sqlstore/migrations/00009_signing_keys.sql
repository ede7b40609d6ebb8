-- Signing keys shared by every replica, and leases.
--
-- signing_keys: the server's token signing keys. private_sealed is the
-- private key sealed under the key-encryption key (AES-GCM, base64), never
-- the key in clear. At most one NEXT and one CURRENT key (partial unique
-- indexes, on both engines), so two replicas cannot both make a NEXT key.
--
-- leases: named leases held by one replica until expires_at (the signing
-- key rotation runs on the replica holding signing_key_rotation).

-- +goose Up
CREATE TABLE signing_keys (
    kid            TEXT PRIMARY KEY,
    alg            TEXT NOT NULL,
    public_jwk     TEXT NOT NULL,
    private_sealed TEXT NOT NULL,
    state          TEXT NOT NULL,
    published_at   TIMESTAMP WITH TIME ZONE NOT NULL,
    activated_at   TIMESTAMP WITH TIME ZONE,
    retired_at     TIMESTAMP WITH TIME ZONE,
    remove_after   TIMESTAMP WITH TIME ZONE
);
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (state) WHERE state = 'NEXT';
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys (state) WHERE state = 'CURRENT';

CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    expires_at TIMESTAMP WITH TIME ZONE NOT NULL
);

-- +goose Down
DROP TABLE leases;
DROP TABLE signing_keys;
