package records_test

import (
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/records"
)

func TestDaysLeft(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	for _, tc := range []struct {
		name string
		left time.Duration
		want int
	}{
		{"ok/a-second", time.Second, 1},
		{"ok/exactly-a-day", day, 1},
		{"ok/a-day-and-a-second", day + time.Second, 2},
		{"ok/thirty-days", 30 * day, 30},
		{"ok/expires-now", 0, 0},
		{"ok/expired", -day, 0},
	} {
		if got := records.DaysLeft(now.Add(tc.left), now); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}
