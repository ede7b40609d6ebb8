package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// The admin CLI follows a list's Link headers to the last page and prints
// one array; it never follows a link out of the API's URL (the token would
// go with it).
func TestAdminFollowsPages(t *testing.T) {
	var hostile bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/scopes/all" {
			http.NotFound(w, r)
			return
		}
		page, _ := strconv.Atoi(r.URL.Query().Get("cursor"))
		var items []map[string]string
		for i := range 3 {
			items = append(items, map[string]string{"name": fmt.Sprintf("acme:s%d", page*3+i)})
		}
		switch {
		case hostile:
			w.Header().Set("Link", `<http://elsewhere.example/api/v1/scopes/all?cursor=1>; rel="next"`)
		case page < 2:
			w.Header().Set("Link", fmt.Sprintf(`<http://%s/api/v1/scopes/all?limit=3&cursor=%d>; rel="next"`, r.Host, page+1))
		}
		json.NewEncoder(w).Encode(items)
	}))
	defer srv.Close()
	run := func() (string, error) {
		cmd := adminCmd()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs([]string{"scopes", "all", "--json", "--issuer", srv.URL + "/"})
		err := cmd.Execute()
		return out.String(), err
	}

	t.Run("ok/three-pages-one-array", func(t *testing.T) {
		out, err := run()
		if err != nil {
			t.Fatal(err)
		}
		var got []map[string]string
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("not one array: %v\n%s", err, out)
		}
		if len(got) != 9 || got[0]["name"] != "acme:s0" || got[8]["name"] != "acme:s8" {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("fail/next-link-to-another-host", func(t *testing.T) {
		hostile = true
		defer func() { hostile = false }()
		if _, err := run(); err == nil || !strings.Contains(err.Error(), "not under") {
			t.Fatalf("err = %v, want a refusal to follow the link", err)
		}
	})
}
