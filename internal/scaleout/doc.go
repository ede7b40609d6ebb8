// Package scaleout holds the multi-replica and fault tests of portvakt on
// PostgreSQL (issue 5): real `portvakt serve` processes (internal/testserver)
// on loopback ports sharing one real PostgreSQL.
//
//   - replay: one assertion sent 50 times at once, spread over two
//     replicas, gives exactly one token and one issued-token row;
//   - coherence: an access change through one replica, through another
//     store, or by raw SQL, is honoured by the other replica within one
//     second (LISTEN/NOTIFY, with the generation poll as the fallback);
//   - faults: PostgreSQL stopped mid-load (a dedicated throwaway cluster)
//     gives only 503 temporarily_unavailable, no request past the timeout,
//     /readyz unready, and recovery without restarting portvakt;
//   - migrations: concurrent `portvakt migrate up`, and `serve` refusing a
//     newer schema;
//   - cost: SQL statements per issued token (pg_stat_statements);
//   - rate limits: a client at three times its rate gets 0.9 to 1.2 times
//     its rate in tokens on one replica and spread over two sharing the
//     limit, while a client at half its rate is never refused; a flood of
//     idle connections over a small connection cap leaves a fresh request
//     answered at once.
//
// The tests need PostgreSQL: PORTVAKT_TEST_POSTGRES_DSN (scripts/pg.sh), and
// initdb/pg_ctl for the dedicated clusters. Without them they skip loudly,
// and under CI (env CI set) they fail. The package has no non-test code.
package scaleout
