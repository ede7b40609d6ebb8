package cryptobound_test

import (
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/cryptobound"
)

func TestOpsRunsExactlyN(t *testing.T) {
	m, err := cryptobound.NewMeter()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 7, 20} {
		s, err := m.Ops(n)
		if err != nil {
			t.Fatal(err)
		}
		if s.Ops != int64(n) || s.Secs <= 0 || s.Rate() <= 0 {
			t.Fatalf("Ops(%d) = %+v (rate %v)", n, s, s.Rate())
		}
	}
}

func TestForRunsAboutD(t *testing.T) {
	m, err := cryptobound.NewMeter()
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.For(50 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if s.Ops < 1 || s.Secs < 0.05 {
		t.Fatalf("For(50ms) = %+v", s)
	}
}

func TestPooledAndRange(t *testing.T) {
	samples := []cryptobound.Sample{{Ops: 100, Secs: 1}, {Ops: 500, Secs: 2}}
	if got := cryptobound.Pooled(samples); got != 200 {
		t.Fatalf("Pooled = %v, want 200", got)
	}
	if got := cryptobound.Pooled(nil); got != 0 {
		t.Fatalf("Pooled(nil) = %v, want 0", got)
	}
	lo, hi, ok := cryptobound.Range(samples)
	if !ok || lo != 100 || hi != 250 {
		t.Fatalf("Range = %v, %v, %v; want 100, 250, true", lo, hi, ok)
	}
	if _, _, ok := cryptobound.Range(nil); ok {
		t.Fatal("Range(nil) ok")
	}
}
