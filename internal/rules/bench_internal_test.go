package rules

import (
	"fmt"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/store"
)

// platform sizes of issue 15: S is a demo, L a country.
var sizes = []struct {
	name                          string
	scopes, access, dels, clients int
}{
	{"S", 300, 1_000, 100, 300},
	{"L", 5_000, 200_000, 20_000, 30_000},
}

func benchOrg(i int) string { return fmt.Sprintf("9%08d", i) }

func buildSized(scopesN, accessN, delsN, clientsN int) *Snapshot {
	scopes := make([]store.Scope, scopesN)
	for i := range scopes {
		scopes[i] = store.Scope{Name: fmt.Sprint("acme:s", i), Active: true, Visibility: store.VisibilityPublic}
	}
	acc := make([]store.Access, accessN)
	for i := range acc {
		acc[i] = store.Access{Scope: fmt.Sprint("acme:s", i%scopesN), ConsumerOrgno: benchOrg(i), State: store.AccessApproved}
	}
	dels := make([]store.Delegation, delsN)
	for i := range dels {
		dels[i] = store.Delegation{Scope: fmt.Sprint("acme:s", i%scopesN), ConsumerOrgno: benchOrg(i), SupplierOrgno: benchOrg(i % 100), State: store.DelegationActive}
	}
	clients := make([]store.Client, clientsN)
	for i := range clients {
		clients[i] = store.Client{ClientID: fmt.Sprint("client-", i), ClientOrgno: benchOrg(i), Active: true}
	}
	return Build(scopes, acc, dels, clients)
}

// Applying one changed access row, against rebuilding the snapshot (what
// every change cost before the change log), at S and L in the same run.
func BenchmarkApplyOneChange(b *testing.B) {
	for _, sz := range sizes {
		base := buildSized(sz.scopes, sz.access, sz.dels, sz.clients)
		k := accessKey{"acme:s7", benchOrg(7)}
		b.Run("apply/"+sz.name, func(b *testing.B) {
			b.ReportAllocs()
			s := base
			on := false
			for b.Loop() {
				s = s.apply(&changes{access: map[accessKey]bool{k: on}})
				on = !on
			}
		})
		b.Run("apply-delegation/"+sz.name, func(b *testing.B) {
			b.ReportAllocs()
			s := base
			dk := delegationKey{"acme:s7", benchOrg(7), benchOrg(7)}
			on := false
			for b.Loop() {
				s = s.apply(&changes{dels: map[delegationKey]bool{dk: on}})
				on = !on
			}
		})
		b.Run("rebuild/"+sz.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				buildSized(sz.scopes, sz.access, sz.dels, sz.clients)
			}
		})
	}
}

// The token path's lookups: a pmap against a Go map of the same keys, at L
// (200,000 access rows). The two run interleaved, in blocks of 1,000
// lookups, so that both see the same machine; the metrics are the ns per
// lookup of each and their ratio.
func BenchmarkLookupAccess(b *testing.B) {
	const n = 200_000
	keys := make([]accessKey, n)
	gomap := make(map[accessKey]struct{}, n)
	e := editorFor[accessKey, struct{}](n)
	for i := range keys {
		keys[i] = accessKey{fmt.Sprint("acme:s", i%5000), benchOrg(i)}
		gomap[keys[i]] = struct{}{}
		e.Set(keys[i], struct{}{})
	}
	pm := e.Map()
	const block = 1000
	var tGo, tPm time.Duration
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		for range block {
			if _, ok := gomap[keys[i%n]]; !ok {
				b.Fatal("missing")
			}
			i += 7919
		}
		mid := time.Now()
		for range block {
			if _, ok := pm.Get(keys[i%n]); !ok {
				b.Fatal("missing")
			}
			i += 7919
		}
		tGo += mid.Sub(start)
		tPm += time.Since(mid)
	}
	lookups := float64(b.N * block)
	b.ReportMetric(float64(tGo.Nanoseconds())/lookups, "gomap-ns/lookup")
	b.ReportMetric(float64(tPm.Nanoseconds())/lookups, "pmap-ns/lookup")
	b.ReportMetric(float64(tPm)/float64(tGo), "pmap/gomap")
}
