package selfservice_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/portvakt/portvakt/internal/events"
	"github.com/portvakt/portvakt/internal/store"
)

// setEvent is one event a receiver accepted: a SET that verified.
type setEvent struct {
	JTI, Name, ActorOrg string
	Record              store.Access
}

// hookReceiver is a webhook endpoint on 127.0.0.1 that verifies every SET
// it is sent as a receiver elsewhere would: against the server's /jwk,
// fetched over HTTP (signature, kid, alg as the JWK pins it), typ
// secevent+jwt, iss, aud = its own URL, iat, jti and one event under the
// event URI prefix. It acknowledges every valid SET with 202.
type hookReceiver struct {
	t      *testing.T
	issuer string
	URL    string

	mu    sync.Mutex
	valid []setEvent
	bad   []string
}

func newHookReceiver(t *testing.T, issuer string) *hookReceiver {
	t.Helper()
	r := &hookReceiver{t: t, issuer: issuer}
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(srv.Close)
	r.URL = srv.URL + "/hook"
	return r
}

func (r *hookReceiver) serve(w http.ResponseWriter, req *http.Request) {
	ev, err := r.verify(req)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.bad = append(r.bad, err.Error())
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = fmt.Fprintf(w, `{"err":"invalid_request","description":%q}`, err.Error())
		return
	}
	r.valid = append(r.valid, ev)
	w.WriteHeader(http.StatusAccepted)
}

// jwks fetches the server's published keys, as a receiver does.
func (r *hookReceiver) jwks(req *http.Request) (jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	get, err := http.NewRequestWithContext(req.Context(), "GET", r.issuer+"jwk", nil)
	if err != nil {
		return set, err
	}
	resp, err := http.DefaultClient.Do(get)
	if err != nil {
		return set, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return set, fmt.Errorf("GET /jwk: %d", resp.StatusCode)
	}
	err = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&set)
	return set, err
}

func (r *hookReceiver) verify(req *http.Request) (setEvent, error) {
	if req.Method != http.MethodPost || req.URL.Path != "/hook" {
		return setEvent{}, fmt.Errorf("%s %s", req.Method, req.URL.Path)
	}
	if ct, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type")); ct != events.ContentType {
		return setEvent{}, fmt.Errorf("Content-Type %q", req.Header.Get("Content-Type"))
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, 64<<10))
	if err != nil {
		return setEvent{}, err
	}
	set, err := r.jwks(req)
	if err != nil {
		return setEvent{}, err
	}
	var claims struct {
		jwt.RegisteredClaims
		Events map[string]struct {
			ActorOrg string          `json:"actor_org"`
			Record   json.RawMessage `json:"record"`
		} `json:"events"`
	}
	tok, err := jwt.ParseWithClaims(string(body), &claims, func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		ks := set.Key(kid)
		if len(ks) != 1 {
			return nil, fmt.Errorf("kid %q is not in /jwk", kid)
		}
		if ks[0].Algorithm != tok.Method.Alg() {
			return nil, fmt.Errorf("alg %s, but /jwk pins the key to %s", tok.Method.Alg(), ks[0].Algorithm)
		}
		return ks[0].Key, nil
	}, jwt.WithValidMethods([]string{"RS256", "PS256", "ES256", "ES384"}),
		jwt.WithIssuer(r.issuer), jwt.WithAudience(r.URL), jwt.WithIssuedAt())
	if err != nil {
		return setEvent{}, fmt.Errorf("SET: %w", err)
	}
	if typ, _ := tok.Header["typ"].(string); typ != events.TokenType {
		return setEvent{}, fmt.Errorf("typ %q", typ)
	}
	if claims.ID == "" || claims.IssuedAt == nil {
		return setEvent{}, fmt.Errorf("jti %q, iat %v", claims.ID, claims.IssuedAt)
	}
	if len(claims.Events) != 1 {
		return setEvent{}, fmt.Errorf("%d events in one SET", len(claims.Events))
	}
	for uri, ev := range claims.Events {
		name, ok := strings.CutPrefix(uri, events.EventURIPrefix)
		if !ok || !slices.Contains(store.EventNames, name) {
			return setEvent{}, fmt.Errorf("event %q", uri)
		}
		out := setEvent{JTI: claims.ID, Name: name, ActorOrg: ev.ActorOrg}
		if err := json.Unmarshal(ev.Record, &out.Record); err != nil {
			return setEvent{}, fmt.Errorf("record %s: %w", ev.Record, err)
		}
		return out, nil
	}
	return setEvent{}, errors.New("no event")
}

// got is what the receiver accepted so far; it fails the test for every
// request that did not verify.
func (r *hookReceiver) got() []setEvent {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.bad {
		r.t.Errorf("%s got an invalid delivery: %s", r.URL, b)
	}
	return slices.Clone(r.valid)
}

// deliverAll runs the worker until nothing is due: each round sends each
// webhook its oldest pending event. It returns how many were sent.
func deliverAll(t *testing.T, w *events.Worker) int {
	t.Helper()
	total := 0
	for range 100 {
		n, err := w.DeliverDue(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return total
		}
		total += n
	}
	t.Fatal("deliveries still due after 100 rounds")
	return total
}

// TestWebhooksEndToEnd drives the access-request story through the API with
// webhooks registered at real receivers on loopback, and a delivery worker
// over the server's store signing with its key: every event of the story
// reaches the consumer's and the provider's webhooks once, in order, as a
// SET that verifies against /jwk; orgs not concerned get nothing; a refused
// request sends nothing.
func TestWebhooksEndToEnd(t *testing.T) { eachEngine(t, testWebhooksEndToEnd) }

func testWebhooksEndToEnd(t *testing.T, eng engine) {
	w := newRequests(t, eng)
	worker, err := events.New(events.Config{Issuer: w.issuer, Log: slog.New(slog.DiscardHandler)}, w.db, w.keys)
	if err != nil {
		t.Fatal(err)
	}

	hooks := map[string]*hookReceiver{}
	ids := map[string]string{}
	for _, h := range []struct {
		name, tok string
		events    []string
	}{
		{"consumer", w.consumer, nil},
		{"provider", w.provider, nil},
		{"consumer-approvals", w.consumer, []string{store.EventAccessApproved}},
		{"vendor", w.vendor, nil},
		{"other", w.other, nil},
	} {
		hooks[h.name] = newHookReceiver(t, w.issuer)
		var hook store.Webhook
		w.must(h.tok, "POST", "/webhooks", map[string]any{"url": hooks[h.name].URL, "events": h.events}, http.StatusCreated, &hook)
		ids[h.name] = hook.ID
	}

	// The story, with the record each step leaves, as the API shows it.
	type step struct {
		name, actor string
		record      store.Access
	}
	var story []step
	ask := func(scope, reason string) {
		t.Helper()
		var a store.Access
		w.must(w.consumer, "POST", "/scopes/access/requests", map[string]string{"scope": scope, "reason": reason}, http.StatusCreated, &a)
		story = append(story, step{store.EventAccessRequested, consumerOrg, a})
	}
	ask("acme:api", "we invoice through ACME")
	// A first delivery mid-story: the rest follow it, in order.
	if n := deliverAll(t, worker); n != 2 {
		t.Fatalf("%d deliveries of the first event, want 2", n)
	}
	w.must(w.provider, "DELETE", "/scopes/access/"+consumerOrg+"?scope=acme:api", map[string]string{"reason": "sign first"}, http.StatusNoContent, nil)
	story = append(story, step{store.EventAccessDenied, providerOrg, w.wantRow("acme:api", store.AccessDenied, "sign first")})
	ask("acme:api", "signed")
	var approved store.Access
	w.must(w.provider, "PUT", "/scopes/access/"+consumerOrg+"?scope=acme:api", map[string]string{"reason": "welcome"}, http.StatusOK, &approved)
	story = append(story, step{store.EventAccessApproved, providerOrg, approved})
	ask("acme:billing", "")
	w.must(w.consumer, "DELETE", "/scopes/access/requests?scope=acme:billing", nil, http.StatusNoContent, nil)
	story = append(story, step{store.EventAccessWithdrawn, consumerOrg, w.wantRow("acme:billing", store.AccessWithdrawn, "")})
	// The approval went to a third webhook as well.
	if n := deliverAll(t, worker); n != 2*(len(story)-1)+1 {
		t.Fatalf("%d deliveries, want %d", n, 2*(len(story)-1)+1)
	}

	// Refused calls change nothing and tell no one.
	wantProblem(t, w.ask(w.consumer, "acme:api", "again"), http.StatusConflict)
	wantProblem(t, w.withdraw(w.consumer, "acme:api"), http.StatusConflict)
	wantProblem(t, w.ask(w.consumer, "acme:open", ""), http.StatusConflict)
	wantProblem(t, w.ask(w.consumer, "acme:secret", ""), http.StatusNotFound)
	wantProblem(t, w.do(w.provider, "DELETE", "/scopes/access/"+otherOrg+"?scope=acme:api", nil), http.StatusNotFound)
	if n := deliverAll(t, worker); n != 0 {
		t.Fatalf("refused calls sent %d events", n)
	}

	// Each of the two orgs' webhooks got every event once, in order, with
	// the record as the API showed it; the same event has the same jti at
	// both, and every event its own.
	got := map[string][]setEvent{}
	for name, h := range hooks {
		got[name] = h.got()
	}
	jtis := map[string]bool{}
	for _, name := range []string{"consumer", "provider"} {
		if len(got[name]) != len(story) {
			t.Errorf("%s's webhook got %d events, want %d: %+v", name, len(got[name]), len(story), got[name])
			continue
		}
		for i, s := range story {
			g := got[name][i]
			if g.Name != s.name || g.ActorOrg != s.actor || g.Record != s.record {
				t.Errorf("%s's event %d: %s by %s, %+v\nwant %s by %s, %+v", name, i, g.Name, g.ActorOrg, g.Record, s.name, s.actor, s.record)
			}
			if g.JTI != got["consumer"][i].JTI {
				t.Errorf("event %d: jti %s at the provider, %s at the consumer", i, g.JTI, got["consumer"][i].JTI)
			}
			jtis[g.JTI] = true
		}
	}
	if len(jtis) != len(story) {
		t.Errorf("%d distinct jtis for %d events", len(jtis), len(story))
	}
	if a := got["consumer-approvals"]; len(a) != 1 || a[0].Name != store.EventAccessApproved || a[0].JTI != got["consumer"][3].JTI {
		t.Errorf("the approvals webhook got %+v", a)
	}
	for _, name := range []string{"vendor", "other"} {
		if len(got[name]) != 0 {
			t.Errorf("the %s, not concerned, got %+v", name, got[name])
		}
	}

	// GET /webhooks/{id} shows the attempts, newest first, each delivered.
	var view webhookView
	w.must(w.provider, "GET", "/webhooks/"+ids["provider"], nil, http.StatusOK, &view)
	if len(view.Deliveries) != len(story) {
		t.Fatalf("%d delivery attempts shown, want %d: %+v", len(view.Deliveries), len(story), view.Deliveries)
	}
	for i, d := range view.Deliveries {
		s := got["provider"][len(story)-1-i]
		if d.WebhookID != ids["provider"] || d.EventJTI != s.JTI || d.EventName != s.Name || d.Attempt != 1 ||
			d.State != store.DeliveryDelivered || d.Status != http.StatusAccepted || d.Error != "" {
			t.Errorf("attempt %d: %+v, want event %s (%s) delivered", i, d, s.Name, s.JTI)
		}
	}
	// Another org's webhook, with its deliveries, stays out of sight.
	wantProblem(t, w.do(w.consumer, "GET", "/webhooks/"+ids["provider"], nil), http.StatusNotFound)
}
