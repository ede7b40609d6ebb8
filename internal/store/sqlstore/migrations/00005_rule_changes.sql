-- The change log of the access rules: every committed Update records here,
-- under the generation it produced and in the same transaction, the key of
-- every record it wrote (kind 'none' when it wrote none), so that caches
-- fetch just those records instead of reloading everything. A generation
-- without rows was advanced by hand-written SQL: readers reload everything.
-- Update trims rows of old generations; the primary key serves the reads
-- (generation > n) and the trim (generation <= n).

-- +goose Up
CREATE TABLE rule_changes (
    generation     BIGINT NOT NULL,
    kind           TEXT NOT NULL,
    name           TEXT NOT NULL DEFAULT '',
    consumer_orgno TEXT NOT NULL DEFAULT '',
    supplier_orgno TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (generation, kind, name, consumer_orgno, supplier_orgno)
);

-- +goose Down
DROP TABLE rule_changes;
