package accesslog_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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
			h := accesslog.Middleware(log, "/token", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
