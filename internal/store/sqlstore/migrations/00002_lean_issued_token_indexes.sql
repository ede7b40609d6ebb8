-- The issued-token insert is on the path of every token: each index is one
-- more B-tree page written per token. Purge now finds expired rows through
-- issued_at (a token lives at most 2 h after it was issued), so expires_at
-- needs no index of its own; only delegated tokens have a supplier, so its
-- index is partial and direct tokens skip it.

-- +goose Up
DROP INDEX issued_tokens_expires_at;
DROP INDEX issued_tokens_supplier_orgno;
CREATE INDEX issued_tokens_supplier_orgno ON issued_tokens (supplier_orgno) WHERE supplier_orgno <> '';

-- +goose Down
DROP INDEX issued_tokens_supplier_orgno;
CREATE INDEX issued_tokens_supplier_orgno ON issued_tokens (supplier_orgno);
CREATE INDEX issued_tokens_expires_at ON issued_tokens (expires_at);
