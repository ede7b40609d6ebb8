package deploy

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.yaml.in/yaml/v4"

	"github.com/portvakt/portvakt/internal/pgtest"
	"github.com/portvakt/portvakt/internal/testserver"
)

func TestMain(m *testing.M) { os.Exit(testserver.Main(m)) }

// prometheusMade are the series Prometheus makes for every target, and the
// labels it adds to every series it scrapes.
var (
	prometheusMade   = map[string][]string{"up": nil}
	prometheusLabels = []string{"job", "instance"}
)

// kitQueries are the PromQL expressions of the dashboard and the alert
// rules, keyed by where they are.
func kitQueries(t *testing.T) map[string]query {
	t.Helper()
	out := map[string]query{}
	add := func(where, expr string) {
		q, err := parseQuery(expr)
		if err != nil {
			t.Errorf("%s: %v", where, err)
			return
		}
		out[where] = q
	}

	b, err := os.ReadFile("grafana/portvakt.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name  string          `json:"name"`
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("grafana/portvakt.json: %v", err)
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			add(fmt.Sprintf("dashboard panel %q query %s", p.Title, tg.RefID), tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Fatalf("dashboard variable %s: %v", v.Name, err)
		}
		m := labelValuesRE.FindStringSubmatch(q.Query)
		if m == nil {
			t.Errorf("dashboard variable %s: %q is not label_values(selector, label)", v.Name, q.Query)
			continue
		}
		// The label must be on the selected metric: a matcher of it.
		where := "dashboard variable " + v.Name
		add(where, m[1])
		if sq, ok := out[where]; ok && len(sq.selectors) == 1 {
			sq.selectors[0].labels = append(sq.selectors[0].labels, m[2])
			out[where] = sq
		}
	}

	b, err = os.ReadFile("prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatalf("prometheus/alerts.yml: %v", err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			add("alert "+r.Alert, r.Expr)
		}
	}
	if len(out) < 20 {
		t.Fatalf("only %d queries found in the dashboard and the alert rules: is the parsing broken?", len(out))
	}
	return out
}

// exposition maps each sample name of a Prometheus text exposition to the
// label names it was exported with.
func exposition(r io.Reader) (map[string][]string, error) {
	out := map[string][]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		end := strings.IndexAny(line, "{ ")
		if end <= 0 {
			return nil, fmt.Errorf("not a sample: %q", line)
		}
		name := line[:end]
		ls := out[name]
		if line[end] == '{' {
			rest := line[end+1:]
			for len(rest) > 0 && rest[0] != '}' {
				eq := strings.Index(rest, `="`)
				if eq < 0 {
					return nil, fmt.Errorf("bad labels: %q", line)
				}
				ls = append(ls, strings.TrimLeft(rest[:eq], ","))
				i := eq + 2
				for i < len(rest) && rest[i] != '"' {
					if rest[i] == '\\' {
						i++
					}
					i++
				}
				if i >= len(rest) {
					return nil, fmt.Errorf("bad label value: %q", line)
				}
				rest = rest[i+1:]
			}
		}
		slices.Sort(ls)
		out[name] = slices.Compact(ls)
	}
	return out, sc.Err()
}

// unknownNames lists what the queries read that exported does not have:
// metric names, matcher labels a metric lacks, and grouping labels none of
// the query's metrics has.
func unknownNames(exported map[string][]string, queries map[string]query) []string {
	var out []string
	for where, q := range queries {
		var all []string
		for _, s := range q.selectors {
			ls, ok := exported[s.name]
			if !ok {
				ls, ok = prometheusMade[s.name]
			}
			if !ok {
				out = append(out, fmt.Sprintf("%s: metric %s is not exported", where, s.name))
				continue
			}
			ls = slices.Concat(ls, prometheusLabels)
			all = append(all, ls...)
			for _, l := range s.labels {
				if !slices.Contains(ls, l) {
					out = append(out, fmt.Sprintf("%s: metric %s has no label %s (it has %v)", where, s.name, l, ls))
				}
			}
		}
		for _, l := range q.grouping {
			if len(all) > 0 && !slices.Contains(all, l) {
				out = append(out, fmt.Sprintf("%s: groups by %s, which none of its metrics has", where, l))
			}
		}
	}
	slices.Sort(out)
	return out
}

func TestUnknownNames(t *testing.T) {
	exported := map[string][]string{
		"portvakt_token_requests_total":          {"client_amr", "delegated", "outcome"},
		"portvakt_token_duration_seconds_bucket": {"le", "outcome"},
	}
	for _, tc := range []struct {
		name, expr string
		want       int
	}{
		{"ok/known", `sum by (outcome, instance) (rate(portvakt_token_requests_total{outcome="issued",job="portvakt"}[5m]))`, 0},
		{"ok/histogram", `histogram_quantile(0.9, sum by (le) (rate(portvakt_token_duration_seconds_bucket[5m])))`, 0},
		{"ok/up", `up{job="portvakt"} == 0`, 0},
		{"fail/unknown-metric", `rate(portvakt_tokens_total[5m])`, 1},
		{"fail/unknown-label", `portvakt_token_requests_total{status="500"}`, 1},
		{"fail/unknown-grouping", `sum by (route) (portvakt_token_requests_total)`, 1},
		{"fail/le-on-a-counter", `sum by (le) (portvakt_token_requests_total)`, 1},
		{"fail/label-prometheus-does-not-add", `up{code="200"}`, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := parseQuery(tc.expr)
			if err != nil {
				t.Fatal(err)
			}
			if got := unknownNames(exported, map[string]query{"q": q}); len(got) != tc.want {
				t.Errorf("got %d problems %v, want %d", len(got), got, tc.want)
			}
		})
	}
}

// TestKitQueriesNameExportedMetrics runs a real server, has it issue a token
// (with an enterprise certificate, so the certificate cache is used, and
// its revocation checked against a CRL file), refuse a request and
// rate-limit another, then requires every metric and label the dashboard
// and the alert rules read to be on its /metrics. The signing keys are kept
// in the store (a KEK is set), so the key-age series are there too.
func TestKitQueriesNameExportedMetrics(t *testing.T) {
	queries := kitQueries(t)
	config := func(t *testing.T) map[string]any {
		crl, err := testserver.SharedPKI(t).Intermediate.CRL(time.Now())
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "issuing.crl")
		if err := os.WriteFile(file, crl, 0o600); err != nil {
			t.Fatal(err)
		}
		return map[string]any{
			"rate_limit": map[string]any{
				// One grant per 100 s per address: the second is refused
				// however slow the machine.
				"enabled": true, "address": map[string]any{"per_second": 0.01, "burst": 1},
			},
			"trust": map[string]any{"revocation": map[string]any{"enabled": true, "crl_files": []string{file}}},
		}
	}
	kek := make([]byte, 32)
	_, _ = rand.Read(kek)
	env := []string{"PORTVAKT_SIGNING_KEK=" + base64.StdEncoding.EncodeToString(kek)}
	for _, tc := range []struct {
		name string
		opts func(t *testing.T) testserver.Options
	}{
		{"ok/sqlite", func(t *testing.T) testserver.Options { return testserver.Options{Config: config(t), Env: env} }},
		{"ok/postgres", func(t *testing.T) testserver.Options {
			return testserver.Options{Driver: "postgres", DSN: pgtest.FreshSchema(t, pgtest.DSN(t)), Config: config(t), Env: env}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testserver.Start(t, tc.opts(t))
			s.Token(t, s.PKI.ConsumerCert, "demo:read")
			unknownClientUntilLimited(t, s)

			resp, err := http.Get(s.OpsURL + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			exported, err := exposition(io.LimitReader(resp.Body, 4<<20))
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range unknownNames(exported, queries) {
				t.Error(p)
			}
			if t.Failed() {
				var names []string
				for n := range exported {
					if strings.HasPrefix(n, "portvakt_") {
						names = append(names, n+fmt.Sprint(exported[n]))
					}
				}
				slices.Sort(names)
				t.Logf("exported:\n%s", strings.Join(names, "\n"))
			}
		})
	}
}

// unknownClientUntilLimited sends grants from a client the server does not
// know (refused with an OAuth error) until the per-address limit refuses
// one with 429: the second, the burst being 1.
func unknownClientUntilLimited(t *testing.T, s *testserver.Server) {
	t.Helper()
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": "no-such-client", "aud": s.Issuer, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
		"jti": "deploy-metrics-test", "scope": "demo:read",
	})
	tok.Header["kid"] = "no-such-key"
	// Any RSA key: the iss is unknown, so no key of it is registered.
	assertion, err := tok.SignedString(s.PKI.ConsumerKID.Key)
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {assertion}}
	var codes []int
	for range 10 {
		resp, err := http.PostForm(s.TokenURL, form)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
		if resp.StatusCode == http.StatusTooManyRequests {
			if codes[0] == http.StatusTooManyRequests {
				t.Fatalf("the first grant was already rate-limited: %v", codes)
			}
			return
		}
	}
	t.Fatalf("no 429 in %d grants of an unknown client at 0.01/s, burst 1: %v", len(codes), codes)
}
