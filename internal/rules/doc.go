// Package rules keeps the access rules (scopes, access rows, delegations and
// clients) in memory, so the token endpoint decides without a database round
// trip. A Snapshot is an immutable, map-indexed copy of the records that
// implements access.Records; a Cache holds the current one, reloads it when
// this process invalidates it after a write, and polls the store's
// Generation to pick up writes made by other replicas.
//
// Consistency: a write committed in this process and followed by Invalidate
// is seen by the next Snapshot call (read your writes); a write made elsewhere
// is seen within about one PollInterval, or at once when the store announces
// it and the caller passes that on to Refresh (PostgreSQL LISTEN/NOTIFY).
package rules
