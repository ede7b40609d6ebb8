-- Members of an org, and the person behind an audit event.
--
-- members: who may act for an org in the web console (subject: the
-- person's id at the console's identity provider) with which roles (a JSON
-- list of admin scopes). Listed per org by the primary key; the index on
-- subject finds a person's orgs at login.
--
-- audit_events.actor_person: the person who acted through the console;
-- empty for API clients and for the events written before.

-- +goose Up
CREATE TABLE members (
    org          TEXT NOT NULL,
    subject      TEXT NOT NULL,
    roles        TEXT NOT NULL DEFAULT 'null',
    created      TIMESTAMP WITH TIME ZONE,
    last_updated TIMESTAMP WITH TIME ZONE,
    PRIMARY KEY (org, subject)
);
CREATE INDEX members_subject ON members (subject, org);

ALTER TABLE audit_events ADD COLUMN actor_person TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE audit_events DROP COLUMN actor_person;
DROP TABLE members;
