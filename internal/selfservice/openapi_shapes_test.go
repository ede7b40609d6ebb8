package selfservice_test

import (
	"encoding/json"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/portvakt/portvakt/internal/events"
	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/store"
)

// shapes checks answers of the running API against the OpenAPI document it
// serves: the status must be documented for the operation, and the body
// must match the documented schema of that status and media type.
type shapes struct {
	t   *testing.T
	e   *env
	doc *openapi3.T
}

func newShapes(t *testing.T, e *env) *shapes {
	t.Helper()
	r := e.must("", "GET", "/openapi.json", nil, http.StatusOK, nil)
	doc, err := openapi3.NewLoader().LoadFromData(r.body)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return &shapes{t: t, e: e, doc: doc}
}

// call makes the request to path (concrete) and checks the answer against
// the operation at template; it returns the answer.
func (s *shapes) call(tok, method, template, path string, body any, want int) reply {
	s.t.Helper()
	r := s.e.do(tok, method, path, body)
	if r.status != want {
		s.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, want, r.body)
	}
	item := s.doc.Paths.Value(template)
	if item == nil || item.GetOperation(method) == nil {
		s.t.Fatalf("%s %s is not documented", method, template)
	}
	resp := item.GetOperation(method).Responses.Status(r.status)
	if resp == nil || resp.Value == nil {
		s.t.Errorf("%s %s: status %d is not documented", method, template, r.status)
		return r
	}
	if len(r.body) == 0 {
		if len(resp.Value.Content) > 0 {
			s.t.Errorf("%s %s: %d without a body, documented with one", method, template, r.status)
		}
		return r
	}
	ct, _, _ := mime.ParseMediaType(r.header.Get("Content-Type"))
	mt := resp.Value.Content.Get(ct)
	if mt == nil || mt.Schema == nil {
		s.t.Errorf("%s %s: %d as %s is not documented", method, template, r.status, ct)
		return r
	}
	var v any
	if err := json.Unmarshal(r.body, &v); err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	if err := mt.Schema.Value.VisitJSON(v, openapi3.EnableJSONSchema2020(), openapi3.VisitAsResponse(), openapi3.MultiErrors()); err != nil {
		s.t.Errorf("%s %s: %d does not match the documented schema: %v\n%s", method, template, r.status, err, r.body)
	}
	return r
}

// TestOpenAPIShapesOfAccessAndWebhooks: the answers of the access-request
// and webhook operations, successes and refusals, including a webhook's
// delivery attempts (one delivered, one failing), are what the document
// says.
func TestOpenAPIShapesOfAccessAndWebhooks(t *testing.T) { eachEngine(t, testOpenAPIShapes) }

func testOpenAPIShapes(t *testing.T, eng engine) {
	w := newRequests(t, eng)
	s := newShapes(t, w.env)
	const (
		requests = "/scopes/access/requests"
		byOrg    = "/scopes/access/{org}"
	)

	// Webhooks: one at a receiver, one at a closed port on loopback.
	rcv := newHookReceiver(t, w.issuer)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	var good, bad store.Webhook
	r := s.call(w.consumer, "POST", "/webhooks", "/webhooks", map[string]any{"url": rcv.URL}, http.StatusCreated)
	if err := json.Unmarshal(r.body, &good); err != nil {
		t.Fatal(err)
	}
	r = s.call(w.consumer, "POST", "/webhooks", "/webhooks", map[string]any{"url": closed.URL + "/hook", "events": []string{store.EventAccessRequested}}, http.StatusCreated)
	if err := json.Unmarshal(r.body, &bad); err != nil {
		t.Fatal(err)
	}

	// Access requests and decisions.
	s.call(w.consumer, "POST", requests, requests, map[string]string{"scope": "acme:api", "reason": "please"}, http.StatusCreated)
	s.call(w.consumer, "POST", requests, requests, map[string]string{"scope": "acme:api"}, http.StatusConflict)
	s.call(w.consumer, "POST", requests, requests, map[string]string{"scope": "acme:secret"}, http.StatusNotFound)
	s.call(w.consumer, "POST", requests, requests, map[string]string{"scope": "acme:api", "reason": "\x07"}, http.StatusBadRequest)
	s.call(w.admin, "POST", requests, requests, map[string]string{"scope": "acme:api"}, http.StatusForbidden)
	s.call("", "POST", requests, requests, map[string]string{"scope": "acme:api"}, http.StatusUnauthorized)
	s.call(w.provider, "GET", "/scopes/access", "/scopes/access?state=REQUESTED", nil, http.StatusOK)
	s.call(w.provider, "GET", "/scopes/access", "/scopes/access?scope=acme:api&state=REQUESTED,APPROVED", nil, http.StatusOK)
	s.call(w.provider, "GET", "/scopes/access", "/scopes/access?state=NOPE", nil, http.StatusBadRequest)
	s.call(w.provider, "DELETE", byOrg, "/scopes/access/"+consumerOrg+"?scope=acme:api", map[string]string{"reason": "no"}, http.StatusNoContent)
	s.call(w.consumer, "GET", "/scopes/access/all", "/scopes/access/all?state=DENIED", nil, http.StatusOK)
	s.call(w.consumer, "DELETE", requests, requests+"?scope=acme:api", nil, http.StatusConflict)
	s.call(w.consumer, "POST", requests, requests, map[string]string{"scope": "acme:api"}, http.StatusCreated)
	s.call(w.provider, "PUT", byOrg, "/scopes/access/"+consumerOrg+"?scope=acme:api", map[string]string{"reason": "ok"}, http.StatusOK)
	s.call(w.provider, "PUT", byOrg, "/scopes/access/"+vendorOrg+"?scope=acme:api", nil, http.StatusOK)
	s.call(w.consumer, "POST", requests, requests, map[string]string{"scope": "acme:billing"}, http.StatusCreated)
	s.call(w.consumer, "DELETE", requests, requests+"?scope=acme:billing", nil, http.StatusNoContent)
	s.call(w.other, "DELETE", requests, requests+"?scope=acme:billing", nil, http.StatusNotFound)

	// Deliver: the good webhook acknowledges, the bad one fails and waits
	// for its next attempt.
	worker, err := events.New(events.Config{Issuer: w.issuer, Log: slog.New(slog.DiscardHandler)}, w.db, w.keys)
	if err != nil {
		t.Fatal(err)
	}
	deliverAll(t, worker)
	if len(rcv.got()) == 0 {
		t.Fatal("nothing delivered")
	}
	var view webhookView
	r = s.call(w.consumer, "GET", "/webhooks/{id}", "/webhooks/"+good.ID, nil, http.StatusOK)
	if err := json.Unmarshal(r.body, &view); err != nil || len(view.Deliveries) == 0 || view.Deliveries[0].State != store.DeliveryDelivered {
		t.Fatalf("deliveries %+v (%v)", view.Deliveries, err)
	}
	r = s.call(w.consumer, "GET", "/webhooks/{id}", "/webhooks/"+bad.ID, nil, http.StatusOK)
	view = webhookView{} // decoding into the old slice would keep fields the answer leaves out
	if err := json.Unmarshal(r.body, &view); err != nil || len(view.Deliveries) != 1 {
		t.Fatalf("deliveries %+v (%v)", view.Deliveries, err)
	}
	if d := view.Deliveries[0]; d.State != store.DeliveryPending || d.Status != 0 || d.Error == "" || d.NextAttempt.IsZero() {
		t.Fatalf("failed attempt %+v", d)
	}

	s.call(w.consumer, "GET", "/webhooks", "/webhooks?inactive=true", nil, http.StatusOK)
	s.call(w.consumer, "PUT", "/webhooks/{id}", "/webhooks/"+bad.ID, map[string]any{"url": closed.URL + "/v2", "events": nil}, http.StatusOK)
	s.call(w.consumer, "PUT", "/webhooks/{id}", "/webhooks/"+bad.ID, map[string]any{"url": "http://hooks.example.no/"}, http.StatusBadRequest)
	s.call(w.other, "GET", "/webhooks/{id}", "/webhooks/"+good.ID, nil, http.StatusNotFound)
	s.call(w.consumer, "DELETE", "/webhooks/{id}", "/webhooks/"+bad.ID, nil, http.StatusNoContent)
	s.call(w.provider, "GET", "/webhooks", "/webhooks", nil, http.StatusOK)
}

// TestOpenAPIShapesOfMembers: the answers of the member operations,
// successes and refusals, are what the document says.
func TestOpenAPIShapesOfMembers(t *testing.T) { eachEngine(t, testOpenAPIShapesOfMembers) }

func testOpenAPIShapesOfMembers(t *testing.T, eng engine) {
	e := newEnv(t, eng)
	s := newShapes(t, e)
	admin := e.adminToken()
	client, consumer := e.onboard(admin, consumerOrg)
	_, other := e.onboard(admin, otherOrg)
	const one = "/members/{subject}"
	reader := e.certToken(client, consumerOrg, "", records.ScopesRead)

	s.call(consumer, "PUT", one, memberPath("kari@idp.example"), map[string]any{"roles": []string{records.MembersWrite}}, http.StatusOK)
	s.call(consumer, "PUT", one, memberPath("ola"), map[string]any{"roles": []string{}}, http.StatusOK)
	s.call(consumer, "PUT", one, memberPath("ola"), map[string]any{"roles": []string{"nope"}}, http.StatusBadRequest)
	s.call(consumer, "PUT", one, memberPath("kari@idp.example"), map[string]any{"roles": []string{}}, http.StatusConflict)
	s.call(reader, "PUT", one, memberPath("ola"), map[string]any{"roles": []string{}}, http.StatusForbidden)
	s.call("", "PUT", one, memberPath("ola"), map[string]any{"roles": []string{}}, http.StatusUnauthorized)
	s.call(consumer, "GET", one, memberPath("kari@idp.example"), nil, http.StatusOK)
	s.call(other, "GET", one, memberPath("kari@idp.example"), nil, http.StatusNotFound)
	s.call(consumer, "GET", "/members", "/members", nil, http.StatusOK)
	s.call(consumer, "GET", "/members", "/members?limit=0", nil, http.StatusBadRequest)
	s.call(reader, "GET", "/members", "/members", nil, http.StatusForbidden)
	s.call(consumer, "DELETE", one, memberPath("kari@idp.example"), nil, http.StatusConflict)
	s.call(consumer, "DELETE", one, memberPath("ola"), nil, http.StatusNoContent)
	s.call(consumer, "DELETE", one, memberPath("ola"), nil, http.StatusNotFound)

	// The audit trail shows the member events with the schema's fields.
	s.call(consumer, "GET", "/audit", "/audit?action=member.create", nil, http.StatusOK)
}
