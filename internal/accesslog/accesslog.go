package accesslog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Entry collects what one request did. Handlers fill it through Set*; the
// middleware writes it once when the request ends.
type Entry struct {
	RequestID string
	Route     string

	mu        sync.Mutex
	clientID  string
	consumer  string
	supplier  string
	errorCode string
	cause     error
	attrs     []slog.Attr
}

type ctxKey struct{}

// From returns the request's entry, or a throwaway one outside the middleware.
func From(ctx context.Context) *Entry {
	if e, ok := ctx.Value(ctxKey{}).(*Entry); ok {
		return e
	}
	return &Entry{RequestID: newID()}
}

// With puts e into ctx (for tests and callers outside the middleware).
func With(ctx context.Context, e *Entry) context.Context { return context.WithValue(ctx, ctxKey{}, e) }

// SetClient records who the request was for.
func (e *Entry) SetClient(clientID, consumer, supplier string) {
	e.mu.Lock()
	e.clientID, e.consumer, e.supplier = clientID, consumer, supplier
	e.mu.Unlock()
}

// SetRoute narrows the request's route to a pattern below the one the
// middleware was given (the self-service API's own routes, such as
// /api/v1/clients/{id}): never a raw path, so labels stay bounded.
func (e *Entry) SetRoute(route string) {
	e.mu.Lock()
	e.Route = route
	e.mu.Unlock()
}

// SetError records the OAuth error code and the private cause.
func (e *Entry) SetError(code string, cause error) {
	e.mu.Lock()
	e.errorCode, e.cause = code, cause
	e.mu.Unlock()
}

// ErrorCode is the recorded OAuth error code ("" when none).
func (e *Entry) ErrorCode() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.errorCode
}

// Add records extra attributes for the access line.
func (e *Entry) Add(attrs ...slog.Attr) {
	e.mu.Lock()
	e.attrs = append(e.attrs, attrs...)
	e.mu.Unlock()
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Config configures Middleware. Every field works at its zero value.
type Config struct {
	// Log receives the access lines; default slog.Default().
	Log *slog.Logger
	// Observer is told every request's outcome; nil observes nothing.
	Observer Observer
	// Now is the clock that times requests; default time.Now.
	Now func() time.Time
}

// Observer is told what the access log sees (metrics and traces). Its
// methods run on the request's path and must be cheap.
type Observer interface {
	// TraceID returns the id of the trace ctx is part of, or "" when the
	// request is not traced: a traced request's id is its trace id, so that
	// logs and traces join.
	TraceID(ctx context.Context) string
	// Request is told one request's outcome.
	Request(ctx context.Context, route, method string, status int, took time.Duration)
}

// nopObserver observes nothing.
type nopObserver struct{}

func (nopObserver) TraceID(context.Context) string                              { return "" }
func (nopObserver) Request(context.Context, string, string, int, time.Duration) {}

// Middleware gives every request an entry and writes exactly one access line
// when it ends. The request id is the trace id when the Observer names one
// (the request carries a sampled or remote span), so logs and traces join.
// route is the pattern (never the raw path with ids in it).
func Middleware(c Config, route string, next http.Handler) http.Handler {
	log, obs, now := c.Log, c.Observer, c.Now
	if log == nil {
		log = slog.Default()
	}
	if obs == nil {
		obs = nopObserver{}
	}
	if now == nil {
		now = time.Now
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := now()
		e := &Entry{Route: route}
		if id := obs.TraceID(r.Context()); id != "" {
			e.RequestID = id
		} else {
			e.RequestID = newID()
		}
		sw := &statusWriter{ResponseWriter: w}
		sw.Header().Set("X-Request-Id", e.RequestID)
		next.ServeHTTP(sw, r.WithContext(With(r.Context(), e)))
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		end := now()
		took := end.Sub(start)
		e.mu.Lock()
		route := e.Route
		attrs := make([]slog.Attr, 0, 12+len(e.attrs))
		attrs = append(attrs,
			slog.String("method", r.Method),
			slog.String("route", route),
			slog.Int("status", sw.status),
			slog.Float64("duration_ms", float64(took.Microseconds())/1000),
			slog.String("request_id", e.RequestID),
			slog.String("remote", r.RemoteAddr),
		)
		if e.clientID != "" {
			attrs = append(attrs, slog.String("client_id", e.clientID))
		}
		if e.consumer != "" {
			attrs = append(attrs, slog.String("consumer", e.consumer))
		}
		if e.supplier != "" {
			attrs = append(attrs, slog.String("supplier", e.supplier))
		}
		if e.errorCode != "" {
			attrs = append(attrs, slog.String("error", e.errorCode))
		}
		if e.cause != nil {
			attrs = append(attrs, slog.String("cause", e.cause.Error()))
		}
		attrs = append(attrs, e.attrs...)
		e.mu.Unlock()
		obs.Request(r.Context(), route, r.Method, sw.status, took)
		level := slog.LevelInfo
		if sw.status >= 500 {
			level = slog.LevelError
		}
		// The line goes to the handler itself: Logger.LogAttrs would walk the
		// stack (runtime.Callers) for a source location, which for an access
		// line is always this function.
		if h := log.Handler(); h.Enabled(r.Context(), level) {
			rec := slog.NewRecord(end, level, "request", 0)
			rec.AddAttrs(attrs...)
			_ = h.Handle(r.Context(), rec)
		}
	})
}
