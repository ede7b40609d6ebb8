// Package sqlstore implements store.Store with gorm over SQLite (pure Go,
// github.com/glebarez/sqlite, the embedded default) and PostgreSQL (the
// production backend that replicas share).
//
// The schema is versioned: one set of goose SQL migrations, embedded in the
// binary, that both engines accept. Migrate applies them (under a PostgreSQL
// session advisory lock, so several replicas may run it at once) and
// SchemaCheck refuses a database that a newer binary has already migrated.
//
// SQLite gets two connection pools over the same WAL file: one writer
// connection whose transactions begin IMMEDIATE, and a few read-only
// connections. Writers queue in Go instead of spinning on SQLITE_BUSY, and
// readers never wait for them.
//
// The issued-token insert, one per token and the store's replay check, is
// group-committed on both engines: rows are queued while their callers sign,
// concurrent inserts share one multi-row INSERT ... ON CONFLICT DO NOTHING
// RETURNING and one transaction, and the primary key still decides each row
// (groupcommit.go).
//
// Every Update also writes the change log of the access rules (changes.go):
// the keys of the records it wrote, under the generation it produced, in
// its own transaction. ListChanges hands them to the rules caches, which
// then read just those records. On PostgreSQL the commit also announces the
// new generation (notify.go), and Listen passes it on to OnChange.
//
// Config.Observer is told of every group commit (metrics); nil observes
// nothing. The calls made to the store are observed around store.Store, by
// whoever wraps it (internal/telemetry), not here.
//
// The issued-token table is built for a national platform's millions of
// rows (issuedschema.go): on PostgreSQL it is partitioned by day of expiry
// and purged by dropping whole days (partitions.go), with the replay check
// in a small table of the keys whose assertions could still be valid; on
// SQLite the purge deletes in paced batches and gives the space back with
// incremental vacuum. On both, the audit view's "tokens of my org or
// carrying my scopes" walks one index per disjunct (tokens.go), helped by a
// side table of each token's scope prefixes.
//
// The event outbox (events.go) is written by Tx.AppendEvent in the
// transaction of the change, with one delivery row per subscribed webhook.
// ClaimDeliveries leases each webhook's oldest pending delivery to one
// claimer (SELECT ... FOR UPDATE SKIP LOCKED on PostgreSQL, the one writer
// on SQLite), so replicas share the outbox without sending a delivery
// twice and each webhook gets its events in order. A claim walks the due
// pending rows only: a failing webhook's later events are made due with
// its next retry, not before.
//
// The signing keys (signingkeys.go) are written outside Update, each change
// one transaction whose steps are conditional on the states they start from,
// with partial unique indexes keeping one NEXT and one CURRENT key; a named
// lease (one upsert that only a free, expired or own lease passes) picks the
// replica that rotates them.
//
// Every driver error goes through classify, which maps it onto the store
// sentinels (ErrNotFound, ErrConflict, ErrUnavailable) while keeping the
// cause in the chain.
package sqlstore
