package entcert

import (
	"container/list"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/portvakt/portvakt/internal/protocol"
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

// negCache is a bounded LRU of chains that failed, keyed by chainKey. An
// entry keeps the public face of the error and a clipped text of its cause,
// not the error itself: causes can hold parsed certificates (x509 errors
// do), and a flood of distinct failing chains must not pin them in memory.
// A full cache drops its least recently used entry, so memory stays bounded
// whatever the flood; the chains it forgets cost their (bounded) work again.
type negCache struct {
	mu    sync.Mutex
	max   int
	items map[[32]byte]*list.Element
	lru   list.List // front = most recently used; values are *negItem
}

type negItem struct {
	key         [32]byte
	code        string
	status      int
	description string
	cause       string
	at, until   time.Time
}

// maxNegCause bounds the cause text kept per entry.
const maxNegCause = 512

func newNegCache(max int) *negCache {
	return &negCache{max: max, items: make(map[[32]byte]*list.Element)}
}

// get returns a fresh copy of the remembered error.
func (c *negCache) get(key [32]byte, now time.Time) (error, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return nil, false
	}
	it := el.Value.(*negItem)
	// A verdict holds from when it was made (a clock set back, as for the
	// verified-leaf entries, is not served from here) until it lapses.
	if now.Before(it.at) || !now.Before(it.until) {
		c.lru.Remove(el)
		delete(c.items, key)
		return nil, false
	}
	c.lru.MoveToFront(el)
	e := &protocol.Error{Code: it.code, Status: it.status, Description: it.description}
	return e.WithCause(fmt.Errorf("refused from the failed-chain cache (failed at %s): %s", it.at.UTC().Format(time.RFC3339), it.cause)), true
}

// put remembers err for key until until. Only protocol errors are kept.
func (c *negCache) put(key [32]byte, err error, now, until time.Time) {
	var pe *protocol.Error
	if !errors.As(err, &pe) || !now.Before(until) {
		return
	}
	cause := ""
	if pe.Cause != nil {
		cause = pe.Cause.Error()
	}
	if len(cause) > maxNegCause {
		cause = strings.ToValidUTF8(cause[:maxNegCause], "") + "..."
	}
	it := &negItem{key: key, code: pe.Code, status: pe.Status, description: pe.Description, cause: cause, at: now, until: until}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		el.Value = it
		c.lru.MoveToFront(el)
		return
	}
	c.items[key] = c.lru.PushFront(it)
	for c.lru.Len() > c.max {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.items, old.Value.(*negItem).key)
	}
}

func (c *negCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
