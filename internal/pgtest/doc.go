// Package pgtest gives tests a throwaway PostgreSQL schema of their own in
// the database that PORTVAKT_TEST_POSTGRES_DSN names (scripts/pg.sh starts
// one): created on demand, dropped when the test ends. A schema is much
// cheaper than a database, and migrations lock per schema, so tests in
// parallel do not wait for each other. For tests only.
package pgtest
