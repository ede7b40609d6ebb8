// Package purge removes issued-token rows past the audit retention period, in
// the background: never in the request path, and never starving it.
//
// On PostgreSQL the store partitions the rows by day, and a run is mostly
// housekeeping (Maintainer): create the partitions ahead, drop the days past
// retention whole, forget the replay keys whose assertions can no longer be
// valid; row deletes are left for the default partition only.
//
// On SQLite rows are deleted, and every delete holds the database's one
// writer, which the token endpoint needs for each token's replay insert. Back
// to back batches of a million-row backlog held it for minutes and cut the
// tokens per second by 95 %. So the purge is paced: after each step (a batch
// of deletes, or a step of incremental vacuum giving the freed pages back to
// the file system) it pauses for as long as the step took times
// (1 - WriterShare) / WriterShare, so the purge takes at most WriterShare of
// the writer's time however large the backlog, and a step's length follows
// how loaded the database is (a slow step earns a long pause). Small batches
// keep each hold short.
//
// The DPoP proofs kept for their single-use check (ProofPurger) go once
// their window has ended, in paced batches too.
//
// Config.Observer is told how many rows each step removed (metrics); nil
// observes nothing.
package purge
