package events_test

import (
	"cmp"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/portvakt/portvakt/internal/events"
	"github.com/portvakt/portvakt/internal/pgtest"
	"github.com/portvakt/portvakt/internal/signer"
	"github.com/portvakt/portvakt/internal/store"
	"github.com/portvakt/portvakt/internal/store/sqlstore"
)

const (
	issuer   = "https://auth.example.no/"
	provider = "910000001"
	consumer = "910000002"
	vendor   = "910000003"
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// jwtSigner is what *signer.Set provides as SignType: golang-jwt over one
// key from signer.Generate, with its kid and the typ asked for.
type jwtSigner struct{ k *signer.Key }

func (s jwtSigner) SignType(typ string, claims any) (string, error) {
	b, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	var m jwt.MapClaims
	if err := json.Unmarshal(b, &m); err != nil {
		return "", err
	}
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(s.k.Alg), m)
	tok.Header["kid"], tok.Header["typ"] = s.k.ID, typ
	return tok.SignedString(s.k.Private)
}

// keys is the server's signing key: the signer for the worker and the JWKS
// (as /jwk publishes it) for the receivers.
type keys struct {
	signer jwtSigner
	jwks   jose.JSONWebKeySet
}

func newKeys(t *testing.T) keys {
	t.Helper()
	k, err := signer.Generate("ES256")
	if err != nil {
		t.Fatal(err)
	}
	set, err := signer.NewSet(k)
	if err != nil {
		t.Fatal(err)
	}
	var jwks jose.JSONWebKeySet
	if err := json.Unmarshal(set.JWKS(), &jwks); err != nil {
		t.Fatal(err)
	}
	return keys{signer: jwtSigner{k}, jwks: jwks}
}

// got is one SET a receiver accepted as valid.
type got struct {
	JTI, Name, ActorOrg string
	Record              json.RawMessage
}

// receiver is a webhook endpoint on 127.0.0.1 that verifies every SET
// against the JWKS (signature, typ, iss, aud = its own URL, the events
// claim) and answers what reply says for the n-th request (1-based).
type receiver struct {
	t     *testing.T
	srv   *httptest.Server
	URL   string
	keys  keys
	reply func(n int, g got) int

	mu       sync.Mutex
	requests int
	valid    []got
	bad      []string
}

func newReceiver(t *testing.T, k keys, reply func(n int, g got) int) *receiver {
	t.Helper()
	r := &receiver{t: t, keys: k, reply: reply}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	r.URL = r.srv.URL + "/hook"
	return r
}

func (r *receiver) fail(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bad = append(r.bad, fmt.Sprintf(format, args...))
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	g, err := r.verify(req)
	r.mu.Lock()
	r.requests++
	n := r.requests
	r.mu.Unlock()
	if err != nil {
		r.fail("request %d: %v", n, err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	status := http.StatusAccepted
	if r.reply != nil {
		status = r.reply(n, g)
	}
	if status >= 200 && status < 300 {
		r.mu.Lock()
		r.valid = append(r.valid, g)
		r.mu.Unlock()
	}
	w.WriteHeader(status)
}

func (r *receiver) verify(req *http.Request) (got, error) {
	if req.Method != http.MethodPost || req.URL.Path != "/hook" {
		return got{}, fmt.Errorf("%s %s", req.Method, req.URL.Path)
	}
	if ct, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type")); ct != events.ContentType {
		return got{}, fmt.Errorf("Content-Type %q", req.Header.Get("Content-Type"))
	}
	if a := req.Header.Get("Accept"); a != "application/json" {
		return got{}, fmt.Errorf("Accept %q", a)
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, 64<<10))
	if err != nil {
		return got{}, err
	}
	var claims struct {
		jwt.RegisteredClaims
		TOE    int64 `json:"toe"`
		Events map[string]struct {
			ActorOrg string          `json:"actor_org"`
			Record   json.RawMessage `json:"record"`
		} `json:"events"`
	}
	tok, err := jwt.ParseWithClaims(string(body), &claims, func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		ks := r.keys.jwks.Key(kid)
		if len(ks) != 1 {
			return nil, fmt.Errorf("kid %q not in the JWKS", kid)
		}
		return ks[0].Key, nil
	}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer(issuer), jwt.WithAudience(r.URL), jwt.WithIssuedAt())
	if err != nil {
		return got{}, fmt.Errorf("SET: %w", err)
	}
	if typ, _ := tok.Header["typ"].(string); typ != events.TokenType {
		return got{}, fmt.Errorf("typ %q", typ)
	}
	if claims.ID == "" || claims.IssuedAt == nil || claims.TOE == 0 {
		return got{}, fmt.Errorf("jti %q, iat %v, toe %d", claims.ID, claims.IssuedAt, claims.TOE)
	}
	if claims.ExpiresAt != nil || claims.Subject != "" {
		return got{}, errors.New("a SET with exp or sub")
	}
	if len(claims.Events) != 1 {
		return got{}, fmt.Errorf("%d events in one SET", len(claims.Events))
	}
	for uri, ev := range claims.Events {
		name, ok := strings.CutPrefix(uri, events.EventURIPrefix)
		if !ok || !slices.Contains(store.EventNames, name) {
			return got{}, fmt.Errorf("event %q", uri)
		}
		return got{JTI: claims.ID, Name: name, ActorOrg: ev.ActorOrg, Record: ev.Record}, nil
	}
	panic("unreachable")
}

// check fails the test for every invalid request the receiver saw.
func (r *receiver) check() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.bad {
		r.t.Errorf("%s: %s", r.URL, b)
	}
}

func (r *receiver) jtis() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.valid))
	for i, g := range r.valid {
		out[i] = g.JTI
	}
	return out
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

// clock is a pinned clock that tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// backend opens stores: replicas(n) returns n stores (separate pools, as
// separate replicas have) over one fresh, migrated database.
type backend struct {
	name     string
	replicas func(t *testing.T, n int) []store.Store
}

func sqliteBackend() backend {
	return backend{name: "sqlite", replicas: func(t *testing.T, n int) []store.Store {
		t.Helper()
		path := filepath.Join(t.TempDir(), "portvakt.db")
		return openReplicas(t, sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: path}, n)
	}}
}

func postgresBackend() backend {
	return backend{name: "postgres", replicas: func(t *testing.T, n int) []store.Store {
		t.Helper()
		dsn := pgtest.FreshSchema(t, pgtest.DSN(t))
		return openReplicas(t, sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: dsn}, n)
	}}
}

func backends() []backend { return []backend{sqliteBackend(), postgresBackend()} }

func openReplicas(t *testing.T, cfg sqlstore.Config, n int) []store.Store {
	t.Helper()
	out := make([]store.Store, n)
	for i := range out {
		s, err := sqlstore.Open(t.Context(), cfg)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatalf("migrate: %v", err)
		}
		out[i] = s
	}
	return out
}

func openStore(t *testing.T, b backend) store.Store { return b.replicas(t, 1)[0] }

// newWorker is a worker on the pinned clock with the waits pinned to their
// ceilings (no jitter), so the test knows when each retry is due.
func newWorker(t *testing.T, st store.Store, k keys, c *clock, edit ...func(*events.Config)) *events.Worker {
	t.Helper()
	cfg := events.Config{Issuer: issuer, Now: c.Now, Timeout: 5 * time.Second, Log: slog.New(slog.DiscardHandler),
		Jitter: func(d time.Duration) time.Duration { return d }}
	for _, e := range edit {
		e(&cfg)
	}
	w, err := events.New(cfg, st, k.signer)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

var hookSeq struct {
	sync.Mutex
	n int
}

func addHook(t *testing.T, st store.Store, org, url string, names ...string) store.Webhook {
	t.Helper()
	hookSeq.Lock()
	hookSeq.n++
	id := fmt.Sprintf("00000000-0000-4000-8000-%012d", hookSeq.n)
	hookSeq.Unlock()
	h := store.Webhook{ID: id, Org: org, URL: url, Events: names, Active: true, Created: t0, LastUpdated: t0}
	if err := st.Update(t.Context(), func(tx store.Tx) error { return tx.CreateWebhook(t.Context(), h) }); err != nil {
		t.Fatalf("create webhook: %v", err)
	}
	return h
}

// emit appends one event in its own Update, as a change would.
func emit(t *testing.T, st store.Store, at time.Time, name, actor string, orgs ...string) store.Event {
	t.Helper()
	var e store.Event
	err := st.Update(t.Context(), func(tx store.Tx) error {
		var err error
		e, err = tx.AppendEvent(t.Context(), store.Event{Name: name, Time: at, ActorOrg: actor, Orgs: orgs,
			Record: json.RawMessage(`{"scope":"acme:a","consumer_orgno":"` + consumer + `","state":"` + name + `"}`)})
		return err
	})
	if err != nil {
		t.Fatalf("emit %s: %v", name, err)
	}
	return e
}

// drain runs DeliverDue until nothing is due (bounded).
func drain(t *testing.T, w *events.Worker) int {
	t.Helper()
	total := 0
	for range 100 {
		n, err := w.DeliverDue(t.Context())
		if err != nil {
			t.Fatalf("DeliverDue: %v", err)
		}
		if n == 0 {
			return total
		}
		total += n
	}
	t.Fatal("DeliverDue still busy after 100 rounds")
	return total
}

func jtis(es ...store.Event) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.JTI
	}
	return out
}

func attempts(t *testing.T, st store.Store, hook string) []store.DeliveryAttempt {
	t.Helper()
	at, err := st.ListDeliveryAttempts(t.Context(), hook, 0)
	if err != nil {
		t.Fatalf("ListDeliveryAttempts: %v", err)
	}
	return at
}

func eqJTIs(t *testing.T, what string, got, want []string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if got == nil {
		got = []string{}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s received %v, want %v (each once, in order)", what, got, want)
	}
}

// A story of changes: every event reaches every subscribed webhook of every
// org it concerns exactly once, in order per webhook, as a valid SET; a
// rolled-back change sends nothing.
func TestDeliveryStory(t *testing.T) {
	for _, b := range backends() {
		t.Run("ok/"+b.name, func(t *testing.T) {
			t.Parallel()
			st := openStore(t, b)
			k := newKeys(t)
			c := &clock{t: t0}
			provAll := newReceiver(t, k, nil)
			provApproved := newReceiver(t, k, nil)
			cons := newReceiver(t, k, nil)
			vend := newReceiver(t, k, nil)
			stranger := newReceiver(t, k, nil)
			addHook(t, st, provider, provAll.URL)
			addHook(t, st, provider, provApproved.URL, store.EventAccessApproved)
			addHook(t, st, consumer, cons.URL)
			addHook(t, st, vendor, vend.URL, store.EventDelegationGiven, store.EventDelegationRevoked)
			addHook(t, st, "910000099", stranger.URL)
			off := addHook(t, st, consumer, newReceiver(t, k, nil).URL)
			off.Active = false
			if err := st.Update(t.Context(), func(tx store.Tx) error { return tx.UpdateWebhook(t.Context(), off) }); err != nil {
				t.Fatal(err)
			}

			req := emit(t, st, t0, store.EventAccessRequested, consumer, consumer, provider)
			den := emit(t, st, t0, store.EventAccessDenied, provider, consumer, provider)
			// A change that rolls back: its event is never sent.
			err := st.Update(t.Context(), func(tx store.Tx) error {
				if _, err := tx.AppendEvent(t.Context(), store.Event{Name: store.EventAccessApproved, Time: t0,
					Orgs: []string{consumer, provider}}); err != nil {
					return err
				}
				return errors.New("the change failed after its event")
			})
			if err == nil {
				t.Fatal("the failing Update succeeded")
			}
			req2 := emit(t, st, t0, store.EventAccessRequested, consumer, consumer, provider)
			app := emit(t, st, t0, store.EventAccessApproved, provider, consumer, provider)
			given := emit(t, st, t0, store.EventDelegationGiven, consumer, consumer, vendor)
			revoked := emit(t, st, t0, store.EventDelegationRevoked, consumer, consumer, vendor)

			w := newWorker(t, st, k, c, func(c *events.Config) { c.MaxInFlight = 3 })
			if n := drain(t, w); n != 2+2+2+3+2+2 {
				t.Errorf("%d deliveries, want 13", n)
			}
			drain(t, w) // nothing left: none is sent twice
			for _, r := range []*receiver{provAll, provApproved, cons, vend, stranger} {
				r.check()
			}
			eqJTIs(t, "provider (all)", provAll.jtis(), jtis(req, den, req2, app))
			eqJTIs(t, "provider (approved only)", provApproved.jtis(), jtis(app))
			eqJTIs(t, "consumer", cons.jtis(), jtis(req, den, req2, app, given, revoked))
			eqJTIs(t, "vendor", vend.jtis(), jtis(given, revoked))
			eqJTIs(t, "another org", stranger.jtis(), nil)
			g := cons.valid[3]
			if g.Name != store.EventAccessApproved || g.ActorOrg != provider || !strings.Contains(string(g.Record), `"scope":"acme:a"`) {
				t.Errorf("consumer's 4th SET: %+v", g)
			}
			at := attempts(t, st, off.ID)
			if len(at) != 0 {
				t.Errorf("attempts on a deactivated webhook: %+v", at)
			}
		})
	}
}

// A receiver that fails three times gets the event on the fourth try, at
// the backoff's times (10 s, then 20 s, then 40 s), and the same jti each
// time; the webhook's next event waits behind it.
func TestRetryUntilAcknowledged(t *testing.T) {
	for _, b := range backends() {
		t.Run("ok/"+b.name, func(t *testing.T) {
			t.Parallel()
			st := openStore(t, b)
			k := newKeys(t)
			c := &clock{t: t0}
			var seen []string
			var mu sync.Mutex
			r := newReceiver(t, k, func(n int, g got) int {
				mu.Lock()
				seen = append(seen, g.JTI)
				mu.Unlock()
				if n <= 3 {
					return http.StatusInternalServerError
				}
				return http.StatusAccepted
			})
			h := addHook(t, st, consumer, r.URL)
			e := emit(t, st, t0, store.EventAccessApproved, provider, consumer)
			e2 := emit(t, st, t0, store.EventAccessDenied, provider, consumer)
			w := newWorker(t, st, k, c)

			for i, wait := range []time.Duration{0, 10 * time.Second, 20 * time.Second, 40 * time.Second} {
				if i > 0 {
					c.Add(wait - time.Millisecond)
					if n, err := w.DeliverDue(t.Context()); err != nil || n != 0 {
						t.Fatalf("try %d: %d delivered %v before it was due", i+1, n, err)
					}
					c.Add(time.Millisecond)
				}
				if n, err := w.DeliverDue(t.Context()); err != nil || n != 1 {
					t.Fatalf("try %d: DeliverDue = %d, %v; want 1", i+1, n, err)
				}
			}
			r.check()
			if r.count() != 4 {
				t.Fatalf("%d requests, want 4", r.count())
			}
			if want := []string{e.JTI, e.JTI, e.JTI, e.JTI}; !slices.Equal(seen, want) {
				t.Fatalf("jtis %v, want %v", seen, want)
			}
			at := attempts(t, st, h.ID)
			if len(at) != 4 {
				t.Fatalf("%d attempts recorded, want 4", len(at))
			}
			for i, a := range at {
				want := store.DeliveryPending
				status := http.StatusInternalServerError
				if i == 0 {
					want, status = store.DeliveryDelivered, http.StatusAccepted
				}
				if a.State != want || a.Status != status || a.Attempt != 4-i || a.EventJTI != e.JTI {
					t.Errorf("attempt %d: %+v, want %s with %d", 4-i, a, want, status)
				}
			}
			if !at[1].NextAttempt.Equal(c.Now()) || !strings.Contains(at[1].Error, "500") {
				t.Errorf("third attempt: next %v error %q; want the fourth's time and the status", at[1].NextAttempt, at[1].Error)
			}
			eqJTIs(t, "receiver", r.jtis(), jtis(e))
			drain(t, w)
			eqJTIs(t, "receiver", r.jtis(), jtis(e, e2))
		})
	}
}

// Two workers on two stores over one database (two replicas) deliver
// concurrently: no webhook ever gets an event twice, and each gets its
// events in order.
func TestReplicasNeverSendTwice(t *testing.T) {
	for _, b := range backends() {
		t.Run("ok/"+b.name, func(t *testing.T) {
			t.Parallel()
			stores := b.replicas(t, 2)
			k := newKeys(t)
			c := &clock{t: t0}
			const hooks, evs = 6, 8
			var rs []*receiver
			for range hooks {
				r := newReceiver(t, k, nil)
				rs = append(rs, r)
				addHook(t, stores[0], consumer, r.URL)
			}
			var want []store.Event
			for i := range evs {
				want = append(want, emit(t, stores[i%2], t0, store.EventAccessRequested, consumer, consumer))
			}
			workers := []*events.Worker{
				newWorker(t, stores[0], k, c, func(c *events.Config) { c.Owner, c.MaxInFlight = "replica-a", 2 }),
				newWorker(t, stores[1], k, c, func(c *events.Config) { c.Owner, c.MaxInFlight = "replica-b", 2 }),
			}
			var wg sync.WaitGroup
			for _, w := range workers {
				wg.Go(func() {
					// Until every receiver has all events, bounded.
					for range 500 {
						if _, err := w.DeliverDue(t.Context()); err != nil {
							t.Errorf("DeliverDue: %v", err)
							return
						}
						done := true
						for _, r := range rs {
							done = done && r.count() >= evs
						}
						if done {
							return
						}
					}
				})
			}
			wg.Wait()
			for _, w := range workers {
				drain(t, w)
			}
			for i, r := range rs {
				r.check()
				eqJTIs(t, fmt.Sprintf("webhook %d", i), r.jtis(), jtis(want...))
				if r.count() != evs {
					t.Errorf("webhook %d: %d requests, want %d", i, r.count(), evs)
				}
			}
		})
	}
}

// Plain http goes to loopback addresses only, checked at delivery: a URL
// that does not name a loopback host is given up without a connection; a
// loopback name that resolves elsewhere is refused at the dial. https never
// goes to a link-local address.
func TestWhereDeliveriesGo(t *testing.T) {
	st := openStore(t, sqliteBackend())
	k := newKeys(t)
	c := &clock{t: t0}
	var (
		mu     sync.Mutex
		dialed []string
	)
	w := newWorker(t, st, k, c, func(cfg *events.Config) {
		cfg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			mu.Lock()
			dialed = append(dialed, addr)
			mu.Unlock()
			return nil, errors.New("the test dials nothing")
		}
		cfg.LookupIP = func(ctx context.Context, host string) ([]net.IP, error) {
			if host == "metadata.example.no" {
				return []net.IP{net.ParseIP("169.254.169.254")}, nil
			}
			return []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("192.0.2.10")}, nil
		}
	})
	remote := addHook(t, st, consumer, "http://192.0.2.10/hook") // written past the API's check
	named := addHook(t, st, provider, "http://localhost:9/hook")
	metadata := addHook(t, st, vendor, "https://169.254.169.254/latest/meta-data/") // past the API's check
	named2 := addHook(t, st, "910000099", "https://metadata.example.no/latest/meta-data/")
	emit(t, st, t0, store.EventAccessRequested, consumer, consumer, provider, vendor, "910000099")
	if n := drain(t, w); n != 4 {
		t.Fatalf("%d attempts, want 4", n)
	}
	if len(dialed) != 0 {
		t.Fatalf("dialed %v", dialed)
	}
	for _, tc := range []struct {
		hook  store.Webhook
		state string
		err   string
	}{
		{remote, store.DeliveryFailed, "given up: refused: the webhook URL must be https; http is only for a loopback host"},
		{named, store.DeliveryPending, "not a loopback address"},
		{metadata, store.DeliveryFailed, "given up: refused: the webhook URL must not be a link-local"},
		{named2, store.DeliveryPending, "resolves to 169.254.169.254, not a routable address"},
	} {
		at := attempts(t, st, tc.hook.ID)
		if len(at) != 1 || at[0].State != tc.state || !strings.Contains(at[0].Error, tc.err) || at[0].Status != 0 {
			t.Errorf("%s: attempts %+v, want one %s with %q", tc.hook.URL, at, tc.state, tc.err)
		}
	}
}

// An event not acknowledged within 24 h of its change is given up after
// one last attempt at the deadline; the webhook's next event then goes.
func TestGiveUpAfterADay(t *testing.T) {
	st := openStore(t, sqliteBackend())
	k := newKeys(t)
	c := &clock{t: t0}
	var first string
	r := newReceiver(t, k, func(n int, g got) int {
		if g.JTI == first {
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	})
	h := addHook(t, st, consumer, r.URL)
	e := emit(t, st, t0, store.EventClientDeactivated, consumer, consumer)
	first = e.JTI
	next := emit(t, st, t0.Add(time.Minute), store.EventAccessDenied, provider, consumer)
	w := newWorker(t, st, k, c)
	tries := 0
	for step := 0; step < 200 && c.Now().Before(t0.Add(25*time.Hour)); step++ {
		n, err := w.DeliverDue(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		tries += n
		c.Add(15 * time.Minute)
	}
	at := attempts(t, st, h.ID)
	if len(at) < 2 || at[1].State != store.DeliveryFailed || !strings.HasPrefix(at[1].Error, "given up") ||
		at[1].EventJTI != e.JTI || at[1].Time.Before(t0.Add(24*time.Hour)) {
		t.Fatalf("attempts %+v; want the first event given up at 24 h, then the next delivered", at)
	}
	if at[0].State != store.DeliveryDelivered || at[0].EventJTI != next.JTI {
		t.Fatalf("newest attempt %+v, want the next event delivered", at[0])
	}
	// 10 s doubling to 1 h: 1+9 tries in the first ~2.5 h, then hourly.
	if tries < 20 || tries > 40 {
		t.Errorf("%d tries in a day, want the backoff's ~30", tries)
	}
	r.check()
	eqJTIs(t, "receiver", r.jtis(), jtis(next))
}

// What a receiver answers decides; the worker reads little of it, follows
// no redirect, and reaches https receivers with the roots it is given.
func TestReplies(t *testing.T) {
	k := newKeys(t)
	huge := strings.Repeat("x", 1<<20)
	cases := []struct {
		name    string
		handler http.HandlerFunc
		tls     bool
		state   string
		status  int
		err     string
	}{
		{"ok/202", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(202) }, false, store.DeliveryDelivered, 202, ""},
		{"ok/200-with-body", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, huge) }, false, store.DeliveryDelivered, 200, ""},
		{"ok/https", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(202) }, true, store.DeliveryDelivered, 202, ""},
		{"fail/rfc8935-error", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(400)
			io.WriteString(w, `{"err":"invalid_key","description":"key 'abc' not found"}`)
		}, false, store.DeliveryPending, 400, "status 400: invalid_key: key 'abc' not found"},
		{"fail/redirect-not-followed", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/elsewhere" {
				w.WriteHeader(202)
				return
			}
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
		}, false, store.DeliveryPending, 307, "redirects are not followed"},
		{"fail/huge-error-body", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(500)
			io.WriteString(w, `{"err":"`+huge+`"}`)
		}, false, store.DeliveryPending, 500, "status 500"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := openStore(t, sqliteBackend())
			c := &clock{t: t0}
			var srv *httptest.Server
			var paths []string
			var mu sync.Mutex
			h := func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				paths = append(paths, r.URL.Path)
				mu.Unlock()
				tc.handler(w, r)
			}
			if tc.tls {
				srv = httptest.NewTLSServer(http.HandlerFunc(h))
			} else {
				srv = httptest.NewServer(http.HandlerFunc(h))
			}
			t.Cleanup(srv.Close)
			hook := addHook(t, st, consumer, srv.URL+"/hook")
			emit(t, st, t0, store.EventAccessRequested, consumer, consumer)
			w := newWorker(t, st, k, c, func(cfg *events.Config) {
				if tc.tls {
					cfg.RootCAs = x509.NewCertPool()
					cfg.RootCAs.AddCert(srv.Certificate())
				}
			})
			if n, err := w.DeliverDue(t.Context()); n != 1 || err != nil {
				t.Fatalf("DeliverDue = %d, %v", n, err)
			}
			at := attempts(t, st, hook.ID)
			if len(at) != 1 || at[0].State != tc.state || at[0].Status != tc.status || !strings.Contains(at[0].Error, tc.err) ||
				len(at[0].Error) > store.MaxDeliveryError {
				t.Fatalf("attempt %+v, want %s with status %d and error %q", at, tc.state, tc.status, tc.err)
			}
			if !slices.Equal(paths, []string{"/hook"}) {
				t.Fatalf("requests to %v, want one to /hook", paths)
			}
		})
	}
}

// The daily scan sends client.keys.expiring 30 and 7 days before a key's
// expiry, once per key and warning, also when two replicas scan.
func TestScanExpiringKeys(t *testing.T) {
	for _, b := range backends() {
		t.Run("ok/"+b.name, func(t *testing.T) {
			t.Parallel()
			stores := b.replicas(t, 2)
			k := newKeys(t)
			c := &clock{t: t0}
			r := newReceiver(t, k, nil)
			vr := newReceiver(t, k, nil)
			addHook(t, stores[0], consumer, r.URL, store.EventClientKeysExpiring)
			addHook(t, stores[0], vendor, vr.URL)
			day := 24 * time.Hour
			key := func(kid string, left time.Duration) store.ClientKey {
				return store.ClientKey{KID: kid, JWK: json.RawMessage(`{}`), Created: t0.Add(left - 365*day), Expires: t0.Add(left)}
			}
			clients := []store.Client{
				{ClientID: "c1", ClientOrgno: consumer, Description: "d", Active: true,
					Keys: []store.ClientKey{key("in40", 40*day), key("in25", 25*day), key("in5", 5*day), key("gone", -day)}},
				{ClientID: "c2", ClientOrgno: consumer, ManagedBy: vendor, Description: "d", Active: true,
					Keys: []store.ClientKey{key("vendors", 20*day)}},
				{ClientID: "c3", ClientOrgno: consumer, Description: "d", Active: false,
					Keys: []store.ClientKey{key("inactive", 5*day)}},
			}
			err := stores[0].Update(t.Context(), func(tx store.Tx) error {
				for _, cl := range clients {
					if err := tx.CreateClient(t.Context(), cl); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			workers := []*events.Worker{newWorker(t, stores[0], k, c), newWorker(t, stores[1], k, c)}
			scan := func() int {
				total := 0
				var mu sync.Mutex
				var wg sync.WaitGroup
				for _, w := range workers {
					wg.Go(func() {
						n, err := w.ScanKeys(t.Context())
						if err != nil {
							t.Errorf("ScanKeys: %v", err)
						}
						mu.Lock()
						total += n
						mu.Unlock()
					})
				}
				wg.Wait()
				drain(t, workers[0])
				return total
			}
			type warn struct {
				KID  string `json:"kid"`
				Days int    `json:"days_before"`
			}
			warnings := func(r *receiver) []warn {
				r.mu.Lock()
				defer r.mu.Unlock()
				var out []warn
				for _, g := range r.valid {
					var w warn
					if err := json.Unmarshal(g.Record, &w); err != nil || g.Name != store.EventClientKeysExpiring {
						t.Fatalf("record %s of %s: %v", g.Record, g.Name, err)
					}
					out = append(out, w)
				}
				slices.SortFunc(out, func(a, b warn) int { return cmp.Or(strings.Compare(a.KID, b.KID), a.Days-b.Days) })
				return out
			}
			if n := scan(); n != 3 {
				t.Errorf("first scans appended %d events, want 3", n)
			}
			if n := scan(); n != 0 {
				t.Errorf("second scans appended %d events, want none", n)
			}
			want := []warn{{"in25", 30}, {"in5", 7}, {"vendors", 30}}
			if got := warnings(r); !slices.Equal(got, want) {
				t.Errorf("consumer got %v, want %v", got, want)
			}
			if got := warnings(vr); !slices.Equal(got, []warn{{"vendors", 30}}) {
				t.Errorf("vendor got %v, want its client's key", got)
			}
			c.Add(19 * day) // in40: 21 days left, in25: 6, vendors: 1, in5: gone
			if n := scan(); n != 3 {
				t.Errorf("scans 19 days later appended %d events, want 3", n)
			}
			want = []warn{{"in25", 7}, {"in25", 30}, {"in40", 30}, {"in5", 7}, {"vendors", 7}, {"vendors", 30}}
			if got := warnings(r); !slices.Equal(got, want) {
				t.Errorf("consumer got %v, want %v", got, want)
			}
			r.check()
			vr.check()
		})
	}
}

func TestNewSET(t *testing.T) {
	e := store.Event{ID: 7, JTI: "0d9e1f2a-3b4c-4d5e-8f60-718293a4b5c6", Name: store.EventSigningKeyRotated,
		Time: t0, ActorOrg: provider, Record: json.RawMessage(`{"kid":"k2"}`)}
	s := events.NewSET(issuer, "https://hooks.example.no/h", e, t0.Add(time.Minute))
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"iss":"https://auth.example.no/","iat":` + fmt.Sprint(t0.Add(time.Minute).Unix()) +
		`,"jti":"0d9e1f2a-3b4c-4d5e-8f60-718293a4b5c6","aud":"https://hooks.example.no/h","toe":` + fmt.Sprint(t0.Unix()) +
		`,"events":{"https://portvakt.dev/events/signing_key.rotated":{"actor_org":"910000001","record":{"kid":"k2"}}}}`
	if string(b) != want {
		t.Fatalf("SET claims\n got %s\nwant %s", b, want)
	}
	e.Record = nil
	if b, _ := json.Marshal(events.NewSET(issuer, "x", e, t0)); !strings.Contains(string(b), `"record":null`) {
		t.Fatalf("SET without a record: %s", b)
	}
}

// Run delivers on its own (woken by Notify, and by each finished delivery
// for the webhook's next event) and returns once its context ends.
func TestRunDeliversUntilCancelled(t *testing.T) {
	st := openStore(t, sqliteBackend())
	k := newKeys(t)
	r := newReceiver(t, k, nil)
	addHook(t, st, consumer, r.URL)
	w, err := events.New(events.Config{Issuer: issuer, Poll: time.Hour, Log: slog.New(slog.DiscardHandler)}, st, k.signer)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
	var want []store.Event
	for range 5 {
		want = append(want, emit(t, st, time.Now(), store.EventAccessRequested, consumer, consumer))
	}
	w.Notify()
	// Bounded wait for the outcome, not a measurement.
	deadline := time.Now().Add(30 * time.Second)
	for r.count() < len(want) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	r.check()
	eqJTIs(t, "receiver", r.jtis(), jtis(want...))
}

// Purge deletes finished deliveries after Retention and events after
// EventRetention, never what is pending; the attempts stay visible.
func TestPurge(t *testing.T) {
	st := openStore(t, sqliteBackend())
	k := newKeys(t)
	c := &clock{t: t0}
	ok := newReceiver(t, k, nil)
	down := newReceiver(t, k, func(int, got) int { return http.StatusBadGateway })
	h := addHook(t, st, consumer, ok.URL)
	addHook(t, st, provider, down.URL)
	emit(t, st, t0, store.EventAccessApproved, provider, consumer, provider)
	w := newWorker(t, st, k, c, func(cfg *events.Config) { cfg.Retention, cfg.EventRetention = time.Hour, 2*time.Hour })
	drain(t, w)
	for _, tc := range []struct {
		after time.Duration
		want  int
	}{
		{0, 0},
		{time.Hour + time.Second, 1}, // the delivered row; the pending one stays
		{40 * 24 * time.Hour, 0},     // the event has a pending delivery
	} {
		c.Add(tc.after)
		if n, err := w.Purge(t.Context()); err != nil || n != tc.want {
			t.Fatalf("Purge after %v: %d, %v; want %d", tc.after, n, err, tc.want)
		}
	}
	drain(t, w) // gives up on the pending one, a day and more after the event
	c.Add(time.Hour + time.Second)
	if n, err := w.Purge(t.Context()); err != nil || n != 2 {
		t.Fatalf("Purge once it is given up: %d, %v; want 2 (its row, then the event)", n, err)
	}
	if at := attempts(t, st, h.ID); len(at) != 1 || at[0].State != store.DeliveryDelivered {
		t.Fatalf("attempts after the purge: %+v", at)
	}
	ok.check()
	down.check()
}

// A webhook deactivated while its events wait gets none of them: each is
// given up, unsent, and recorded so.
func TestDeactivatedWebhookGetsNothing(t *testing.T) {
	st := openStore(t, sqliteBackend())
	k := newKeys(t)
	c := &clock{t: t0}
	r := newReceiver(t, k, nil)
	h := addHook(t, st, consumer, r.URL)
	e1 := emit(t, st, t0, store.EventAccessRequested, consumer, consumer)
	e2 := emit(t, st, t0, store.EventAccessWithdrawn, consumer, consumer)
	h.Active = false
	if err := st.Update(t.Context(), func(tx store.Tx) error { return tx.UpdateWebhook(t.Context(), h) }); err != nil {
		t.Fatal(err)
	}
	if n := drain(t, newWorker(t, st, k, c)); n != 2 {
		t.Fatalf("%d deliveries handled, want 2", n)
	}
	if r.count() != 0 {
		t.Fatalf("%d requests to a deactivated webhook", r.count())
	}
	at := attempts(t, st, h.ID)
	if len(at) != 2 || at[0].EventJTI != e2.JTI || at[1].EventJTI != e1.JTI {
		t.Fatalf("attempts %+v, want both events, newest first", at)
	}
	for _, a := range at {
		if a.State != store.DeliveryFailed || !strings.Contains(a.Error, "deactivated") {
			t.Errorf("attempt %+v, want given up as deactivated", a)
		}
	}
}

// TestOneKeyScanPerInterval: of two replicas, only the first to ask scans
// in an interval, a replica that restarts (a new worker) does not scan
// again, and the next interval's scan runs on whichever asks first.
func TestOneKeyScanPerInterval(t *testing.T) {
	for _, b := range backends() {
		t.Run("ok/"+b.name, func(t *testing.T) {
			t.Parallel()
			stores := b.replicas(t, 2)
			k := newKeys(t)
			c := &clock{t: t0}
			every := func(cfg *events.Config) { cfg.KeyScanInterval = 24 * time.Hour }
			due := func(w *events.Worker) bool {
				t.Helper()
				ran, _, err := w.ScanKeysIfDue(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				return ran
			}
			one, two := newWorker(t, stores[0], k, c, every), newWorker(t, stores[1], k, c, every)
			if !due(one) || due(two) || due(one) {
				t.Fatal("first interval: want only the first replica's first scan")
			}
			c.Add(23 * time.Hour)
			if due(newWorker(t, stores[1], k, c, every)) {
				t.Error("a restarted replica scanned again within the interval")
			}
			c.Add(time.Hour)
			if !due(two) || due(one) {
				t.Error("next interval: want one scan, by the replica that asked first")
			}
		})
	}
}
