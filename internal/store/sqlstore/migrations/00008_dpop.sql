-- DPoP proofs the token endpoint accepted (RFC 9449): the unique key
-- (jkt, jti) makes each proof single use across replicas while its iat is
-- within the accepted window (live_until). A row past live_until is taken
-- over by a new proof with the same key, and deleted by the purge.

-- +goose Up
CREATE TABLE dpop_proofs (
    jkt        TEXT NOT NULL,
    jti        TEXT NOT NULL,
    live_until TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (jkt, jti)
);
CREATE INDEX dpop_proofs_live_until ON dpop_proofs (live_until);

-- +goose Down
DROP TABLE dpop_proofs;
