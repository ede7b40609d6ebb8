-- Access requests and the event outbox (access requests, events and
-- webhooks).
--
-- access.reason is the free text of a row's last transition; existing rows
-- have none.
--
-- webhooks: where an org's events are pushed. Listed per org in id order.
--
-- events: the outbox, written in the transaction of the change that caused
-- each event. Ids come from event_counter (advanced under Update's lock, so
-- they follow commit order and are never reused, also after a purge). jti
-- is the id receivers see. once_key makes an event happen at most once (the
-- key-expiry scan runs on every replica); NULL for the others, and NULLs
-- are distinct in a unique index on both engines.
--
-- event_deliveries: one row per (webhook, event), written with the event,
-- pending until acknowledged (delivered) or given up (failed). A claimer
-- leases a webhook's oldest pending row (lease_owner, lease_until), so a
-- webhook has one delivery out at a time and gets its events in order; the
-- partial index on the pending rows answers both "which rows are due" and
-- "is there an older pending row of this webhook". Finished rows are
-- purged by finished_at.
--
-- delivery_attempts: each webhook's recent attempts (the newest few are
-- kept), for the webhook's own view; not tied to the rows above, so they
-- outlive the purge.

-- +goose Up
ALTER TABLE access ADD COLUMN reason TEXT NOT NULL DEFAULT '';

CREATE TABLE webhooks (
    id           TEXT PRIMARY KEY,
    org          TEXT NOT NULL,
    url          TEXT NOT NULL,
    events       TEXT NOT NULL DEFAULT 'null',
    active       BOOLEAN NOT NULL,
    created      TIMESTAMP WITH TIME ZONE,
    last_updated TIMESTAMP WITH TIME ZONE
);
CREATE INDEX webhooks_org ON webhooks (org, id);

CREATE TABLE event_counter (
    id    BIGINT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO event_counter (id, value) VALUES (1, 0);

CREATE TABLE events (
    id         BIGINT PRIMARY KEY,
    jti        TEXT NOT NULL,
    name       TEXT NOT NULL,
    event_time TIMESTAMP WITH TIME ZONE NOT NULL,
    actor_org  TEXT NOT NULL DEFAULT '',
    orgs       TEXT NOT NULL DEFAULT 'null',
    record     TEXT,
    once_key   TEXT
);
CREATE UNIQUE INDEX events_once_key ON events (once_key);
CREATE INDEX events_event_time ON events (event_time);

CREATE TABLE event_deliveries (
    webhook_id   TEXT NOT NULL,
    event_id     BIGINT NOT NULL,
    state        TEXT NOT NULL,
    attempts     BIGINT NOT NULL DEFAULT 0,
    next_attempt TIMESTAMP WITH TIME ZONE NOT NULL,
    lease_owner  TEXT NOT NULL DEFAULT '',
    lease_until  TIMESTAMP WITH TIME ZONE,
    finished_at  TIMESTAMP WITH TIME ZONE,
    PRIMARY KEY (webhook_id, event_id)
);
CREATE INDEX event_deliveries_pending ON event_deliveries (webhook_id, event_id) WHERE state = 'pending';
CREATE INDEX event_deliveries_due ON event_deliveries (next_attempt) WHERE state = 'pending';
CREATE INDEX event_deliveries_finished ON event_deliveries (finished_at) WHERE state <> 'pending';
CREATE INDEX event_deliveries_event_id ON event_deliveries (event_id);

CREATE TABLE delivery_attempts (
    webhook_id   TEXT NOT NULL,
    event_id     BIGINT NOT NULL,
    attempt      BIGINT NOT NULL,
    event_jti    TEXT NOT NULL DEFAULT '',
    event_name   TEXT NOT NULL DEFAULT '',
    attempted_at TIMESTAMP WITH TIME ZONE NOT NULL,
    status       BIGINT NOT NULL DEFAULT 0,
    error        TEXT NOT NULL DEFAULT '',
    state        TEXT NOT NULL,
    next_attempt TIMESTAMP WITH TIME ZONE,
    PRIMARY KEY (webhook_id, event_id, attempt)
);
CREATE INDEX delivery_attempts_recent ON delivery_attempts (webhook_id, attempted_at);

-- +goose Down
DROP TABLE delivery_attempts;
DROP TABLE event_deliveries;
DROP TABLE events;
DROP TABLE event_counter;
DROP TABLE webhooks;
ALTER TABLE access DROP COLUMN reason;
