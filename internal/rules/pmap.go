package rules

import (
	"hash/maphash"
	"math/bits"
)

// pmap is a persistent hash map: a value never changes once published, and
// an edit returns a new map that shares everything it did not touch with the
// old one (path copying). It has a fixed depth of two: a root table of mids,
// each a table of leaves, each leaf a short slice of entries. Changing one
// key copies the root table, one mid table and one leaf, whatever the
// number of keys; a lookup is one hash, two loads and a scan of a leaf that
// holds two entries on average.
//
// The tables are sized for the map when it is built (2 entries per leaf on
// average, at least one mid and up to 2^maxTableBits leaves) and the map is rebuilt with larger
// tables when edits have grown it past 8 per leaf, so a map that grows one
// key at a time still costs O(1) per key, amortised, as a Go map does.
//
// The zero pmap is empty and ready to read.
type pmap[K comparable, V any] struct {
	root *pmRoot[K, V]
	n    int
}

const (
	midBits      = 8 // a mid holds its 256 leaves inline: one load less per lookup
	minTableBits = midBits
	maxTableBits = 18 // 1024 mids of 256 leaves: a copied path stays about 14 KiB
	growAt       = 8  // average entries per leaf that trigger a rebuild
	buildAt      = 2  // average entries per leaf after a build
)

var pmSeed = maphash.MakeSeed()

// pmEntry keeps its key's hash: a lookup compares hashes first, and reads
// the key (its string data, elsewhere in memory) only when they match.
type pmEntry[K comparable, V any] struct {
	h uint64
	k K
	v V
}

// pmEdit marks the tables one editor allocated: those it may change in
// place. It has a field so that distinct edits have distinct addresses.
type pmEdit struct{ _ byte }

type pmRoot[K comparable, V any] struct {
	owner      *pmEdit
	mids       []*pmMid[K, V] // the top bits1 bits of a hash pick a mid
	bits1      uint8
	rootShift  uint8 // 64 - bits1 (64, a shift to 0, when there is one mid)
	leafShift  uint8 // 64 - bits1 - midBits: the next midBits bits pick a leaf
	totalLeafs int
}

type pmMid[K comparable, V any] struct {
	owner  *pmEdit
	leaves [1 << midBits][]pmEntry[K, V]
}

func newRoot[K comparable, V any](tableBits int, e *pmEdit) *pmRoot[K, V] {
	b1 := tableBits - midBits
	return &pmRoot[K, V]{
		owner: e, bits1: uint8(b1),
		mids:      make([]*pmMid[K, V], 1<<b1),
		rootShift: uint8(64 - b1), leafShift: uint8(64 - b1 - midBits),
		totalLeafs: 1 << tableBits,
	}
}

// tableBitsFor returns the table size, in bits, for n entries.
func tableBitsFor(n int) int {
	b := minTableBits
	if n > 0 {
		b = max(b, bits.Len(uint(n/buildAt)))
	}
	return min(b, maxTableBits)
}

func hashOf[K comparable](k K) uint64 { return maphash.Comparable(pmSeed, k) }

// Len returns the number of entries.
func (m pmap[K, V]) Len() int { return m.n }

// Get returns the value of k.
func (m pmap[K, V]) Get(k K) (V, bool) {
	if r := m.root; r != nil {
		h := hashOf(k)
		if mid := r.mids[h>>r.rootShift]; mid != nil {
			leaf := mid.leaves[uint8(h>>r.leafShift)]
			for i := range leaf {
				if e := &leaf[i]; e.h == h && e.k == k {
					return e.v, true
				}
			}
		}
	}
	var zero V
	return zero, false
}

// All calls yield for every entry, in no particular order, until it
// returns false.
func (m pmap[K, V]) All(yield func(K, V) bool) {
	if m.root == nil {
		return
	}
	for _, mid := range m.root.mids {
		if mid == nil {
			continue
		}
		for _, leaf := range mid.leaves {
			for _, e := range leaf {
				if !yield(e.k, e.v) {
					return
				}
			}
		}
	}
}

// pmEditor changes a map: the first change to a table copies it, later
// changes through the same editor reuse that copy, so a batch of changes
// copies each touched table once. The map it started from is never changed.
// Leaves are always copied: they are short, and one may be shared by maps
// whose tables this editor owns.
type pmEditor[K comparable, V any] struct {
	m    pmap[K, V]
	edit *pmEdit
	// fresh: the editor built every table and leaf of m itself (editorFor),
	// so nothing is shared and leaves may change in place too.
	fresh bool
}

func (m pmap[K, V]) edit() *pmEditor[K, V] {
	return &pmEditor[K, V]{m: m, edit: &pmEdit{}}
}

// editorFor starts an empty map sized for n entries.
func editorFor[K comparable, V any](n int) *pmEditor[K, V] {
	e := &pmEditor[K, V]{edit: &pmEdit{}, fresh: true}
	e.m.root = newRoot[K, V](tableBitsFor(n), e.edit)
	return e
}

// leaf returns the leaf of h for writing: the root and mid on its path are
// this editor's own.
func (e *pmEditor[K, V]) leaf(h uint64) *[]pmEntry[K, V] {
	r := e.m.root
	if r == nil {
		r = newRoot[K, V](minTableBits, e.edit)
	} else if r.owner != e.edit {
		c := *r
		c.owner = e.edit
		c.mids = append([]*pmMid[K, V](nil), r.mids...)
		r = &c
	}
	e.m.root = r
	i := h >> r.rootShift
	mid := r.mids[i]
	switch {
	case mid == nil:
		mid = &pmMid[K, V]{owner: e.edit}
	case mid.owner != e.edit:
		c := *mid
		c.owner = e.edit
		mid = &c
	}
	r.mids[i] = mid
	return &mid.leaves[uint8(h>>r.leafShift)]
}

// Set sets k to v.
func (e *pmEditor[K, V]) Set(k K, v V) {
	h := hashOf(k)
	lp := e.leaf(h)
	old := *lp
	for i, en := range old {
		if en.h == h && en.k == k {
			nl := old
			if !e.fresh {
				nl = append([]pmEntry[K, V](nil), old...)
			}
			nl[i].v = v
			*lp = nl
			return
		}
	}
	nl := old
	if !e.fresh {
		nl = make([]pmEntry[K, V], len(old), len(old)+1)
		copy(nl, old)
	}
	*lp = append(nl, pmEntry[K, V]{h, k, v})
	e.m.n++
}

// Delete removes k.
func (e *pmEditor[K, V]) Delete(k K) {
	if _, ok := e.m.Get(k); !ok {
		return // nothing to copy
	}
	lp := e.leaf(hashOf(k))
	old := *lp
	nl := make([]pmEntry[K, V], 0, len(old)-1)
	for _, en := range old {
		if en.k != k {
			nl = append(nl, en)
		}
	}
	if len(nl) == 0 {
		nl = nil
	}
	*lp = nl
	e.m.n--
}

// Map returns the edited map; the editor must not be used after. A map that
// outgrew its tables is rebuilt with larger ones.
func (e *pmEditor[K, V]) Map() pmap[K, V] {
	m := e.m
	e.m, e.edit = pmap[K, V]{}, nil
	if r := m.root; r != nil && m.n > growAt*r.totalLeafs && int(r.bits1)+midBits < maxTableBits {
		g := editorFor[K, V](m.n)
		m.All(func(k K, v V) bool { g.Set(k, v); return true })
		return g.Map()
	}
	return m
}
