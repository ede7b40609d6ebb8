//go:build race

package sqlstore_test

// raceEnabled: the race detector slows the pure-Go SQLite many times over,
// so the seeded tests seed less under it (their plans are what they check).
const raceEnabled = true
