package events

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/portvakt/portvakt/internal/store"
)

// Config tunes the worker. Issuer is required; every other field works at
// its zero value.
type Config struct {
	// Issuer is the iss of every SET: the server's issuer URL.
	Issuer string
	// Owner names this replica in the leases it takes (default: host name,
	// process id and a random suffix). Replicas must differ.
	Owner string

	// Timeout bounds one delivery: connect, TLS, request and reply
	// (default 10s).
	Timeout time.Duration
	// Lease is how long a claimed delivery stays this replica's before
	// another may take it over (default 6 × Timeout, at least
	// 2 × Timeout: a delivery must end well within its lease).
	Lease time.Duration
	// MaxInFlight is the most deliveries out at once (default 8).
	MaxInFlight int
	// Poll is how often an idle worker looks for due deliveries (default
	// 2s); Notify wakes it at once.
	Poll time.Duration
	// MaxReply is how much of a receiver's reply is read, in bytes
	// (default 4 KiB).
	MaxReply int64

	// Retries: the n-th failed attempt waits a random time between 0 and
	// min(BackoffMax, BackoffMin × 2^(n-1)) (full jitter), until
	// GiveUpAfter has passed since the event: then the worker makes one
	// last attempt and, if that fails too, gives up. Defaults 10s, 1h, 24h.
	BackoffMin  time.Duration
	BackoffMax  time.Duration
	GiveUpAfter time.Duration
	// Jitter picks the wait for a ceiling d, in [0, d] (default uniform
	// random). Tests pin it.
	Jitter func(d time.Duration) time.Duration

	// KeyScanInterval is how often the key-expiry scan runs (default 24h),
	// across all replicas: one scan per interval, by the first replica to
	// find it due (at start, or at its hourly check). KeyWarnings are how long before a key's expiry
	// client.keys.expiring is sent, once each (default 30 and 7 days).
	KeyScanInterval time.Duration
	KeyWarnings     []time.Duration

	// Purge: finished deliveries are deleted Retention after they finished
	// (default 7 days), events EventRetention after they happened once no
	// delivery is left (default 40 days; at least the longest KeyWarning
	// plus a day, as the events remember which warnings were sent), every
	// PurgeInterval (default 1h), PurgeBatch rows per statement (default
	// 500) and at most 20 statements per run.
	Retention      time.Duration
	EventRetention time.Duration
	PurgeInterval  time.Duration
	PurgeBatch     int

	// Now is the clock (default time.Now).
	Now func() time.Time
	// Dial makes connections (default a net.Dialer); LookupIP resolves
	// the host of an http URL before the loopback check (default the
	// system resolver). RootCAs verifies https receivers (default the
	// system roots).
	Dial     func(ctx context.Context, network, addr string) (net.Conn, error)
	LookupIP func(ctx context.Context, host string) ([]net.IP, error)
	RootCAs  *x509.CertPool
	Log      *slog.Logger
}

func (c *Config) defaults() {
	if c.Owner == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = crand.Read(b)
		c.Owner = host + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b)
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Lease <= 0 {
		c.Lease = 6 * c.Timeout
	}
	c.Lease = max(c.Lease, 2*c.Timeout)
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 8
	}
	if c.Poll <= 0 {
		c.Poll = 2 * time.Second
	}
	if c.MaxReply <= 0 {
		c.MaxReply = 4 << 10
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = 10 * time.Second
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = time.Hour
	}
	c.BackoffMax = max(c.BackoffMax, c.BackoffMin)
	if c.GiveUpAfter <= 0 {
		c.GiveUpAfter = 24 * time.Hour
	}
	if c.Jitter == nil {
		c.Jitter = func(d time.Duration) time.Duration { return rand.N(d + 1) }
	}
	if c.KeyScanInterval <= 0 {
		c.KeyScanInterval = 24 * time.Hour
	}
	if len(c.KeyWarnings) == 0 {
		c.KeyWarnings = []time.Duration{30 * 24 * time.Hour, 7 * 24 * time.Hour}
	}
	if c.Retention <= 0 {
		c.Retention = 7 * 24 * time.Hour
	}
	if c.EventRetention <= 0 {
		c.EventRetention = 40 * 24 * time.Hour
	}
	c.EventRetention = max(c.EventRetention, slices.Max(c.KeyWarnings)+24*time.Hour)
	if c.PurgeInterval <= 0 {
		c.PurgeInterval = time.Hour
	}
	if c.PurgeBatch <= 0 {
		c.PurgeBatch = 500
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Dial == nil {
		c.Dial = (&net.Dialer{Timeout: c.Timeout}).DialContext
	}
	if c.LookupIP == nil {
		c.LookupIP = func(ctx context.Context, host string) ([]net.IP, error) {
			return net.DefaultResolver.LookupIP(ctx, "ip", host)
		}
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
}

// Worker delivers the event outbox to the webhooks, scans for expiring
// client keys, and purges what was delivered. Several replicas may each run
// one over a shared store.
type Worker struct {
	c      Config
	st     store.Store
	signer Signer
	out    transports
	wake   chan struct{}
}

// New makes a worker over st that signs with sg.
func New(c Config, st store.Store, sg Signer) (*Worker, error) {
	if c.Issuer == "" {
		return nil, errors.New("events: the issuer is required")
	}
	if st == nil || sg == nil {
		return nil, errors.New("events: a store and a signer are required")
	}
	c.defaults()
	return &Worker{c: c, st: st, signer: sg, out: newTransports(&c), wake: make(chan struct{}, 1)}, nil
}

// Notify wakes the delivery loop at once (after an Update that appended
// events, say) instead of at its next poll. It never blocks.
func (w *Worker) Notify() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run delivers, scans and purges until ctx ends, then waits for the
// deliveries in flight (each bounded by Timeout).
func (w *Worker) Run(ctx context.Context) {
	var wg sync.WaitGroup
	// Each replica asks at least hourly whether a scan is due; one per
	// KeyScanInterval runs, on whichever replica asks first.
	wg.Go(func() {
		w.every(ctx, min(w.c.KeyScanInterval, time.Hour), "scan for expiring client keys", func(ctx context.Context) (int, error) {
			_, n, err := w.ScanKeysIfDue(ctx)
			return n, err
		})
	})
	wg.Go(func() { w.every(ctx, w.c.PurgeInterval, "purge of delivered events", w.Purge) })
	w.deliverLoop(ctx)
	wg.Wait()
}

// every runs fn now and then every d until ctx ends.
func (w *Worker) every(ctx context.Context, d time.Duration, what string, fn func(context.Context) (int, error)) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		if n, err := fn(ctx); err != nil && ctx.Err() == nil {
			w.c.Log.Warn(what+" failed", "err", err, "done", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (w *Worker) deliverLoop(ctx context.Context) {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		inFlight int
	)
	defer wg.Wait()
	poll := time.NewTimer(0)
	defer poll.Stop()
	for {
		mu.Lock()
		free := w.c.MaxInFlight - inFlight
		mu.Unlock()
		claimed := 0
		if free > 0 {
			ds, err := w.claim(ctx, free)
			if err != nil && ctx.Err() == nil {
				w.c.Log.Warn("claiming event deliveries failed", "err", err)
			}
			claimed = len(ds)
			for _, d := range ds {
				mu.Lock()
				inFlight++
				mu.Unlock()
				wg.Go(func() {
					w.deliver(ctx, d)
					mu.Lock()
					inFlight--
					mu.Unlock()
					// The webhook's next event may be due now.
					w.Notify()
				})
			}
		}
		if claimed > 0 && claimed == free {
			// Perhaps more are due: look again once a slot frees.
			select {
			case <-ctx.Done():
				return
			case <-w.wake:
			}
			continue
		}
		poll.Reset(w.c.Poll)
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-poll.C:
		}
	}
}

func (w *Worker) claim(ctx context.Context, n int) ([]store.Delivery, error) {
	return w.st.ClaimDeliveries(ctx, store.DeliveryClaim{Now: w.c.Now(), Owner: w.c.Owner, Lease: w.c.Lease, Limit: n})
}

// DeliverDue claims the deliveries due now (at most MaxInFlight), makes
// them concurrently and returns how many it made, once all are recorded.
// Run does this continuously; tests call it with a pinned clock.
func (w *Worker) DeliverDue(ctx context.Context) (int, error) {
	ds, err := w.claim(ctx, w.c.MaxInFlight)
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	for _, d := range ds {
		wg.Go(func() { w.deliver(ctx, d) })
	}
	wg.Wait()
	return len(ds), nil
}

// deliver makes one attempt and records it.
func (w *Worker) deliver(ctx context.Context, d store.Delivery) {
	at := w.c.Now()
	status, err := w.send(ctx, d, at)
	if err != nil && ctx.Err() != nil {
		// Shutting down cut the attempt short: it says nothing about the
		// receiver. The lease runs out and a replica (or this one,
		// restarted) tries again.
		return
	}
	r := store.DeliveryResult{WebhookID: d.Webhook.ID, EventID: d.Event.ID, Owner: d.Owner, Attempt: d.Attempt,
		Time: at, Status: status}
	deadline := d.Event.Time.Add(w.c.GiveUpAfter)
	switch {
	case err == nil:
		r.State = store.DeliveryDelivered
	case permanent(err) || !at.Before(deadline):
		r.State, r.Error = store.DeliveryFailed, "given up: "+describe(err)
	default:
		r.State, r.Error = store.DeliveryPending, describe(err)
		r.NextAttempt = at.Add(w.backoff(d.Attempt))
		if r.NextAttempt.After(deadline) {
			r.NextAttempt = deadline
		}
	}
	log := w.c.Log.With("webhook", d.Webhook.ID, "org", d.Webhook.Org, "event", d.Event.Name,
		"jti", d.Event.JTI, "attempt", d.Attempt, "status", status)
	switch r.State {
	case store.DeliveryFailed:
		log.Warn("gave up delivering an event", "err", r.Error)
	case store.DeliveryPending:
		log.Info("event delivery failed; will retry", "err", r.Error, "next_attempt", r.NextAttempt)
	}
	// Record also when ctx ends meanwhile: the attempt was made.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.c.Timeout)
	defer cancel()
	if err := w.st.FinishDelivery(fctx, r); err != nil {
		log.Warn("recording an event delivery failed", "err", err)
	}
}

func permanent(err error) bool {
	var r *refusal
	return errors.As(err, &r) && r.permanent
}

// backoff is the wait after the attempt-th failed attempt.
func (w *Worker) backoff(attempt int) time.Duration {
	ceil := w.c.BackoffMax
	if shift := attempt - 1; shift < 32 {
		if d := w.c.BackoffMin << shift; d > 0 && d < ceil {
			ceil = d
		}
	}
	return max(0, min(w.c.Jitter(ceil), ceil))
}

// send POSTs the delivery's SET; it returns the reply's status (0 without
// one) and nil for an acknowledgement (2xx).
func (w *Worker) send(ctx context.Context, d store.Delivery, now time.Time) (int, error) {
	if !d.Webhook.Active {
		return 0, &refusal{reason: "the webhook is deactivated", permanent: true}
	}
	u, err := checkURL(d.Webhook.URL)
	if err != nil {
		return 0, err
	}
	jws, err := NewSET(w.c.Issuer, d.Webhook.URL, d.Event, now).Sign(w.signer)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, w.c.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader([]byte(jws)))
	if err != nil {
		return 0, &refusal{reason: err.Error(), permanent: true}
	}
	req.Header.Set("Content-Type", ContentType)
	req.Header.Set("Accept", "application/json")
	resp, err := w.out.client(u).Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, w.c.MaxReply))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, nil
	}
	return resp.StatusCode, replyError(resp.StatusCode, body)
}

// replyError describes a refusal: RFC 8935 receivers answer 400 with
// {"err": code, "description": text}.
func replyError(status int, body []byte) error {
	var e struct {
		Err         string `json:"err"`
		Description string `json:"description"`
	}
	msg := "status " + strconv.Itoa(status)
	if status >= 300 && status < 400 {
		msg += " (redirects are not followed)"
	}
	if json.Unmarshal(body, &e) == nil && e.Err != "" {
		msg += ": " + e.Err
		if e.Description != "" {
			msg += ": " + e.Description
		}
	}
	return errors.New(msg)
}

// Purge deletes finished deliveries and old events, at most 20 batches.
func (w *Worker) Purge(ctx context.Context) (int, error) {
	now := w.c.Now()
	p := store.EventPurge{DeliveriesBefore: now.Add(-w.c.Retention), EventsBefore: now.Add(-w.c.EventRetention),
		Limit: w.c.PurgeBatch}
	total := 0
	for range 20 {
		n, err := w.st.PurgeEvents(ctx, p)
		total += n
		if err != nil || n < p.Limit {
			return total, err
		}
	}
	return total, nil
}
