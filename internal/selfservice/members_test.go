package selfservice_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/store"
)

// memberPath is /members/{subject} with the subject path-escaped.
func memberPath(subject string) string { return "/members/" + url.PathEscape(subject) }

// TestMembers: an org makes people members, reads, lists (paged), replaces
// their roles and removes them over HTTP; bad input is a 400 naming the
// field; no role the caller lacks can be given; the last holder of
// portvakt:members.write stays; another org's members are 404; without the
// scope, 403 insufficient_scope.
func TestMembers(t *testing.T) { eachEngine(t, testMembers) }

func testMembers(t *testing.T, eng engine) {
	e := newEnv(t, eng)
	admin := e.adminToken()
	consumerClient, consumer := e.onboard(admin, consumerOrg)
	_, other := e.onboard(admin, otherOrg)
	const kari, ola = "kari@idp.example", "auth0|ola/nordmann" // a slash: %2F in the path

	var m store.Member
	e.must(consumer, "PUT", memberPath(kari), map[string]any{"roles": []string{records.MembersWrite, records.ScopesRead}}, http.StatusOK, &m)
	if m.Org != consumerOrg || m.Subject != kari || !slices.Equal(m.Roles, []string{records.MembersWrite, records.ScopesRead}) ||
		m.Created.IsZero() || !m.LastUpdated.Equal(m.Created) {
		t.Fatalf("PUT made %+v", m)
	}
	var o store.Member
	e.must(consumer, "PUT", memberPath(ola), map[string]any{"roles": []string{}}, http.StatusOK, &o)
	if o.Subject != ola || o.Roles == nil || len(o.Roles) != 0 {
		t.Fatalf("PUT made %+v", o)
	}
	// A record read can be sent back with new roles: 200 again, created kept.
	var sent map[string]any
	e.must(consumer, "GET", memberPath(ola), nil, http.StatusOK, &sent)
	sent["roles"] = []string{records.AuditRead}
	var replaced store.Member
	e.must(consumer, "PUT", memberPath(ola), sent, http.StatusOK, &replaced)
	if !slices.Equal(replaced.Roles, []string{records.AuditRead}) || !replaced.Created.Equal(o.Created) {
		t.Fatalf("replaced %+v, was %+v", replaced, o)
	}

	// Lists are bare arrays in subject order, paged.
	var list []store.Member
	r := e.must(consumer, "GET", "/members?limit=1", nil, http.StatusOK, &list)
	if len(list) != 1 || list[0].Subject != ola || !strings.Contains(r.header.Get("Link"), `rel="next"`) {
		t.Fatalf("first page %+v, Link %q", list, r.header.Get("Link"))
	}
	next, err := url.Parse(strings.TrimPrefix(strings.Split(r.header.Get("Link"), ">")[0], "<"))
	if err != nil {
		t.Fatal(err)
	}
	r = e.must(consumer, "GET", "/members?"+next.RawQuery, nil, http.StatusOK, &list)
	if len(list) != 1 || list[0].Subject != kari || r.header.Get("Link") != "" {
		t.Fatalf("second page %+v, Link %q", list, r.header.Get("Link"))
	}

	// Invalid input: a 400 naming the field.
	for _, tc := range []struct {
		name, subject string
		body          any
		field         string
	}{
		{"fail/roles-missing", "x", map[string]any{}, "roles"},
		{"fail/roles-null", "x", map[string]any{"roles": nil}, "roles"},
		{"fail/role-unknown", "x", map[string]any{"roles": []string{"acme:api"}}, "roles[0]"},
		{"fail/role-admin", "x", map[string]any{"roles": []string{records.AdminScope}}, "roles[0]"},
		{"fail/role-twice", "x", map[string]any{"roles": []string{records.AuditRead, records.AuditRead}}, "roles[1]"},
		{"fail/roles-type", "x", map[string]any{"roles": records.AuditRead}, "roles"},
		{"fail/unknown-field", "x", map[string]any{"roles": []string{}, "admin": true}, "admin"},
		{"fail/org-differs", "x", map[string]any{"roles": []string{}, "org": otherOrg}, "org"},
		{"fail/subject-differs", "x", map[string]any{"roles": []string{}, "subject": "y"}, "subject"},
		{"fail/subject-too-long", strings.Repeat("a", records.MaxSubject+1), map[string]any{"roles": []string{}}, "subject"},
		{"fail/subject-bidi", "kari\u202e", map[string]any{"roles": []string{}}, "subject"},
		{"fail/subject-control", "kari\x01", map[string]any{"roles": []string{}}, "subject"},
		{"fail/subject-space", " kari", map[string]any{"roles": []string{}}, "subject"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantField(t, e.do(consumer, "PUT", memberPath(tc.subject), tc.body), tc.field)
		})
	}
	wantField(t, e.do(consumer, "GET", memberPath(strings.Repeat("a", records.MaxSubject+1)), nil), "subject")

	// No escalation: a token with only members.write gives no other role,
	// but may drop one it lacks.
	onlyMembers := e.certToken(consumerClient, consumerOrg, "", records.MembersWrite)
	wantProblem(t, e.do(onlyMembers, "PUT", memberPath("x"), map[string]any{"roles": []string{records.ClientsWrite}}), http.StatusForbidden, records.ClientsWrite)
	wantProblem(t, e.do(onlyMembers, "PUT", memberPath(ola), map[string]any{"roles": []string{records.AuditRead, records.ScopesRead}}), http.StatusForbidden, records.ScopesRead)
	e.must(onlyMembers, "PUT", memberPath(ola), map[string]any{"roles": []string{}}, http.StatusOK, nil)

	// The last holder of members.write stays: 409 on demotion and removal.
	wantProblem(t, e.do(consumer, "PUT", memberPath(kari), map[string]any{"roles": []string{records.ScopesRead}}), http.StatusConflict, records.MembersWrite)
	wantProblem(t, e.do(consumer, "DELETE", memberPath(kari), nil), http.StatusConflict, records.MembersWrite)

	// Another org's members are missing, exactly as members that do not
	// exist; its list holds none of them.
	t.Run("fail/other-org", func(t *testing.T) {
		for _, s := range []string{kari, ola, "nobody"} {
			wantProblem(t, e.do(other, "GET", memberPath(s), nil), http.StatusNotFound)
			wantProblem(t, e.do(other, "DELETE", memberPath(s), nil), http.StatusNotFound)
		}
		var theirs []store.Member
		e.must(other, "GET", "/members", nil, http.StatusOK, &theirs)
		if theirs == nil || len(theirs) != 0 {
			t.Fatalf("the other org lists %+v", theirs)
		}
	})

	// Without portvakt:members.write: 403 insufficient_scope naming it.
	t.Run("fail/no-scope", func(t *testing.T) {
		reader := e.certToken(consumerClient, consumerOrg, "", records.ScopesRead, records.AuditRead)
		for _, c := range []struct {
			method, path string
			body         any
		}{{"GET", "/members", nil}, {"GET", memberPath(kari), nil}, {"PUT", memberPath("x"), map[string]any{"roles": []string{}}}, {"DELETE", memberPath(ola), nil}} {
			r := e.do(reader, c.method, c.path, c.body)
			wantProblem(t, r, http.StatusForbidden, records.MembersWrite)
			if h := r.header.Get("WWW-Authenticate"); !strings.Contains(h, `error="insufficient_scope"`) {
				t.Errorf("%s %s: WWW-Authenticate %q", c.method, c.path, h)
			}
		}
	})

	// Remove: 204, then 404.
	e.must(consumer, "DELETE", memberPath(ola), nil, http.StatusNoContent, nil)
	wantProblem(t, e.do(consumer, "GET", memberPath(ola), nil), http.StatusNotFound)
	wantProblem(t, e.do(consumer, "DELETE", memberPath(ola), nil), http.StatusNotFound)

	// Every change is an audit event of the org only, and no refusal is:
	// two made, two replaced (the send-back and the drop), one removed.
	var page struct {
		Events []store.AuditEvent `json:"events"`
	}
	e.must(consumer, "GET", "/audit?limit=500", nil, http.StatusOK, &page)
	var actions []string
	for _, ev := range page.Events {
		if strings.HasPrefix(ev.Action, "member.") {
			actions = append(actions, ev.Action+" "+ev.Target)
			if !slices.Equal(ev.Orgs, []string{consumerOrg}) || ev.ActorPerson != "" {
				t.Errorf("%s %s: orgs %v, person %q", ev.Action, ev.Target, ev.Orgs, ev.ActorPerson)
			}
		}
	}
	want := []string{"member.delete " + ola, "member.update " + ola, "member.update " + ola, "member.create " + ola, "member.create " + kari}
	if !slices.Equal(actions, want) {
		t.Errorf("member audit events %q, want %q", actions, want)
	}
}
