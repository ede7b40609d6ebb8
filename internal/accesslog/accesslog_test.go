package accesslog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/accesslog"
)

func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestOneLinePerRequestAtTheLevelOfItsStatus(t *testing.T) {
	for _, tc := range []struct {
		name      string
		minLevel  slog.Level
		status    int
		wantLevel string // "" = no line
	}{
		{"ok/info", slog.LevelInfo, http.StatusOK, "INFO"},
		{"ok/4xx-is-info", slog.LevelInfo, http.StatusBadRequest, "INFO"},
		{"ok/5xx-is-error", slog.LevelInfo, http.StatusInternalServerError, "ERROR"},
		{"ok/warn-drops-info", slog.LevelWarn, http.StatusOK, ""},
		{"ok/warn-keeps-5xx", slog.LevelWarn, http.StatusServiceUnavailable, "ERROR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: tc.minLevel}))
			// No Observer: nil observes nothing, and the request id is random.
			h := accesslog.Middleware(accesslog.Config{Log: log}, "/token", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				e := accesslog.From(r.Context())
				e.SetClient("client-1", "310000035", "")
				if tc.status >= 400 {
					e.SetError("invalid_grant", nil)
				}
				w.WriteHeader(tc.status)
			}))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/token", nil))
			got := lines(t, &buf)
			if tc.wantLevel == "" {
				if len(got) != 0 {
					t.Fatalf("want no line below the minimum level, got %v", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("want one line, got %d: %s", len(got), buf.String())
			}
			m := got[0]
			for k, want := range map[string]any{
				"level": tc.wantLevel, "msg": "request", "route": "/token", "method": "POST",
				"status": float64(tc.status), "client_id": "client-1", "consumer": "310000035",
				"request_id": rec.Header().Get("X-Request-Id"),
			} {
				if m[k] != want {
					t.Errorf("%s = %v, want %v (line %v)", k, m[k], want, m)
				}
			}
			if _, ok := m["source"]; ok {
				t.Errorf("the access line carries a source location: %v", m)
			}
			if _, ok := m["time"].(string); !ok {
				t.Errorf("the access line has no time: %v", m)
			}
		})
	}
}

// traceObserver names every request's trace after its header and records
// the outcomes.
type traceObserver struct{ got []string }

type traceKey struct{}

func (o *traceObserver) TraceID(ctx context.Context) string {
	id, _ := ctx.Value(traceKey{}).(string)
	return id
}

func (o *traceObserver) Request(_ context.Context, route, method string, status int, took time.Duration) {
	o.got = append(o.got, fmt.Sprintf("%s %s %d %v", method, route, status, took))
}

var _ accesslog.Observer = (*traceObserver)(nil)

func TestObserverNamesTheRequestAndIsToldItsOutcome(t *testing.T) {
	var buf bytes.Buffer
	obs := &traceObserver{}
	start := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	calls := 0
	// Each reading of the clock moves it 1.5 ms on.
	now := func() time.Time { calls++; return start.Add(time.Duration(calls) * 1500 * time.Microsecond) }
	h := accesslog.Middleware(accesslog.Config{Log: slog.New(slog.NewJSONHandler(&buf, nil)), Observer: obs, Now: now}, "/jwk",
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	for _, tc := range []struct{ name, trace string }{
		{"ok/traced", "4bf92f3577b34da6a3ce929d0e0e4736"},
		{"ok/not-traced", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			buf.Reset()
			obs.got = nil
			req := httptest.NewRequest(http.MethodGet, "/jwk", nil)
			if tc.trace != "" {
				req = req.WithContext(context.WithValue(req.Context(), traceKey{}, tc.trace))
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			id := rec.Header().Get("X-Request-Id")
			if tc.trace != "" && id != tc.trace {
				t.Errorf("request id %q, want the trace id %q", id, tc.trace)
			}
			if tc.trace == "" && len(id) != 32 {
				t.Errorf("request id %q, want a random one", id)
			}
			if fmt.Sprint(obs.got) != "[GET /jwk 418 1.5ms]" {
				t.Errorf("observer told %v, want one GET /jwk 418 of 1.5ms on the injected clock", obs.got)
			}
			l := lines(t, &buf)
			if len(l) != 1 || l[0]["duration_ms"] != 1.5 || l[0]["request_id"] != id {
				t.Errorf("access line %v", l)
			}
		})
	}
}

// A handler below the middleware's route (the self-service API's mux) names
// its own pattern, and the access line and the observer both use it.
func TestHandlerNarrowsTheRoute(t *testing.T) {
	var buf bytes.Buffer
	obs := &traceObserver{}
	now := func() time.Time { return time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC) }
	h := accesslog.Middleware(accesslog.Config{Log: slog.New(slog.NewJSONHandler(&buf, nil)), Observer: obs, Now: now}, "/api/v1",
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			accesslog.From(r.Context()).SetRoute("/api/v1/clients/{id}")
			w.WriteHeader(http.StatusNotFound)
		}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/api/v1/clients/0b0e0f", nil))
	if fmt.Sprint(obs.got) != "[GET /api/v1/clients/{id} 404 0s]" {
		t.Errorf("observer told %v, want the handler's pattern", obs.got)
	}
	if l := lines(t, &buf); len(l) != 1 || l[0]["route"] != "/api/v1/clients/{id}" {
		t.Errorf("access line %v, want route /api/v1/clients/{id}", l)
	}
}
