package rules

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// checkMap fails unless m holds exactly want.
func checkMap(t *testing.T, m pmap[string, int], want map[string]int, what string) {
	t.Helper()
	if m.Len() != len(want) {
		t.Fatalf("%s: Len = %d, want %d", what, m.Len(), len(want))
	}
	for k, v := range want {
		if got, ok := m.Get(k); !ok || got != v {
			t.Fatalf("%s: Get(%q) = %d, %v; want %d", what, k, got, ok, v)
		}
	}
	n := 0
	m.All(func(k string, v int) bool {
		n++
		if want[k] != v {
			t.Fatalf("%s: All yields %q=%d, want %d", what, k, v, want[k])
		}
		return true
	})
	if n != len(want) {
		t.Fatalf("%s: All yields %d entries, want %d", what, n, len(want))
	}
}

// Random edits in batches, against a Go map; every earlier version must
// stay exactly as it was (persistence), including across the rebuilds that
// growth causes.
func TestPmapAgainstMap(t *testing.T) {
	for _, tc := range []struct {
		name     string
		start    int // entries in the built map
		batches  int
		perBatch int
		keys     int
	}{
		{"ok/empty-grows-one-at-a-time", 0, 3000, 1, 2000},
		{"ok/built-then-batches", 5000, 50, 40, 6000},
		{"ok/small-keyspace-churn", 10, 500, 5, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, uint64(tc.start)))
			want := map[string]int{}
			b := editorFor[string, int](tc.start)
			for i := range tc.start {
				k := fmt.Sprint("k", i)
				b.Set(k, i)
				want[k] = i
			}
			m := b.Map()
			checkMap(t, m, want, "built")
			type version struct {
				m    pmap[string, int]
				want map[string]int
			}
			var old []version
			for bi := range tc.batches {
				if bi%(tc.batches/10+1) == 0 {
					snap := make(map[string]int, len(want))
					for k, v := range want {
						snap[k] = v
					}
					old = append(old, version{m, snap})
				}
				e := m.edit()
				for range tc.perBatch {
					k := fmt.Sprint("k", r.IntN(tc.keys))
					if r.IntN(4) == 0 {
						e.Delete(k)
						delete(want, k)
					} else {
						v := r.Int()
						e.Set(k, v)
						want[k] = v
					}
				}
				m = e.Map()
			}
			checkMap(t, m, want, "after the edits")
			for i, v := range old {
				checkMap(t, v.m, v.want, fmt.Sprintf("version %d after later edits", i))
			}
		})
	}
}

func TestPmapGrows(t *testing.T) {
	var m pmap[int, int]
	for i := range 30_000 {
		e := m.edit()
		e.Set(i, i)
		m = e.Map()
	}
	// Amortised growth keeps leaves short: at most growAt per leaf on
	// average, so the tables grew from the minimum.
	if got := m.root.totalLeafs; m.Len() > growAt*got {
		t.Fatalf("%d entries in %d leaves: the map did not grow its tables", m.Len(), got)
	}
	if _, ok := m.Get(29_999); !ok {
		t.Fatal("last key missing")
	}
}

func TestPmapZero(t *testing.T) {
	var m pmap[string, int]
	if _, ok := m.Get("x"); ok || m.Len() != 0 {
		t.Fatal("the zero map is not empty")
	}
	e := m.edit()
	e.Delete("x") // on an empty map: nothing
	e.Set("x", 1)
	if m2 := e.Map(); m2.Len() != 1 || m.Len() != 0 {
		t.Fatalf("Len after Set = %d, zero map's = %d", m2.Len(), m.Len())
	}
}
