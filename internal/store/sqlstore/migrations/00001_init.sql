-- One schema for SQLite and PostgreSQL: only types and syntax both accept.
-- Lists are JSON in TEXT columns; timestamps are UTC, microsecond precision.

-- +goose Up
CREATE TABLE prefixes (
    prefix       TEXT PRIMARY KEY,
    owner_org    TEXT NOT NULL,
    created      TIMESTAMP WITH TIME ZONE,
    last_updated TIMESTAMP WITH TIME ZONE
);
CREATE INDEX prefixes_owner_org ON prefixes (owner_org);

CREATE TABLE scopes (
    name                      TEXT PRIMARY KEY,
    prefix                    TEXT NOT NULL,
    subscope                  TEXT NOT NULL,
    description               TEXT NOT NULL DEFAULT '',
    long_description          TEXT NOT NULL DEFAULT '',
    active                    BOOLEAN NOT NULL,
    accessible_for_all        BOOLEAN NOT NULL,
    delegation_source         TEXT NOT NULL DEFAULT '',
    allowed_integration_types TEXT NOT NULL DEFAULT 'null',
    at_max_age                BIGINT NOT NULL DEFAULT 0,
    visibility                TEXT NOT NULL DEFAULT '',
    requires_audience         BOOLEAN NOT NULL,
    audiences                 TEXT NOT NULL DEFAULT 'null',
    owner_orgno               TEXT NOT NULL,
    created                   TIMESTAMP WITH TIME ZONE,
    last_updated              TIMESTAMP WITH TIME ZONE
);
CREATE INDEX scopes_prefix ON scopes (prefix);
CREATE INDEX scopes_owner_orgno ON scopes (owner_orgno);

CREATE TABLE access (
    scope          TEXT NOT NULL,
    consumer_orgno TEXT NOT NULL,
    owner_orgno    TEXT NOT NULL,
    state          TEXT NOT NULL,
    created        TIMESTAMP WITH TIME ZONE,
    last_updated   TIMESTAMP WITH TIME ZONE,
    PRIMARY KEY (scope, consumer_orgno)
);
CREATE INDEX access_consumer_orgno ON access (consumer_orgno);
CREATE INDEX access_owner_orgno ON access (owner_orgno);

CREATE TABLE delegations (
    scope          TEXT NOT NULL,
    consumer_orgno TEXT NOT NULL,
    supplier_orgno TEXT NOT NULL,
    state          TEXT NOT NULL,
    created        TIMESTAMP WITH TIME ZONE,
    last_updated   TIMESTAMP WITH TIME ZONE,
    PRIMARY KEY (scope, consumer_orgno, supplier_orgno)
);
CREATE INDEX delegations_consumer_orgno ON delegations (consumer_orgno);
CREATE INDEX delegations_supplier_orgno ON delegations (supplier_orgno);

CREATE TABLE clients (
    client_id                  TEXT PRIMARY KEY,
    client_orgno               TEXT NOT NULL,
    client_name                TEXT NOT NULL DEFAULT '',
    description                TEXT NOT NULL DEFAULT '',
    integration_type           TEXT NOT NULL DEFAULT '',
    token_endpoint_auth_method TEXT NOT NULL DEFAULT '',
    scopes                     TEXT NOT NULL DEFAULT 'null',
    access_token_lifetime      BIGINT NOT NULL DEFAULT 0,
    jwks                       TEXT NOT NULL DEFAULT 'null',
    active                     BOOLEAN NOT NULL,
    created                    TIMESTAMP WITH TIME ZONE,
    last_updated               TIMESTAMP WITH TIME ZONE
);
CREATE INDEX clients_client_orgno ON clients (client_orgno);

-- The primary key is the replay check: one row per (client, assertion jti).
CREATE TABLE issued_tokens (
    client_id      TEXT NOT NULL,
    assertion_jti  TEXT NOT NULL,
    token_jti      TEXT NOT NULL,
    consumer_orgno TEXT NOT NULL,
    supplier_orgno TEXT NOT NULL DEFAULT '',
    scopes         TEXT NOT NULL,
    audience       TEXT NOT NULL,
    issued_at      TIMESTAMP WITH TIME ZONE NOT NULL,
    expires_at     TIMESTAMP WITH TIME ZONE NOT NULL,
    client_amr     TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (client_id, assertion_jti)
);
CREATE INDEX issued_tokens_expires_at ON issued_tokens (expires_at);
CREATE INDEX issued_tokens_issued_at ON issued_tokens (issued_at);
CREATE INDEX issued_tokens_consumer_orgno ON issued_tokens (consumer_orgno);
CREATE INDEX issued_tokens_supplier_orgno ON issued_tokens (supplier_orgno);

-- Ids are assigned by the store (MAX + 1 under Update's lock): neither an
-- identity column nor AUTOINCREMENT is portable, and this keeps ids in
-- commit order.
CREATE TABLE audit_events (
    id              BIGINT PRIMARY KEY,
    event_time      TIMESTAMP WITH TIME ZONE NOT NULL,
    actor_org       TEXT NOT NULL DEFAULT '',
    actor_client_id TEXT NOT NULL DEFAULT '',
    actor_token_jti TEXT NOT NULL DEFAULT '',
    action          TEXT NOT NULL,
    target_kind     TEXT NOT NULL DEFAULT '',
    target          TEXT NOT NULL DEFAULT '',
    orgs            TEXT NOT NULL DEFAULT 'null',
    before_state    TEXT,
    after_state     TEXT
);
CREATE INDEX audit_events_event_time ON audit_events (event_time);

-- Which orgs an event concerns, for the org filter of the audit API.
CREATE TABLE audit_event_orgs (
    org      TEXT NOT NULL,
    event_id BIGINT NOT NULL REFERENCES audit_events (id),
    PRIMARY KEY (org, event_id)
);

-- One row: advanced by every committed Update so caches know to reload.
CREATE TABLE generation (
    id    BIGINT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO generation (id, value) VALUES (1, 0);

-- +goose Down
DROP TABLE generation;
DROP TABLE audit_event_orgs;
DROP TABLE audit_events;
DROP TABLE issued_tokens;
DROP TABLE clients;
DROP TABLE delegations;
DROP TABLE access;
DROP TABLE scopes;
DROP TABLE prefixes;
