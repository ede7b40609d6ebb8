package telemetry

import (
	"fmt"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

func setOf(o metric.MeasurementOption) attribute.Set {
	return metric.NewRecordConfig([]metric.RecordOption{o}).Attributes()
}

func TestAttrSetsBuildsEachCombinationOnceAndStaysBounded(t *testing.T) {
	a := newAttrSets("route", "method", "status_class")
	got := setOf(a.get([3]string{"/token", "POST", "2xx"}))
	want := attribute.NewSet(attribute.String("route", "/token"), attribute.String("method", "POST"), attribute.String("status_class", "2xx"))
	if !got.Equals(&want) {
		t.Fatalf("set = %v, want %v", got.Encoded(attribute.DefaultEncoder()), want.Encoded(attribute.DefaultEncoder()))
	}
	if n := testing.AllocsPerRun(100, func() { a.get([3]string{"/token", "POST", "2xx"}) }); n != 0 {
		t.Errorf("a known combination allocates %v times, want 0", n)
	}

	// Methods are whatever clients send: the cache stops growing at the
	// bound, and the sets past it are still right.
	for i := range 3 * maxAttrSets {
		m := fmt.Sprintf("M%d", i)
		s := setOf(a.get([3]string{"/token", m, "4xx"}))
		if v, ok := s.Value("method"); !ok || v.AsString() != m {
			t.Fatalf("method %s: set %v", m, s.Encoded(attribute.DefaultEncoder()))
		}
	}
	if len(a.sets) != maxAttrSets {
		t.Errorf("%d combinations kept, want the bound %d", len(a.sets), maxAttrSets)
	}

	one := setOf(newAttrSets("outcome").get([3]string{"issued", "ignored"}))
	if one.Len() != 1 {
		t.Errorf("one key: %v", one.Encoded(attribute.DefaultEncoder()))
	}
}
