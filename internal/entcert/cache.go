package entcert

import (
	"container/list"
	"sync"
	"time"
)

// entry is a verified leaf: its identity and how long that verdict holds.
type entry struct {
	id        Identity
	notBefore time.Time // latest NotBefore of the chain
	notAfter  time.Time // earliest NotAfter of the chain
	deadline  time.Time // re-check revocation from here; zero = never
}

func (e *entry) fresh(now time.Time) bool {
	return !now.Before(e.notBefore) && !now.After(e.notAfter) &&
		(e.deadline.IsZero() || now.Before(e.deadline))
}

// cache is a bounded LRU of verified leaves keyed by the SHA-256 of the leaf
// DER. One mutex: the critical section is a map lookup and a list move (tens
// of nanoseconds) and the hash is computed outside it, so sharding would buy
// little at token-endpoint rates.
type cache struct {
	mu    sync.Mutex
	max   int
	items map[[32]byte]*list.Element
	lru   list.List // front = most recently used; values are *cacheItem
}

type cacheItem struct {
	key [32]byte
	e   entry
}

func newCache(max int) *cache {
	return &cache{max: max, items: make(map[[32]byte]*list.Element)}
}

func (c *cache) get(key [32]byte, now time.Time) (Identity, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return Identity{}, false
	}
	it := el.Value.(*cacheItem)
	if !it.e.fresh(now) {
		c.lru.Remove(el)
		delete(c.items, key)
		return Identity{}, false
	}
	c.lru.MoveToFront(el)
	return it.e.id, true
}

func (c *cache) put(key [32]byte, e entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		el.Value.(*cacheItem).e = e
		c.lru.MoveToFront(el)
		return
	}
	c.items[key] = c.lru.PushFront(&cacheItem{key: key, e: e})
	for c.lru.Len() > c.max {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.items, old.Value.(*cacheItem).key)
	}
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
