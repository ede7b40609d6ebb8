package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/server"
)

// routeObserver records the routes it wrapped and the requests it was told
// of; its wrapper marks every response with the route.
type routeObserver struct {
	mu       sync.Mutex
	routes   []string
	requests []string
}

func (o *routeObserver) TraceID(context.Context) string { return "" }

func (o *routeObserver) Request(_ context.Context, route, method string, status int, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.requests = append(o.requests, fmt.Sprintf("%s %s %d", method, route, status))
}

func (o *routeObserver) Route(route string, h http.Handler) http.Handler {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.routes = append(o.routes, route)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Route", route)
		h.ServeHTTP(w, r)
	})
}

var _ server.Observer = (*routeObserver)(nil)

func get(t *testing.T, h http.Handler, path string) *http.Response {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestObserverWrapsEveryRouteAndSeesEveryRequest(t *testing.T) {
	jwks := func() []byte { return []byte(`{"keys":[]}`) }
	token := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadRequest) })
	log := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		name string
		obs  *routeObserver // nil: no Observer
	}{
		{"ok/observed", &routeObserver{}},
		{"ok/nil-observes-nothing", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := server.Public{Issuer: "http://127.0.0.1/", Token: token, JWKS: jwks, Log: log}
			o := server.Ops{}
			if tc.obs != nil {
				p.Observer, o.Observer = tc.obs, tc.obs
			}
			pub, err := p.Handler()
			if err != nil {
				t.Fatal(err)
			}
			ops := o.Handler()
			if r := get(t, pub, "/jwk"); r.StatusCode != 200 || (tc.obs != nil) != (r.Header.Get("X-Route") == "/jwk") {
				t.Fatalf("/jwk: %d, X-Route %q", r.StatusCode, r.Header.Get("X-Route"))
			}
			if r := get(t, pub, "/token"); r.StatusCode != http.StatusBadRequest {
				t.Fatalf("/token: %d", r.StatusCode)
			}
			if r := get(t, ops, "/healthz"); r.StatusCode != 200 || (tc.obs != nil) != (r.Header.Get("X-Route") == "ops") {
				t.Fatalf("/healthz: %d, X-Route %q", r.StatusCode, r.Header.Get("X-Route"))
			}
			if tc.obs == nil {
				return
			}
			tc.obs.mu.Lock()
			defer tc.obs.mu.Unlock()
			for _, want := range []string{"/token", "/jwk", "/.well-known/oauth-authorization-server", "ops"} {
				if !slices.Contains(tc.obs.routes, want) {
					t.Errorf("route %s not wrapped: %v", want, tc.obs.routes)
				}
			}
			// The ops listener has no access log: only the public requests.
			if fmt.Sprint(tc.obs.requests) != "[GET /jwk 200 GET /token 400]" {
				t.Errorf("requests %v", tc.obs.requests)
			}
		})
	}
}
