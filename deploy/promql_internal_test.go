package deploy

import (
	"reflect"
	"testing"
)

func TestParseQuery(t *testing.T) {
	for _, tc := range []struct {
		name     string
		expr     string
		want     []selector
		grouping []string
		err      bool
	}{
		{"ok/bare", `up`, []selector{{name: "up"}}, nil, false},
		{"ok/matchers", `up{job="portvakt",instance=~"$instance"} == 0`,
			[]selector{{name: "up", labels: []string{"job", "instance"}}}, nil, false},
		{"ok/aggregation-by-first", `sum by (outcome) (rate(portvakt_token_requests_total{outcome!="x"}[$__rate_interval]))`,
			[]selector{{name: "portvakt_token_requests_total", labels: []string{"outcome"}}}, []string{"outcome"}, false},
		{"ok/aggregation-by-last", `sum(rate(a_total[5m])) by (le, op) / on(op) group_left(route) b_total offset 1h30m`,
			[]selector{{name: "a_total"}, {name: "b_total"}}, []string{"le", "op", "op", "route"}, false},
		{"ok/histogram", `histogram_quantile(0.99, sum by (le) (rate(x_bucket{a="1"}[5m]))) > 2.5e-1`,
			[]selector{{name: "x_bucket", labels: []string{"a"}}}, []string{"le"}, false},
		{"ok/strings-hold-anything", `absent(up{job="a}b,c=\"d\""} == 1) and bool x:y_z{l='w{'}`,
			[]selector{{name: "up", labels: []string{"job"}}, {name: "x:y_z", labels: []string{"l"}}}, nil, false},
		{"ok/keywords-are-not-metrics", `count(a) or max(b) unless topk(3, c) and nan`,
			[]selector{{name: "a"}, {name: "b"}, {name: "c"}}, nil, false},
		{"fail/nameless-selector", `{__name__="up"}`, nil, nil, true},
		{"fail/unclosed-matcher", `up{job="x"`, nil, nil, true},
		{"fail/unterminated-string", `up{job="x}`, nil, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := parseQuery(tc.expr)
			if tc.err {
				if err == nil {
					t.Fatalf("no error, got %+v", q)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(q.selectors, tc.want) || !reflect.DeepEqual(q.grouping, tc.grouping) {
				t.Errorf("got %+v grouping %v\nwant %+v grouping %v", q.selectors, q.grouping, tc.want, tc.grouping)
			}
		})
	}
}
