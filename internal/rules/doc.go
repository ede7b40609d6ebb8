// Package rules keeps the access rules (scopes, access rows, delegations and
// clients) in memory, so the token endpoint decides without a database round
// trip. A Snapshot is an immutable, map-indexed copy of the records that
// implements access.Records; a Cache holds the current one behind an atomic
// pointer, brings it up to date after this process writes (Invalidate), and
// polls the store's Generation to pick up writes made by other replicas.
//
// Consistency: a write committed in this process and followed by Invalidate
// is seen by the next Snapshot call (read your writes); a write made elsewhere
// is seen within about one PollInterval, or at once when the store announces
// it and the caller passes that on to Refresh (PostgreSQL LISTEN/NOTIFY).
// After Invalidate, a store that cannot be read makes Snapshot fail (the
// token endpoint answers 503) rather than serve the rules just changed.
// CacheConfig.Observer is told of every lookup and reload (metrics); nil
// observes nothing.
//
// # Cost follows the change
//
// A change to one record costs about what one record costs, at any size of
// platform:
//
//   - The store keeps a change log: every committed Update records, in its
//     own transaction and under the generation it produced, the key of each
//     record it wrote (store.Change). A Cache that is behind asks for the
//     changes after its snapshot's generation (store.ListChanges) and reads
//     just those records by key, after reading the log, so each read is at
//     least as new as its change. Catching up after one changed access row
//     reads three rows (the generation, the change, the row) whether the
//     platform has a thousand access rows or two hundred thousand.
//   - The snapshot's indexes are persistent maps (pmap: a fixed two-level
//     table over hash/maphash with path copying). Applying a change copies
//     one path of the map it touches (a few KiB at most) and shares the rest
//     with the previous snapshot, so an update never holds a second copy of
//     everything, and requests still holding the old snapshot keep a
//     consistent view. The derived delegators index changes only for the
//     delegations that turned active or inactive. A client's parsed JWKs
//     live in its entry, so they survive changes to other records and are
//     dropped with the client's old version.
//   - Full reloads remain where the log cannot answer: the first load, a
//     reader further behind than the log keeps (or more than MaxChanges
//     changes behind), and a generation advanced by hand-written SQL (it has
//     no log rows: store.ErrChangesUnknown). They build the new snapshot
//     beside the old one, as before. When only a poll asked for one (no
//     write made here is owed), requests keep the current rules until it
//     is done rather than wait for a rebuild of records they did not change.
//
// The token path stays what it was: an atomic pointer load and a comparison
// in Cache.Snapshot, then map lookups; no lock, no store read. A lookup in a
// pmap is one hash and a scan of a leaf of about two entries, near a Go
// map's cost (BenchmarkDecide3Scopes in internal/access measures it).
//
// Why these choices: a change log read by key keeps the store the one
// source of truth (no record travels in the log, so the log cannot
// disagree with the tables) and works the same on SQLite and PostgreSQL; a
// persistent map was preferred over per-record caches invalidated by key
// because it keeps the snapshot immutable (a decision sees one version of
// the rules) and the hot path free of locks and misses. No persistent map
// library is a standard in Go; this one is small and fixed in shape.
package rules
