-- Rate-limit counters shared by replicas (internal/ratelimit): one row per
-- replica and limit key with traffic, holding how many requests that replica
-- admitted for the key since started_at. Each replica replaces its own rows
-- every sync and reads the others'; rows not updated for a while (dead
-- replicas, idle keys) are deleted by the other replicas' syncs.

-- +goose Up
CREATE TABLE rate_limit_counts (
    replica    TEXT NOT NULL,
    limit_key  TEXT NOT NULL,
    started_at TIMESTAMP WITH TIME ZONE NOT NULL,
    admitted   BIGINT NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (replica, limit_key)
);
CREATE INDEX rate_limit_counts_updated_at ON rate_limit_counts (updated_at);

-- +goose Down
DROP TABLE rate_limit_counts;
