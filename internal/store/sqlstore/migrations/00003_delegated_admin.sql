-- Delegated administration is bounded (docs/selfservice.md): a client remembers the
-- vendor whose caller created it through a delegated admin scope
-- (managed_by), and each key the org whose caller uploaded it (uploaded_by).
--
-- Existing clients were made by their owner or the platform admin, so
-- managed_by '' is right for them. Keys live in the jwks JSON column, so
-- uploaded_by needs no column: a stored key without it reads as "", which
-- means the client's own org. A key a vendor uploaded before this migration
-- cannot be told from the owner's here; the audit log (client.keys.replace,
-- actor_org) names who uploaded it.

-- The audit view of a vendor finds the tokens of the clients it manages by
-- managed_by; most clients have none, so the index is partial.

-- +goose Up
ALTER TABLE clients ADD COLUMN managed_by TEXT NOT NULL DEFAULT '';
CREATE INDEX clients_managed_by ON clients (managed_by) WHERE managed_by <> '';

-- +goose Down
DROP INDEX clients_managed_by;
ALTER TABLE clients DROP COLUMN managed_by;
