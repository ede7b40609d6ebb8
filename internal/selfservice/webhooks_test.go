package selfservice_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/portvakt/portvakt/internal/manage"
	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/store"
)

// webhookView is GET /webhooks/{id}: the webhook and its latest attempts.
type webhookView struct {
	store.Webhook
	Deliveries []store.DeliveryAttempt `json:"deliveries"`
}

// wantField checks a 400 that names field among its problems.
func wantField(t *testing.T, r reply, field string) {
	t.Helper()
	if r.status != http.StatusBadRequest {
		t.Fatalf("status %d, want 400 naming %s: %s", r.status, field, r.body)
	}
	p := problemOf(t, r)
	for _, fe := range p.Errors {
		if fe.Field == field {
			return
		}
	}
	t.Fatalf("problem %+v does not name the field %s", p, field)
}

// TestWebhooks: an org registers, lists, reads, changes and deactivates its
// webhooks; another org's are missing; bad input is a 400 naming the field;
// the 11th active webhook is a 409.
func TestWebhooks(t *testing.T) { eachEngine(t, testWebhooks) }

func testWebhooks(t *testing.T, eng engine) {
	e := newEnv(t, eng)
	admin := e.adminToken()
	_, consumer := e.onboard(admin, consumerOrg)
	_, other := e.onboard(admin, otherOrg)

	// Create: the server assigns the id and the org; events default to all.
	var hook store.Webhook
	e.must(consumer, "POST", "/webhooks", map[string]any{"url": "https://hooks.example.no/portvakt"}, http.StatusCreated, &hook)
	if hook.ID == "" || hook.Org != consumerOrg || hook.URL != "https://hooks.example.no/portvakt" || !hook.Active ||
		hook.Events == nil || len(hook.Events) != 0 || hook.Created.IsZero() || !hook.LastUpdated.Equal(hook.Created) {
		t.Fatalf("created %+v", hook)
	}
	var loop store.Webhook
	e.must(consumer, "POST", "/webhooks", map[string]any{
		"url": "http://127.0.0.1:9/hook", "events": []string{store.EventAccessApproved, store.EventAccessDenied},
	}, http.StatusCreated, &loop)
	if !slices.Equal(loop.Events, []string{store.EventAccessApproved, store.EventAccessDenied}) {
		t.Fatalf("created %+v", loop)
	}

	// Read: the record, with no delivery attempts yet.
	var view webhookView
	e.must(consumer, "GET", "/webhooks/"+hook.ID, nil, http.StatusOK, &view)
	if view.Webhook.ID != hook.ID || view.URL != hook.URL || view.Deliveries == nil || len(view.Deliveries) != 0 {
		t.Fatalf("GET %+v", view)
	}
	var raw map[string]json.RawMessage
	e.must(consumer, "GET", "/webhooks/"+hook.ID, nil, http.StatusOK, &raw)
	if string(raw["deliveries"]) != "[]" {
		t.Fatalf("deliveries %s, want []", raw["deliveries"])
	}
	var list []store.Webhook
	e.must(consumer, "GET", "/webhooks", nil, http.StatusOK, &list)
	if len(list) != 2 || !slices.ContainsFunc(list, func(w store.Webhook) bool { return w.ID == hook.ID }) {
		t.Fatalf("list %+v", list)
	}

	// Update: a record read can be sent back with changes, deliveries and
	// all; the read-only fields cannot change.
	var sent map[string]any
	e.must(consumer, "GET", "/webhooks/"+hook.ID, nil, http.StatusOK, &sent)
	sent["url"] = "https://hooks.example.no/v2"
	sent["events"] = []string{store.EventAccessRequested}
	var updated store.Webhook
	e.must(consumer, "PUT", "/webhooks/"+hook.ID, sent, http.StatusOK, &updated)
	if updated.ID != hook.ID || updated.URL != "https://hooks.example.no/v2" || !slices.Equal(updated.Events, []string{store.EventAccessRequested}) ||
		!updated.Created.Equal(hook.Created) || updated.LastUpdated.Before(hook.LastUpdated) {
		t.Fatalf("updated %+v", updated)
	}
	for _, tc := range []struct{ field, value string }{{"id", "6f1c2a4e-0000-4000-8000-000000000001"}, {"org", otherOrg}} {
		t.Run("fail/update/"+tc.field, func(t *testing.T) {
			body := map[string]any{"url": "https://hooks.example.no/v2", tc.field: tc.value}
			wantField(t, e.do(consumer, "PUT", "/webhooks/"+hook.ID, body), tc.field)
		})
	}

	// Invalid input, on create and on update: a 400 naming the field.
	bad := []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"fail/url/http-not-loopback", map[string]any{"url": "http://hooks.example.no/hook"}, "url"},
		{"fail/url/http-private-address", map[string]any{"url": "http://10.0.0.1/hook"}, "url"},
		{"fail/url/userinfo", map[string]any{"url": "https://user:secret@hooks.example.no/hook"}, "url"},
		{"fail/url/userinfo-loopback", map[string]any{"url": "http://user@127.0.0.1/hook"}, "url"},
		{"fail/url/scheme", map[string]any{"url": "ftp://hooks.example.no/hook"}, "url"},
		{"fail/url/relative", map[string]any{"url": "/hook"}, "url"},
		{"fail/url/fragment", map[string]any{"url": "https://hooks.example.no/hook#x"}, "url"},
		{"fail/url/link-local", map[string]any{"url": "https://169.254.169.254/latest"}, "url"},
		{"fail/url/missing", map[string]any{"events": []string{store.EventAccessApproved}}, "url"},
		{"fail/url/too-long", map[string]any{"url": "https://hooks.example.no/" + strings.Repeat("a", records.MaxWebhookURL)}, "url"},
		{"fail/events/unknown", map[string]any{"url": "https://hooks.example.no/hook", "events": []string{store.EventAccessApproved, "access.granted"}}, "events[1]"},
		{"fail/events/twice", map[string]any{"url": "https://hooks.example.no/hook", "events": []string{store.EventAccessDenied, store.EventAccessDenied}}, "events[1]"},
		{"fail/events/type", map[string]any{"url": "https://hooks.example.no/hook", "events": "access.denied"}, "events"},
		{"fail/unknown-field", map[string]any{"url": "https://hooks.example.no/hook", "secret": "s"}, "secret"},
		{"fail/create/id", map[string]any{"url": "https://hooks.example.no/hook", "id": "6f1c2a4e-0000-4000-8000-000000000001"}, "id"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			wantField(t, e.do(consumer, "POST", "/webhooks", tc.body), tc.field)
			if tc.field != "id" {
				wantField(t, e.do(consumer, "PUT", "/webhooks/"+hook.ID, tc.body), tc.field)
			}
		})
	}
	t.Run("ok/url/loopback-forms", func(t *testing.T) {
		for _, u := range []string{"http://localhost:8080/hook", "http://[::1]/hook", "http://127.0.0.2/hook"} {
			var w store.Webhook
			e.must(other, "POST", "/webhooks", map[string]any{"url": u, "active": false}, http.StatusCreated, &w)
			if w.URL != u || w.Active {
				t.Errorf("%s: %+v", u, w)
			}
		}
	})
	e.must(consumer, "GET", "/webhooks/"+hook.ID, nil, http.StatusOK, &view)
	if !sameHook(view.Webhook, updated) {
		t.Fatalf("refused calls changed the webhook: %+v, want %+v", view.Webhook, updated)
	}

	// Another org's webhook is missing, exactly as one that does not exist.
	t.Run("fail/other-org", func(t *testing.T) {
		for _, id := range []string{hook.ID, "6f1c2a4e-0000-4000-8000-000000000001", "not-a-uuid"} {
			for _, m := range []struct {
				method string
				body   any
			}{{"GET", nil}, {"PUT", map[string]any{"url": "https://evil.example/"}}, {"DELETE", nil}} {
				wantProblem(t, e.do(other, m.method, "/webhooks/"+id, m.body), http.StatusNotFound)
			}
		}
		var theirs []store.Webhook
		e.must(other, "GET", "/webhooks?inactive=true", nil, http.StatusOK, &theirs)
		for _, w := range theirs {
			if w.Org != otherOrg {
				t.Errorf("the other org lists %+v", w)
			}
		}
		e.must(consumer, "GET", "/webhooks/"+hook.ID, nil, http.StatusOK, &view)
		if !sameHook(view.Webhook, updated) {
			t.Fatalf("the other org changed the webhook: %+v", view.Webhook)
		}
	})

	// Without portvakt:webhooks.write: 403 naming it.
	reader := e.certToken(e.mustClientID(consumer), consumerOrg, "", records.ScopesRead)
	wantProblem(t, e.do(reader, "GET", "/webhooks", nil), http.StatusForbidden, records.WebhooksWrite)
	wantProblem(t, e.do(reader, "POST", "/webhooks", map[string]any{"url": "https://hooks.example.no/x"}), http.StatusForbidden, records.WebhooksWrite)

	// Delete deactivates: hidden from the list, shown with inactive=true.
	e.must(consumer, "DELETE", "/webhooks/"+loop.ID, nil, http.StatusNoContent, nil)
	e.must(consumer, "GET", "/webhooks", nil, http.StatusOK, &list)
	if len(list) != 1 || list[0].ID != hook.ID {
		t.Fatalf("list after delete %+v", list)
	}
	e.must(consumer, "GET", "/webhooks?inactive=true", nil, http.StatusOK, &list)
	if len(list) != 2 {
		t.Fatalf("list with inactive %+v", list)
	}
	e.must(consumer, "GET", "/webhooks/"+loop.ID, nil, http.StatusOK, &view)
	if view.Active {
		t.Fatalf("deleted webhook %+v", view)
	}

	// At most 10 active webhooks: the 11th is 409, on create and on
	// reactivation; an inactive one may be registered.
	for i := 2; i <= manage.MaxWebhooks; i++ {
		e.must(consumer, "POST", "/webhooks", map[string]any{"url": fmt.Sprintf("https://hooks.example.no/%d", i)}, http.StatusCreated, nil)
	}
	t.Run("fail/eleventh/create", func(t *testing.T) {
		wantProblem(t, e.do(consumer, "POST", "/webhooks", map[string]any{"url": "https://hooks.example.no/11"}), http.StatusConflict, "10")
	})
	t.Run("fail/eleventh/reactivate", func(t *testing.T) {
		wantProblem(t, e.do(consumer, "PUT", "/webhooks/"+loop.ID, map[string]any{"url": loop.URL, "active": true}), http.StatusConflict, "10")
	})
	t.Run("ok/eleventh/inactive", func(t *testing.T) {
		e.must(consumer, "POST", "/webhooks", map[string]any{"url": "https://hooks.example.no/11", "active": false}, http.StatusCreated, nil)
	})
	t.Run("ok/other-org-has-room", func(t *testing.T) {
		e.must(other, "POST", "/webhooks", map[string]any{"url": "https://hooks.other.example/"}, http.StatusCreated, nil)
	})
	e.must(consumer, "GET", "/webhooks", nil, http.StatusOK, &list)
	if len(list) != manage.MaxWebhooks {
		t.Fatalf("%d active webhooks, want %d", len(list), manage.MaxWebhooks)
	}
	t.Run("ok/room-after-delete", func(t *testing.T) {
		e.must(consumer, "DELETE", "/webhooks/"+hook.ID, nil, http.StatusNoContent, nil)
		e.must(consumer, "PUT", "/webhooks/"+loop.ID, map[string]any{"url": loop.URL, "active": true}, http.StatusOK, nil)
		wantProblem(t, e.do(consumer, "POST", "/webhooks", map[string]any{"url": "https://hooks.example.no/12"}), http.StatusConflict)
	})

	// Every change is an audit event of the org, and only of the org.
	var page struct {
		Events []struct {
			Action, Target string
			Orgs           []string `json:"orgs"`
		} `json:"events"`
	}
	e.must(consumer, "GET", "/audit?limit=500", nil, http.StatusOK, &page)
	n := 0
	for _, ev := range page.Events {
		if strings.HasPrefix(ev.Action, "webhook.") {
			n++
			if !slices.Equal(ev.Orgs, []string{consumerOrg}) {
				t.Errorf("%s %s: orgs %v", ev.Action, ev.Target, ev.Orgs)
			}
		}
	}
	// 12 created, 2 deactivated, 2 updated (one a reactivation).
	if want := 2 + (manage.MaxWebhooks - 1) + 1 + 1 + 3; n != want {
		t.Errorf("%d webhook audit events, want %d", n, want)
	}
}

// mustClientID is the client_id of a token.
func (e *env) mustClientID(tok string) string {
	e.t.Helper()
	id, ok := tokenClaims(e.t, tok)["client_id"].(string)
	if !ok {
		e.t.Fatalf("token without client_id")
	}
	return id
}

// sameHook compares two webhooks as the API shows them.
func sameHook(a, b store.Webhook) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}
