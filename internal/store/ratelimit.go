package store

import "time"

// RateCount is one replica's counter for one rate-limit key: how many
// requests it admitted for Key since Started. A replica restarts a counter
// (a new Started) after the key was idle, so a reader that does not know a
// counter's Started counts all of Admitted as new.
type RateCount struct {
	Replica  string
	Key      string
	Started  time.Time
	Admitted int64
	Updated  time.Time
}

// RateExchange is one replica's turn in sharing rate limits (see
// Store.ExchangeRateCounts and the ratelimit package).
type RateExchange struct {
	// Replica names the caller; its rows are written, other rows are read.
	Replica string
	// Counts are the caller's counters that changed since its last turn
	// (their Replica and Updated are ignored: Replica and Now are written).
	Counts []RateCount
	// Now stamps the written rows.
	Now time.Time
	// Since: other replicas' rows updated at or after Since are returned.
	Since time.Time
	// ExpireBefore: rows of any replica not updated since are deleted (dead
	// replicas, idle keys). Zero deletes nothing.
	ExpireBefore time.Time
	// Limit bounds the rows returned (0 = 10000).
	Limit int
}

// MaxRateCountsPerStatement is how many counters one statement writes; an
// exchange with more takes several statements.
const MaxRateCountsPerStatement = 500

// DefaultRateCountLimit is the default of RateExchange.Limit.
const DefaultRateCountLimit = 10000
