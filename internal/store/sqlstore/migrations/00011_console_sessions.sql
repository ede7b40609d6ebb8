-- The web console's server-side sessions, and the state of logins under
-- way (OpenID Connect state, nonce and PKCE verifier), so that any replica
-- serves any person and finishes a login another started. The cookie holds
-- a random id; only its SHA-256 (id_hash) is kept. expires_at is the
-- earlier of the idle and the absolute expiry; the purge deletes rows past it.

-- +goose Up
CREATE TABLE console_sessions (
    id_hash    TEXT NOT NULL PRIMARY KEY,
    kind       TEXT NOT NULL,
    subject    TEXT NOT NULL DEFAULT '',
    org        TEXT NOT NULL DEFAULT '',
    data       TEXT NOT NULL DEFAULT '',
    created    TIMESTAMP WITH TIME ZONE NOT NULL,
    last_seen  TIMESTAMP WITH TIME ZONE NOT NULL,
    expires_at TIMESTAMP WITH TIME ZONE NOT NULL
);
CREATE INDEX console_sessions_expires_at ON console_sessions (expires_at);

-- +goose Down
DROP TABLE console_sessions;
