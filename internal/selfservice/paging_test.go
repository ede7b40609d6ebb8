package selfservice_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/portvakt/portvakt/internal/norid"
)

var nextLink = regexp.MustCompile(`^<([^>]*)>; rel="next"$`)

// walkList follows a list's Link headers from path with ?limit=, calling
// add after each page, and returns every record's key (by keyOf) in the
// order the pages gave them.
func (e *env) walkList(token, path string, limit int, keyOf func(map[string]any) string, add func(page int)) []string {
	e.t.Helper()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	next := fmt.Sprintf("%s%slimit=%d", path, sep, limit)
	var keys []string
	for page := 0; next != ""; page++ {
		r := e.must(token, "GET", next, nil, http.StatusOK, nil)
		var recs []map[string]any
		if err := json.Unmarshal(r.body, &recs); err != nil {
			e.t.Fatalf("GET %s: not a bare array: %s", next, r.body)
		}
		if len(recs) > limit {
			e.t.Fatalf("GET %s: %d records, limit %d", next, len(recs), limit)
		}
		for _, rec := range recs {
			keys = append(keys, keyOf(rec))
		}
		next = ""
		if l := r.header.Get("Link"); l != "" {
			m := nextLink.FindStringSubmatch(l)
			if m == nil {
				e.t.Fatalf("GET %s: Link %q is not <...>; rel=\"next\"", next, l)
			}
			base := strings.TrimSuffix(e.issuer, "/") + "/api/v1"
			if !strings.HasPrefix(m[1], base+"/") {
				e.t.Fatalf("next link %q is not under %s", m[1], base)
			}
			next = strings.TrimPrefix(m[1], base)
			if len(recs) != limit {
				e.t.Fatalf("a page of %d records (limit %d) has a next link", len(recs), limit)
			}
		}
		if add != nil {
			add(page)
		}
		if page > 200 {
			e.t.Fatal("the walk does not end")
		}
	}
	return keys
}

// nthOrg is the i-th of a series of distinct valid org numbers starting
// with the three digits of series.
func nthOrg(series string, i int) string {
	for k := range 10 {
		if o, ok := norid.CompleteOrg(fmt.Sprintf("%s%04d%d", series, i, k)); ok {
			return o
		}
	}
	panic("no valid org number near " + series)
}

func field(names ...string) func(map[string]any) string {
	return func(m map[string]any) string {
		var parts []string
		for _, n := range names {
			parts = append(parts, fmt.Sprint(m[n]))
		}
		return strings.Join(parts, "|")
	}
}

// checkWalk: every record present before the walk is seen exactly once,
// and the walk is in strictly increasing key order.
func checkWalk(t *testing.T, what string, before, walked []string) {
	t.Helper()
	for i := 1; i < len(walked); i++ {
		if walked[i-1] >= walked[i] {
			t.Fatalf("%s: not in strict key order at %d: %q then %q", what, i, walked[i-1], walked[i])
		}
	}
	for _, k := range before {
		if !slices.Contains(walked, k) {
			t.Fatalf("%s: the walk missed %q", what, k)
		}
	}
}

// Every self-service list pages through Link headers: walked to the end
// with records added during the walk, nothing present all along is missed
// or repeated (docs/selfservice.md lists; RFC 8288 links).
func TestEveryListPages(t *testing.T) {
	eachEngine(t, func(t *testing.T, eng engine) {
		e := newEnv(t, eng)
		admin := e.adminToken()
		_, provider := e.onboard(admin, providerOrg)
		_, consumer := e.onboard(admin, consumerOrg)
		e.must(admin, "PUT", "/prefixes/acme", map[string]string{"owner_org": providerOrg}, http.StatusOK, nil)
		for i := range 12 {
			e.must(admin, "PUT", fmt.Sprintf("/prefixes/p%02d", i), map[string]string{"owner_org": otherOrg}, http.StatusOK, nil)
		}
		scope := func(sub string, private bool) {
			body := map[string]any{"prefix": "acme", "subscope": sub, "description": "about " + sub, "delegation_source": e.issuer}
			if private {
				body["visibility"] = "PRIVATE"
			}
			e.must(provider, "POST", "/scopes", body, http.StatusCreated, nil)
		}
		for i := range 14 {
			scope(fmt.Sprintf("s%02d", i*2), i%4 == 1)
		}
		orgs := []string{}
		for i := range 11 {
			orgs = append(orgs, nthOrg("320", i))
		}
		for _, o := range orgs {
			e.must(provider, "PUT", "/scopes/access/"+o+"?scope=acme:s00", nil, http.StatusOK, nil)
		}
		for i := range 14 {
			e.must(provider, "PUT", fmt.Sprintf("/scopes/access/%s?scope=acme:s%02d", consumerOrg, i*2), nil, http.StatusOK, nil)
		}
		client := func(name string) {
			e.must(consumer, "POST", "/clients", map[string]any{"client_name": name, "description": "d", "scopes": []string{"acme:s00"}}, http.StatusCreated, nil)
		}
		for i := range 13 {
			client(fmt.Sprintf("c%02d", i))
		}
		for _, o := range orgs {
			e.must(consumer, "PUT", "/delegations/"+o+"?scope=acme:s00", nil, http.StatusOK, nil)
		}

		lists := []struct {
			name, token, path string
			key               func(map[string]any) string
			add               func(i int)
		}{
			{"prefixes", admin, "/prefixes", field("prefix"), func(i int) {
				e.must(admin, "PUT", fmt.Sprintf("/prefixes/p%02d", 20+i), map[string]string{"owner_org": otherOrg}, http.StatusOK, nil)
			}},
			{"scopes", provider, "/scopes", field("name"), func(i int) { scope(fmt.Sprintf("s%02d", 2*i+1), false) }},
			{"scopes/all", consumer, "/scopes/all", field("name"), func(i int) { scope(fmt.Sprintf("t%02d", i), i%2 == 0) }},
			{"scopes/access", provider, "/scopes/access?scope=acme:s00", field("scope", "consumer_orgno"), func(i int) {
				e.must(provider, "PUT", "/scopes/access/"+nthOrg("330", i)+"?scope=acme:s00", nil, http.StatusOK, nil)
			}},
			{"scopes/access/all", consumer, "/scopes/access/all", field("scope", "consumer_orgno"), func(i int) {
				e.must(provider, "PUT", fmt.Sprintf("/scopes/access/%s?scope=acme:t%02d", consumerOrg, i), nil, http.StatusOK, nil)
			}},
			{"clients", consumer, "/clients", field("client_id"), func(i int) { client(fmt.Sprintf("d%02d", i)) }},
			{"delegations", consumer, "/delegations", field("scope", "consumer_orgno", "supplier_orgno"), func(i int) {
				e.must(consumer, "PUT", "/delegations/"+nthOrg("340", i)+"?scope=acme:s00", nil, http.StatusOK, nil)
			}},
		}
		for _, l := range lists {
			t.Run("ok/"+l.name, func(t *testing.T) {
				before := e.walkList(l.token, l.path, 1000, l.key, nil)
				if len(before) < 10 {
					t.Fatalf("only %d records to walk", len(before))
				}
				walked := e.walkList(l.token, l.path, 4, l.key, l.add)
				checkWalk(t, l.name, before, walked)
			})
		}

		t.Run("ok/scopes/all/query", func(t *testing.T) {
			got := e.walkList("", "/scopes/all?q=ABOUT+S0", 2, field("name"), nil)
			for _, n := range got {
				if !strings.HasPrefix(n, "acme:s0") {
					t.Fatalf("q=about s0 found %s", n)
				}
			}
			if len(got) < 4 {
				t.Fatalf("q=about s0 found %v", got)
			}
		})
		t.Run("ok/scopes/all/private-hidden-without-token", func(t *testing.T) {
			for _, n := range e.walkList("", "/scopes/all", 3, field("name", "visibility"), nil) {
				if strings.HasSuffix(n, "|PRIVATE") {
					t.Fatalf("an anonymous walk shows %s", n)
				}
			}
		})
		for _, bad := range []string{"limit=0", "limit=1001", "limit=x", "cursor=%21%21", "cursor=" + strings.Repeat("A", 3000), "limit=1&limit=2"} {
			t.Run("fail/page/"+bad[:min(len(bad), 20)], func(t *testing.T) {
				r := e.do(consumer, "GET", "/clients?"+bad, nil)
				if r.status != http.StatusBadRequest {
					t.Fatalf("GET /clients?%s: %d %s", bad, r.status, r.body)
				}
			})
		}
	})
}
