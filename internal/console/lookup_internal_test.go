package console

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/portvakt/portvakt/internal/store"
)

// TestLookupAll: every row is read, page after page from the last key, and
// a list past the bound is refused rather than cut short.
func TestLookupAll(t *testing.T) {
	var rows []store.Client
	for i := range 7 {
		rows = append(rows, store.Client{ClientID: fmt.Sprintf("c%d", i)})
	}
	var calls int
	list := func(p store.Page) ([]store.Client, error) {
		calls++
		i := 0
		if len(p.After) > 0 {
			i = slices.IndexFunc(rows, func(c store.Client) bool { return c.ClientID == p.After[0] }) + 1
		}
		return rows[i:min(i+p.Limit, len(rows))], nil
	}
	for _, tc := range []struct {
		name      string
		size, max int
		want      int
		wantCalls int
		tooMany   bool
	}{
		{"ok/pages-of-3", 3, 100, 7, 3, false},
		{"ok/one-page", 10, 100, 7, 1, false},
		{"ok/exact-pages-then-empty", 7, 100, 7, 2, false},
		{"fail/past-the-bound", 2, 4, 0, 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls = 0
			got, err := lookupAll(list, tc.size, tc.max)
			if tc.tooMany {
				if !errors.Is(err, errTooMany) || got != nil {
					t.Fatalf("got %d rows, %v; want errTooMany", len(got), err)
				}
			} else if err != nil || !slices.EqualFunc(got, rows, func(a, b store.Client) bool { return a.ClientID == b.ClientID }) {
				t.Fatalf("got %v, %v; want all %d rows", got, err, len(rows))
			}
			if calls != tc.wantCalls {
				t.Errorf("%d calls, want %d", calls, tc.wantCalls)
			}
		})
	}
}
