package deploy

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// selector is one metric a PromQL expression selects, with the label names
// its matchers name.
type selector struct {
	name   string
	labels []string
}

// query is what a PromQL expression reads: its selectors, and the label
// names it groups or matches by (by, without, on, ignoring, group_left,
// group_right).
type query struct {
	selectors []selector
	grouping  []string
}

// notMetrics are the identifiers of PromQL that are not metric names when
// they are not followed by "(": operators and aggregations (which may be
// followed by by/without), and number literals.
var notMetrics = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true,
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
	"limitk": true, "limit_ratio": true, "inf": true, "nan": true,
}

var groupingWords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

// parseQuery reads the metric names and label names out of a PromQL
// expression, as used in dashboards and alert rules: enough of PromQL's
// lexer to skip strings, ranges, numbers, durations and Grafana's $variables,
// not a full parser (promtool checks the syntax).
func parseQuery(expr string) (query, error) {
	var q query
	s := expr
	i := 0
	isIdentStart := func(c byte) bool { return c == '_' || c == ':' || (c|0x20 >= 'a' && c|0x20 <= 'z') }
	isIdent := func(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }
	skipSpace := func(j int) int {
		for j < len(s) && strings.ContainsRune(" \t\r\n", rune(s[j])) {
			j++
		}
		return j
	}
	// skipString returns the index after the string literal starting at j.
	skipString := func(j int) (int, error) {
		quote := s[j]
		for j++; j < len(s); j++ {
			switch {
			case s[j] == '\\' && quote != '`':
				j++
			case s[j] == quote:
				return j + 1, nil
			}
		}
		return 0, fmt.Errorf("unterminated string in %q", expr)
	}
	// labelList reads "(a, b)" at j.
	labelList := func(j int) ([]string, int, error) {
		end := strings.IndexByte(s[j:], ')')
		if end < 0 {
			return nil, 0, fmt.Errorf("unclosed label list in %q", expr)
		}
		var out []string
		for _, l := range strings.Split(s[j+1:j+end], ",") {
			if l = strings.TrimSpace(l); l != "" {
				out = append(out, l)
			}
		}
		return out, j + end + 1, nil
	}
	// matchers reads "{a="x", b=~"y"}" at j.
	matchers := func(j int) ([]string, int, error) {
		var out []string
		j++
		for {
			j = skipSpace(j)
			if j >= len(s) {
				return nil, 0, fmt.Errorf("unclosed matcher in %q", expr)
			}
			switch c := s[j]; {
			case c == '}':
				return out, j + 1, nil
			case c == ',':
				j++
			case c == '"' || c == '\'' || c == '`':
				var err error
				if j, err = skipString(j); err != nil {
					return nil, 0, err
				}
			case isIdentStart(c):
				k := j
				for k < len(s) && isIdent(s[k]) {
					k++
				}
				out = append(out, s[j:k])
				j = k
			case strings.ContainsRune("=!~", rune(c)):
				j++
			default:
				return nil, 0, fmt.Errorf("unexpected %q in a matcher of %q", c, expr)
			}
		}
	}
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			var err error
			if i, err = skipString(i); err != nil {
				return q, err
			}
		case c == '[':
			end := strings.IndexByte(s[i:], ']')
			if end < 0 {
				return q, fmt.Errorf("unclosed range in %q", expr)
			}
			i += end + 1
		case c == '{':
			return q, fmt.Errorf("a selector without a metric name in %q", expr)
		case c == '$':
			// A Grafana variable outside a matcher or range.
			i++
			for i < len(s) && isIdent(s[i]) {
				i++
			}
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			// A number, with an exponent, or a duration (5m, 1h30m).
			for i < len(s) && (isIdent(s[i]) || s[i] == '.' ||
				(s[i] == '+' || s[i] == '-') && (s[i-1] == 'e' || s[i-1] == 'E')) {
				i++
			}
		case isIdentStart(c):
			j := i
			for j < len(s) && isIdent(s[j]) {
				j++
			}
			word := s[i:j]
			k := skipSpace(j)
			switch {
			case groupingWords[word] && k < len(s) && s[k] == '(':
				ls, next, err := labelList(k)
				if err != nil {
					return q, err
				}
				q.grouping = append(q.grouping, ls...)
				i = next
			case k < len(s) && s[k] == '(', notMetrics[strings.ToLower(word)]:
				i = j // a function or an operator
			default:
				sel := selector{name: word}
				i = j
				if k < len(s) && s[k] == '{' {
					ls, next, err := matchers(k)
					if err != nil {
						return q, err
					}
					sel.labels = ls
					i = next
				}
				q.selectors = append(q.selectors, sel)
			}
		default:
			i++
		}
	}
	return q, nil
}

// labelValuesRE is Grafana's label_values(selector, label) variable query.
var labelValuesRE = regexp.MustCompile(`^\s*label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$`)

// names lists q's metric names, sorted, once each.
func (q query) names() []string {
	var out []string
	for _, s := range q.selectors {
		out = append(out, s.name)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
