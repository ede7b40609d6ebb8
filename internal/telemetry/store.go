package telemetry

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/portvakt/portvakt/internal/store"
)

// InstrumentStore times the store calls that matter to operators: the
// per-token insert, transactions, the generation poll, purges, pings, the
// rate-limit exchange and the audit reads. Other reads pass through (they
// run inside rules reloads, which are timed as a whole). It is the store's
// Observer in the one shape (see the package doc): what the store.Store
// interface is observed through, wired in main.
func (t *Telemetry) InstrumentStore(s store.Store) store.Store {
	return &instrumentedStore{Store: s, m: t.m, tracer: t.tracer, now: t.now}
}

type instrumentedStore struct {
	store.Store
	m      *metrics
	tracer trace.Tracer
	now    func() time.Time
}

func (s *instrumentedStore) observe(ctx context.Context, op string, start time.Time, err error) {
	s.m.storeCall(ctx, op, err, s.now().Sub(start))
}

// InsertIssuedToken is StartInsertIssuedToken and its wait, timed alike.
func (s *instrumentedStore) InsertIssuedToken(ctx context.Context, t store.IssuedToken) error {
	return s.StartInsertIssuedToken(ctx, t)()
}

// StartInsertIssuedToken times the insert from hand-over to answer: the
// group commit's wait for a writer and the caller's signature overlap in it.
func (s *instrumentedStore) StartInsertIssuedToken(ctx context.Context, t store.IssuedToken) func() error {
	start := s.now()
	wait := s.Store.StartInsertIssuedToken(ctx, t)
	return func() error {
		err := wait()
		s.observe(ctx, "insert_issued_token", start, err)
		return err
	}
}

func (s *instrumentedStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	ctx, span := s.tracer.Start(ctx, "store.update")
	start := s.now()
	err := s.Store.Update(ctx, fn)
	s.observe(ctx, "update", start, err)
	if err != nil {
		span.SetStatus(codes.Error, "update failed")
	}
	span.End()
	return err
}

func (s *instrumentedStore) Generation(ctx context.Context) (int64, error) {
	start := s.now()
	g, err := s.Store.Generation(ctx)
	s.observe(ctx, "generation", start, err)
	return g, err
}

func (s *instrumentedStore) PurgeIssuedTokens(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	start := s.now()
	n, err := s.Store.PurgeIssuedTokens(ctx, cutoff, limit)
	s.observe(ctx, "purge_issued_tokens", start, err)
	return n, err
}

func (s *instrumentedStore) Ping(ctx context.Context) error {
	start := s.now()
	err := s.Store.Ping(ctx)
	s.observe(ctx, "ping", start, err)
	return err
}

func (s *instrumentedStore) ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, error) {
	start := s.now()
	ev, err := s.Store.ListAudit(ctx, f)
	s.observe(ctx, "list_audit", start, err)
	return ev, err
}

func (s *instrumentedStore) ListIssuedTokens(ctx context.Context, f store.IssuedTokenFilter) ([]store.IssuedToken, error) {
	start := s.now()
	t, err := s.Store.ListIssuedTokens(ctx, f)
	s.observe(ctx, "list_issued_tokens", start, err)
	return t, err
}

func (s *instrumentedStore) ExchangeRateCounts(ctx context.Context, x store.RateExchange) ([]store.RateCount, error) {
	start := s.now()
	rows, err := s.Store.ExchangeRateCounts(ctx, x)
	s.observe(ctx, "exchange_rate_counts", start, err)
	return rows, err
}
