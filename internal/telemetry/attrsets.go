package telemetry

import (
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// maxAttrSets bounds the combinations one attrSets keeps. Some values come
// from requests (the HTTP method is any token a client sends), so the cache
// must not grow with what clients send; past the bound, sets are built per
// call, as metric.WithAttributes does.
const maxAttrSets = 256

// attrSets hands out one attribute set per combination of values of up to
// three string keys. Building a set sorts and copies its attributes, and
// every token request records several measurements: the sets are built once.
type attrSets struct {
	keys []string

	mu   sync.RWMutex
	sets map[[3]string]metric.MeasurementOption
}

func newAttrSets(keys ...string) *attrSets {
	if len(keys) == 0 || len(keys) > 3 {
		panic("telemetry: attrSets takes one to three keys")
	}
	return &attrSets{keys: keys, sets: map[[3]string]metric.MeasurementOption{}}
}

// get returns the option for vals, given in the order of the keys (the
// values past the keys are ignored).
func (a *attrSets) get(vals [3]string) metric.MeasurementOption {
	a.mu.RLock()
	o, ok := a.sets[vals]
	a.mu.RUnlock()
	if ok {
		return o
	}
	kvs := make([]attribute.KeyValue, len(a.keys))
	for i, k := range a.keys {
		kvs[i] = attribute.String(k, vals[i])
	}
	o = metric.WithAttributeSet(attribute.NewSet(kvs...))
	a.mu.Lock()
	if len(a.sets) < maxAttrSets {
		a.sets[vals] = o
	}
	a.mu.Unlock()
	return o
}
