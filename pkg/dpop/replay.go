package dpop

import (
	"sync"
	"time"
)

// ReplayCache remembers the jti of recent proofs in memory, so each is
// accepted once within its window: enough for a resource server, where a
// proof is bound to one request URL and a replay to another replica within
// the window needs the token and a proof whose ath matches it, and every
// replica still refuses it after the window. (The token endpoint, where a
// replayed proof gets a new token, keeps its jti in the shared store
// instead.) The cache is bounded: when full, it refuses new proofs until
// old ones expire, failing closed. It is safe for concurrent use.
type ReplayCache struct {
	max int
	now func() time.Time

	mu    sync.Mutex
	seen  map[string]time.Time // key -> until
	order []replayEntry        // by insertion; until is non-decreasing enough to sweep from the front
	head  int                  // order[:head] are swept
}

type replayEntry struct {
	key   string
	until time.Time
}

// NewReplayCache makes a cache of at most max entries (default 100000)
// on the clock now (default time.Now).
func NewReplayCache(max int, now func() time.Time) *ReplayCache {
	if max <= 0 {
		max = 100000
	}
	if now == nil {
		now = time.Now
	}
	return &ReplayCache{max: max, now: now, seen: map[string]time.Time{}}
}

// ErrReplayCacheFull is Use's answer when the cache holds max live entries.
var ErrReplayCacheFull = &Error{Description: "Too many recent DPoP proofs: try again shortly"}

// Use records p's (jkt, jti) until p.Until. It fails with an *Error when the
// pair was used before and is still remembered, or when the cache is full.
func (c *ReplayCache) Use(p *Proof) error {
	now := c.now()
	key := p.JKT + "\x00" + p.JTI
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweep(now)
	if until, ok := c.seen[key]; ok && now.Before(until) {
		return invalid("The DPoP proof's jti has been used before: make a new proof for every request", nil)
	}
	if len(c.seen) >= c.max {
		return ErrReplayCacheFull
	}
	c.seen[key] = p.Until
	c.order = append(c.order, replayEntry{key, p.Until})
	return nil
}

// sweep forgets entries whose window has passed, from the oldest
// insertion on; an entry with a later until stops the sweep (proofs arrive
// roughly in iat order, so this stays cheap and only delays forgetting).
func (c *ReplayCache) sweep(now time.Time) {
	for ; c.head < len(c.order) && !now.Before(c.order[c.head].until); c.head++ {
		if u, ok := c.seen[c.order[c.head].key]; ok && !now.Before(u) {
			delete(c.seen, c.order[c.head].key)
		}
		c.order[c.head] = replayEntry{}
	}
	// Compact when the swept front is most of the slice: amortised O(1).
	if c.head > 64 && c.head > len(c.order)/2 {
		c.order = append(c.order[:0], c.order[c.head:]...)
		c.head = 0
	}
}
