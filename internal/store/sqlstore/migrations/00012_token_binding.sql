-- Sender-constrained tokens as policy: a scope says which binding its
-- tokens need (token_binding: none, dpop, mtls or any), a client may
-- require DPoP for all its tokens (require_dpop), and each issued-token row
-- keeps what its token was bound to: the DPoP key's RFC 7638 thumbprint
-- (cnf_jkt) and the client certificate's SHA-256 thumbprint (cnf_x5t),
-- empty when unbound. Existing scopes need no binding and existing clients
-- no proof, as before; existing tokens were bearer tokens or had their
-- binding only in the signed token.
--
-- On PostgreSQL issued_tokens is partitioned (migration 6): a column added
-- to the parent is added to every partition, and a constant default
-- rewrites nothing.

-- +goose Up
ALTER TABLE scopes ADD COLUMN token_binding TEXT NOT NULL DEFAULT 'none';
ALTER TABLE clients ADD COLUMN require_dpop BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE issued_tokens ADD COLUMN cnf_jkt TEXT NOT NULL DEFAULT '';
ALTER TABLE issued_tokens ADD COLUMN cnf_x5t TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE issued_tokens DROP COLUMN cnf_x5t;
ALTER TABLE issued_tokens DROP COLUMN cnf_jkt;
ALTER TABLE clients DROP COLUMN require_dpop;
ALTER TABLE scopes DROP COLUMN token_binding;
