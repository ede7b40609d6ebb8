package rules

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/portvakt/portvakt/internal/store"
)

// CacheConfig configures a Cache. Every field works at its zero value.
type CacheConfig struct {
	// PollInterval is how often Run reads the store's Generation. Default 500ms.
	PollInterval time.Duration
	// LoadTimeout bounds one reload that catches up through the change
	// log; it runs detached from the request that triggered it (it is
	// shared with other callers, who stop waiting at their own deadline).
	// Default 10s.
	LoadTimeout time.Duration
	// FullLoadTimeout bounds a reload that reads every record (at start,
	// or when the change log cannot say what changed): at a country's
	// size that is hundreds of thousands of rows, read a page at a time so
	// that each statement stays short. Default 2m.
	FullLoadTimeout time.Duration
	// MaxChanges is the most changes a reload fetches one record at a
	// time; when more were made since the current snapshot it reads
	// everything instead. Default 1000.
	MaxChanges int
	// Now is the clock used to time reloads. Default time.Now.
	Now func() time.Time
	// Observer is told of reloads and lookups; nil observes nothing.
	Observer Observer
}

// Observer is told how the cache serves and reloads (metrics).
type Observer interface {
	// Reload is told of every reload attempt and every failed generation
	// poll (then gen is 0): the generation loaded, how long it took on the
	// cache's clock, and its error. It runs on the reloading goroutine and
	// must not block.
	Reload(gen int64, took time.Duration, err error)
	// Lookup is told whether a Snapshot call was served from the current
	// snapshot (hit) or had to reload. It runs on the hot path and must be
	// cheap.
	Lookup(hit bool)
}

// nopObserver observes nothing.
type nopObserver struct{}

func (nopObserver) Reload(int64, time.Duration, error) {}
func (nopObserver) Lookup(bool)                        {}

const (
	defaultPollInterval    = 500 * time.Millisecond
	defaultLoadTimeout     = 10 * time.Second
	defaultFullLoadTimeout = 2 * time.Minute
	defaultMaxChanges      = 1000
	// fullLoadPage is how many records one statement of a full load reads.
	fullLoadPage = 5000
)

// Cache holds the current Snapshot of the access rules. A reload normally
// catches up: it reads the change log since the current snapshot's
// generation and applies just the records it names (see the package doc);
// it reads everything only at the first load or when the log cannot say.
// Either way it runs in the single flight described below, and a request
// waits for it only after an Invalidate or while Run has seen a newer
// generation, never for records it did not change.
//
// Staleness is one atomic word, state: bit 0 is set while Run has seen a new
// generation and is reloading; the bits above count Invalidate calls. Every
// snapshot records the state (bit 0 clear) read before it was loaded, so the
// hot path is two atomic loads and a comparison (no lock, no allocation), and an Invalidate that
// races with a reload already under way is never lost: that reload carries
// the older count and the next call reloads again.
//
// Failed reloads are handled by who is owed fresh rules:
//   - After Invalidate (a write committed in this process) the old snapshot
//     is known to be wrong, and the admin who just revoked an access expects
//     the next token request to be refused. Snapshot returns the error and
//     the token endpoint answers 503. It loses nothing by doing so: issuing a
//     token writes the issued-token row, which fails too while the store is
//     down.
//   - After a poll (a write by another replica) no request here is waiting
//     for that write: replicas see each other's writes up to a PollInterval
//     late anyway. The old snapshot is kept, callers are not failed or slowed down on
//     every request, and Run retries on the next tick.
type Cache struct {
	store store.Store
	cfg   CacheConfig

	cur   atomic.Pointer[Snapshot]
	state atomic.Uint64
	sf    singleflight.Group
	kick  chan struct{} // Refresh -> Run: poll now
}

const (
	pollBit        = 1
	invalidateStep = 2
)

// NewCache returns a cache over s. Nothing is loaded until the first
// Snapshot call (or the first tick of Run).
func NewCache(s store.Store, cfg CacheConfig) *Cache {
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = defaultPollInterval
	}
	if cfg.LoadTimeout <= 0 {
		cfg.LoadTimeout = defaultLoadTimeout
	}
	if cfg.FullLoadTimeout <= 0 {
		cfg.FullLoadTimeout = defaultFullLoadTimeout
	}
	if cfg.MaxChanges <= 0 {
		cfg.MaxChanges = defaultMaxChanges
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	return &Cache{store: s, cfg: cfg, kick: make(chan struct{}, 1)}
}

// Snapshot returns the current snapshot. The first call loads it; a call
// after Invalidate, or while Run reloads a newer generation, waits for the
// reload (a catch-up through the change log), which concurrent callers
// share. Errors wrap the store's (test with errors.Is(err,
// store.ErrUnavailable)); the caller answers 503.
func (c *Cache) Snapshot(ctx context.Context) (*Snapshot, error) {
	s := c.cur.Load()
	st := c.state.Load()
	if s != nil && s.state == st {
		c.cfg.Observer.Lookup(true)
		return s, nil
	}
	c.cfg.Observer.Lookup(false)
	return c.slowSnapshot(ctx, st)
}

func (c *Cache) slowSnapshot(ctx context.Context, st uint64) (*Snapshot, error) {
	// want is the invalidation count this caller must see: every write it
	// could have made (or observed committed) in this process.
	want := st &^ pollBit
	for {
		ch := c.sf.DoChan("reload", func() (any, error) { return c.reload(ctx) })
		var r singleflight.Result
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case r = <-ch:
		}
		if r.Err != nil {
			// Only the poll made us wait: the current rules are still owed
			// to no one, so serve them (see Cache).
			if cur := c.cur.Load(); cur != nil && cur.state >= want {
				return cur, nil
			}
			return nil, r.Err
		}
		s := r.Val.(*Snapshot)
		if s.state >= want {
			return s, nil
		}
		// We joined a reload that began before our Invalidate: go again.
	}
}

// reload loads and publishes a new snapshot. It runs inside the single
// flight, so reloads never overlap and each one publishes newer rules than
// the last. It is detached from the caller's cancellation: other callers
// share its result.
func (c *Cache) reload(parent context.Context) (*Snapshot, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), c.cfg.LoadTimeout)
	defer cancel()
	start := c.cfg.Now()
	// Order matters: the state, then the generation, then the records. A
	// write that commits after either read is missing from this snapshot
	// perhaps, but then its Invalidate or its generation is newer than what
	// the snapshot records, so it is reloaded again.
	st := c.state.Load()
	s, err := c.load(ctx, st)
	took := c.cfg.Now().Sub(start)
	if err != nil {
		c.report(0, took, err)
		return nil, err
	}
	s.state = st &^ pollBit
	if st&pollBit != 0 {
		// This load began after Run saw the new generation, so it holds it.
		// Clear the bit before publishing: a caller in between gets the old
		// snapshot (as it would have a moment earlier) instead of starting
		// a second reload.
		c.state.And(^uint64(pollBit))
	}
	c.cur.Store(s)
	c.report(s.gen, took, nil)
	return s, nil
}

// load brings the current snapshot up to date with the store: through the
// change log when it can (catchUp), else by reading everything (loadAll).
// st is the state the reload began at.
func (c *Cache) load(ctx context.Context, st uint64) (*Snapshot, error) {
	if cur := c.cur.Load(); cur != nil {
		s, err := c.catchUp(ctx, cur)
		if !errors.Is(err, store.ErrChangesUnknown) {
			return s, err
		}
		if st&pollBit != 0 && cur.state == st&^pollBit {
			// Only a poll asked for this reload (no write made here is
			// owed), and it must read everything: requests use the current
			// rules meanwhile instead of waiting for a rebuild of records
			// they did not change. Run polls again only once it is done.
			c.state.And(^uint64(pollBit))
		}
	}
	// A full load has its own, longer budget.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.FullLoadTimeout)
	defer cancel()
	return c.loadAll(fctx)
}

// catchUp reads the changes committed since cur was loaded, fetches just
// the records they name (one read each, after reading the changes, so each
// is at least as new as its change) and applies them to a copy of cur that
// shares everything else. ErrChangesUnknown: the log cannot say (hand-written
// SQL, a gap, too many changes); read everything.
func (c *Cache) catchUp(ctx context.Context, cur *Snapshot) (*Snapshot, error) {
	log, gen, err := c.store.ListChanges(ctx, cur.gen, c.cfg.MaxChanges)
	if err != nil {
		return nil, fmt.Errorf("rules: list changes: %w", err)
	}
	ch := changes{
		scopes:  map[string]*store.Scope{},
		access:  map[accessKey]bool{},
		dels:    map[delegationKey]bool{},
		clients: map[string]*store.Client{},
	}
	for _, x := range log {
		if err := c.fetch(ctx, x, &ch); err != nil {
			return nil, err
		}
	}
	s := cur.apply(&ch)
	s.gen = gen
	return s, nil
}

// fetch reads the record that x names into ch, once per key.
func (c *Cache) fetch(ctx context.Context, x store.Change, ch *changes) error {
	switch x.Kind {
	case store.ChangeScope:
		if _, done := ch.scopes[x.Name]; done {
			return nil
		}
		sc, err := c.store.GetScope(ctx, x.Name)
		if gone(err) {
			ch.scopes[x.Name] = nil
			return nil
		} else if err != nil {
			return fmt.Errorf("rules: get scope: %w", err)
		}
		ch.scopes[x.Name] = &sc
	case store.ChangeAccess:
		k := accessKey{x.Name, x.ConsumerOrgno}
		if _, done := ch.access[k]; done {
			return nil
		}
		a, err := c.store.GetAccess(ctx, x.Name, x.ConsumerOrgno)
		if err != nil && !gone(err) {
			return fmt.Errorf("rules: get access: %w", err)
		}
		ch.access[k] = err == nil && a.State == store.AccessApproved
	case store.ChangeDelegation:
		k := delegationKey{x.Name, x.ConsumerOrgno, x.SupplierOrgno}
		if _, done := ch.dels[k]; done {
			return nil
		}
		d, err := c.store.GetDelegation(ctx, x.Name, x.ConsumerOrgno, x.SupplierOrgno)
		if err != nil && !gone(err) {
			return fmt.Errorf("rules: get delegation: %w", err)
		}
		ch.dels[k] = err == nil && d.State == store.DelegationActive
	case store.ChangeClient:
		if _, done := ch.clients[x.Name]; done {
			return nil
		}
		cl, err := c.store.GetClient(ctx, x.Name)
		if gone(err) {
			ch.clients[x.Name] = nil
			return nil
		} else if err != nil {
			return fmt.Errorf("rules: get client: %w", err)
		}
		ch.clients[x.Name] = &cl
	default:
		// Prefixes and Updates that wrote no record: nothing in a snapshot
		// depends on them. Kinds this binary does not know (written by a
		// newer one) are ignored the same way.
	}
	return nil
}

func gone(err error) bool { return errors.Is(err, store.ErrNotFound) }

// loadAll reads every record: at start, and when the change log cannot
// say what changed. The new snapshot is built beside the current one,
// which stays in use until it is published.
func (c *Cache) loadAll(ctx context.Context) (*Snapshot, error) {
	gen, err := c.store.Generation(ctx)
	if err != nil {
		return nil, fmt.Errorf("rules: read generation: %w", err)
	}
	scopes, err := readAll(ctx, func(ctx context.Context, p store.Page) ([]store.Scope, error) {
		return c.store.PageScopes(ctx, store.ScopeFilter{}, p)
	})
	if err != nil {
		return nil, fmt.Errorf("rules: list scopes: %w", err)
	}
	access, err := readAll(ctx, func(ctx context.Context, p store.Page) ([]store.Access, error) {
		return c.store.PageAccess(ctx, store.AccessFilter{}, p)
	})
	if err != nil {
		return nil, fmt.Errorf("rules: list access: %w", err)
	}
	dels, err := readAll(ctx, func(ctx context.Context, p store.Page) ([]store.Delegation, error) {
		return c.store.PageDelegations(ctx, store.DelegationFilter{}, p)
	})
	if err != nil {
		return nil, fmt.Errorf("rules: list delegations: %w", err)
	}
	clients, err := readAll(ctx, func(ctx context.Context, p store.Page) ([]store.Client, error) {
		return c.store.PageClients(ctx, store.ClientFilter{}, p)
	})
	if err != nil {
		return nil, fmt.Errorf("rules: list clients: %w", err)
	}
	s := Build(scopes, access, dels, clients)
	s.gen = gen
	return s, nil
}

// readAll reads a whole list a page at a time, so that no statement reads
// more than fullLoadPage rows (each stays within the store's statement
// timeout at any size). The pages are not one consistent read; the
// generation read before them makes the next catch-up fetch again whatever
// changed meanwhile.
func readAll[V interface{ Key() []string }](ctx context.Context, page func(context.Context, store.Page) ([]V, error)) ([]V, error) {
	var out []V
	p := store.Page{Limit: fullLoadPage}
	for {
		got, err := page(ctx, p)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
		if len(got) < p.Limit {
			return out, nil
		}
		p.After = got[len(got)-1].Key()
	}
}

func (c *Cache) report(gen int64, took time.Duration, err error) {
	c.cfg.Observer.Reload(gen, took, err)
}

// Invalidate records that a write committed in this process: the next
// Snapshot call catches up with the change log, and fails rather than serve
// the old rules. Call it
// after the commit, before answering the request that wrote.
func (c *Cache) Invalidate() { c.state.Add(invalidateStep) }

// Refresh asks Run to poll the store's Generation now rather than at the
// next tick: call it when another replica announces a write (PostgreSQL
// NOTIFY). It takes the poll path, not Invalidate's: a failed reload keeps
// the current snapshot, since no request here is owed that write. It never
// blocks; calls made while a poll is pending are merged into it, and a call
// made during a poll causes one more. Without Run it does nothing.
func (c *Cache) Refresh() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Run polls the store's Generation every PollInterval and catches up when
// it differs from the current snapshot's; it also loads the first snapshot if
// no request has yet. A failed poll or reload keeps the current snapshot and
// is retried on the next tick. Run returns when ctx is done. Call it once.
func (c *Cache) Run(ctx context.Context) {
	t := time.NewTicker(c.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.poll(ctx)
		case <-c.kick:
			c.poll(ctx)
		}
	}
}

func (c *Cache) poll(ctx context.Context) {
	gctx, cancel := context.WithTimeout(ctx, c.cfg.LoadTimeout)
	gen, err := c.store.Generation(gctx)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			c.report(0, 0, fmt.Errorf("rules: poll generation: %w", err))
		}
		return
	}
	if s := c.cur.Load(); s != nil && s.gen == gen {
		return
	}
	// Callers arriving now wait for the new rules rather than serve rules
	// known to be old; on failure they fall back to the current ones.
	c.state.Or(pollBit)
	defer c.state.And(^uint64(pollBit))
	ch := c.sf.DoChan("reload", func() (any, error) { return c.reload(ctx) })
	select {
	case <-ch:
	case <-ctx.Done():
	}
}
