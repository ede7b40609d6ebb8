// Package ratelimit owns the token endpoint's rate limits (docs/protocol.md): token
// buckets per client and per organisation, and per source address for
// requests naming no known client, shared by the replicas of one
// deployment.
//
// # Where the limit is checked
//
// The exchange asks the Limiter from the JWT parser's key callback: after
// the assertion's header and claims were decoded (bounded by the 64 KiB
// body) and before any certificate chain or signature is verified. A
// request over the limit costs a map lookup under a mutex, never RSA work.
// The unverified iss decides the bucket: a known, active client is counted
// against its own bucket and its organisation's; anything else against its
// source address (IPv4 address, or IPv6 /64). The trade-off of counting
// before authentication: a client_id is not a secret (it is in every token
// the client uses), so whoever knows it can spend that client's bucket and
// make its owner wait. The alternative, counting after the signature,
// would let a flood cost RSA work, which is what the limit is for.
//
// # Local buckets and their bounds
//
// Buckets are golang.org/x/time/rate limiters in two maps, one for client
// and organisation keys (bounded by the registry: keys come from the rules
// snapshot) and one for addresses (bounded by MaxAddresses). A bucket that
// has refilled to its burst holds no information (a new one would be the
// same), so sweeps drop such buckets; when the address map is full even
// after a sweep, new addresses share one overflow bucket: a flood of
// distinct addresses (or of distinct unknown iss values, which all count
// against their address) cannot grow memory, and fails closed.
//
// # Sharing between replicas
//
// Each replica keeps a full-rate bucket per client and organisation key,
// and counts what it admitted per key. Every SyncInterval (default 200 ms)
// it takes one turn through store.Store.ExchangeRateCounts: it writes its
// counters that changed (only keys with traffic) and reads the other
// replicas' counters updated in the last few seconds; the growth of each
// counter since the previous turn is what the other replicas admitted
// meanwhile, and is taken out of the local bucket as debt
// (Limiter.ReserveN in chunks of at most the burst, never cancelled). Every
// bucket is thus drained by the admissions of all replicas, so together
// they admit about rate x time + burst, plus what the others admitted in
// the last sync period (the lag), and one more burst per extra replica at
// the start. A client under its rate never empties a bucket that refills
// at the full rate, so it is never refused, as long as what arrives
// between two syncs fits in its burst.
//
// Counters are restarted (a new started time) after a key was idle for
// IdleReset, so a reader that meets a counter it does not know counts it
// whole, and one whose start changed counts it from zero. A replica's first
// turn, and a turn after a gap longer than the read window (the store was
// unreachable), only takes the counters as a baseline: old counts never
// become debt. Debt is bounded below at -(burst + rate x 1 s), so a
// misbehaving peer cannot lock a client out for long. When the store is
// unreachable each replica goes on with its local buckets alone (fail open
// on sharing, never on the local limit): N replicas then admit up to N
// times the rate. Rows not updated for ExpireAfter (dead replicas, idle
// keys) are deleted by the other replicas' turns.
//
// Address buckets are not shared: they protect each replica's CPU from
// unauthenticated floods, which sharing would not make cheaper, and they
// would make the write volume grow with the number of addresses. With one
// replica (SQLite) no store is given and nothing is shared.
//
// Config.Observer is told of every refused request, by kind (metrics); nil
// observes nothing.
package ratelimit
