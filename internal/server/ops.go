package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"time"
)

// Ops are the ops listener's parts: never served on the public port.
type Ops struct {
	// Checks must all pass for /readyz (store reachable, migrations current,
	// signing key loaded ...), by name.
	Checks map[string]func(ctx context.Context) error
	// Metrics serves /metrics when set.
	Metrics http.Handler
	// Pprof mounts Go's profiler under /debug/pprof/ (off by default: it
	// exposes internals, and the ops listener must stay private).
	Pprof bool
	// Observer traces the ops requests (Route, named "ops"); nil observes
	// nothing.
	Observer Observer
}

// Handler builds the ops mux.
func (o Ops) Handler() http.Handler {
	if o.Observer == nil {
		o.Observer = nopObserver{}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		out := map[string]string{}
		status := http.StatusOK
		for name, check := range o.Checks {
			if err := check(ctx); err != nil {
				out[name] = err.Error()
				status = http.StatusServiceUnavailable
			} else {
				out[name] = "ok"
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"ready": status == http.StatusOK, "checks": out})
	})
	if o.Metrics != nil {
		mux.Handle("GET /metrics", o.Metrics)
	}
	if o.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return o.Observer.Route("ops", mux)
}
