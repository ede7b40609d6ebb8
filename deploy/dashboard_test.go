package deploy

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestDashboardLayout checks what Grafana would only show wrong: panel ids
// unique, panels inside the 24-column grid and not on top of one another,
// every query on the dashboard's data source variable.
func TestDashboardLayout(t *testing.T) {
	b, err := os.ReadFile("grafana/portvakt.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string `json:"uid"`
		Panels []struct {
			ID         int    `json:"id"`
			Type       string `json:"type"`
			Title      string `json:"title"`
			Datasource *struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			GridPos struct{ X, Y, W, H int } `json:"gridPos"`
			Targets []struct {
				Datasource *struct {
					UID string `json:"uid"`
				} `json:"datasource"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	if dash.UID == "" || len(dash.Panels) == 0 {
		t.Fatal("no uid or no panels")
	}
	ids := map[int]bool{}
	type cell struct{ x, y int }
	taken := map[cell]string{}
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel %q: id %d is used twice", p.Title, p.ID)
		}
		ids[p.ID] = true
		g := p.GridPos
		if g.W < 1 || g.H < 1 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v is outside the grid", p.Title, g)
		}
	cells:
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, ok := taken[cell{x, y}]; ok {
					t.Errorf("panel %q overlaps %q at %d,%d", p.Title, other, x, y)
					break cells
				}
				taken[cell{x, y}] = p.Title
			}
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
			t.Errorf("panel %q: no queries on the ${datasource} variable", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q: a query not on the ${datasource} variable", p.Title)
			}
		}
	}
}

// TestKitCoverage keeps what the kit promises: the dashboard shows tokens by
// outcome, error codes, latency, store and signing latency, rule reloads and
// the certificate cache; the alerts watch errors, latency, readiness and
// rule reloads.
func TestKitCoverage(t *testing.T) {
	queries := kitQueries(t)
	uses := func(prefix, metric string) bool {
		for where, q := range queries {
			if strings.HasPrefix(where, prefix) && slices.Contains(q.names(), metric) {
				return true
			}
		}
		return false
	}
	for _, m := range []string{
		"portvakt_token_requests_total", "portvakt_token_errors_total", "portvakt_token_duration_seconds_bucket",
		"portvakt_store_call_duration_seconds_bucket", "portvakt_token_signing_duration_seconds_bucket",
		"portvakt_rules_reloads_total", "portvakt_certificate_cache_lookups_total",
	} {
		if !uses("dashboard panel", m) {
			t.Errorf("no dashboard panel shows %s", m)
		}
	}
	for _, m := range []string{
		"up", "portvakt_token_requests_total", "portvakt_token_duration_seconds_bucket",
		"portvakt_store_call_duration_seconds_count", "portvakt_rules_reloads_total",
	} {
		if !uses("alert ", m) {
			t.Errorf("no alert watches %s", m)
		}
	}
}
