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

// lru is a bounded least-recently-used map keyed by a SHA-256. One mutex:
// the critical section is a map lookup and a list move (tens of
// nanoseconds) and the hash is computed outside it, so sharding would buy
// little at token-endpoint rates.
type lru[V any] struct {
	mu    sync.Mutex
	max   int
	items map[[32]byte]*list.Element
	order list.List // front = most recently used; values are *lruItem[V]
}

type lruItem[V any] struct {
	key [32]byte
	v   V
}

func newLRU[V any](max int) *lru[V] {
	return &lru[V]{max: max, items: make(map[[32]byte]*list.Element)}
}

// get returns the value under key while holds says it still does; one
// that no longer holds is dropped.
func (c *lru[V]) get(key [32]byte, holds func(V) bool) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var zero V
	el, ok := c.items[key]
	if !ok {
		return zero, false
	}
	it := el.Value.(*lruItem[V])
	if !holds(it.v) {
		c.order.Remove(el)
		delete(c.items, key)
		return zero, false
	}
	c.order.MoveToFront(el)
	return it.v, true
}

// put stores v under key, dropping the least recently used past max.
func (c *lru[V]) put(key [32]byte, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		el.Value.(*lruItem[V]).v = v
		c.order.MoveToFront(el)
		return
	}
	c.items[key] = c.order.PushFront(&lruItem[V]{key: key, v: v})
	for c.order.Len() > c.max {
		old := c.order.Back()
		c.order.Remove(old)
		delete(c.items, old.Value.(*lruItem[V]).key)
	}
}

func (c *lru[V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

// cache is the LRU of verified leaves keyed by the SHA-256 of the leaf DER.
type cache struct{ *lru[entry] }

func newCache(max int) *cache { return &cache{newLRU[entry](max)} }

func (c *cache) get(key [32]byte, now time.Time) (Identity, bool) {
	e, ok := c.lru.get(key, func(e entry) bool { return e.fresh(now) })
	return e.id, ok
}

// negCache is a bounded LRU of chains that failed, keyed by chainKey. An
// entry keeps the public face of the error and a clipped text of its cause,
// not the error itself: causes can hold parsed certificates (x509 errors
// do), and a flood of distinct failing chains must not pin them in memory.
// A full cache drops its least recently used entry, so memory stays bounded
// whatever the flood; the chains it forgets cost their (bounded) work again.
type negCache struct{ *lru[negItem] }

type negItem struct {
	code        string
	status      int
	description string
	cause       string
	at, until   time.Time
}

// maxNegCause bounds the cause text kept per entry.
const maxNegCause = 512

func newNegCache(max int) *negCache { return &negCache{newLRU[negItem](max)} }

// get returns a fresh copy of the remembered error.
func (c *negCache) get(key [32]byte, now time.Time) (error, bool) {
	// A verdict holds from when it was made (a clock set back, as for the
	// verified-leaf entries, is not served from here) until it lapses.
	it, ok := c.lru.get(key, func(it negItem) bool { return !now.Before(it.at) && now.Before(it.until) })
	if !ok {
		return nil, false
	}
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
	c.lru.put(key, negItem{code: pe.Code, status: pe.Status, description: pe.Description, cause: cause, at: now, until: until})
}
