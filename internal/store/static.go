package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
)

// StaticRecords are records declared in the config file.
type StaticRecords struct {
	Prefixes    []Prefix
	Scopes      []Scope
	Access      []Access
	Delegations []Delegation
	Clients     []Client
}

// WithStatic overlays the declared records on s, read-only, as dex's static
// clients do. Reads: a declared record wins over a database row with the same
// key, and lists merge both (sorted by key, as the database lists are).
// Writes in Update that touch a declared key fail with ErrReadOnly; creating
// a declared scope or client fails with an error that is both ErrConflict (it
// exists, which is what Create promises) and ErrReadOnly. Everything else
// passes through to s. When a key is declared twice, the first declaration
// counts: config validation reports duplicates.
func WithStatic(s Store, r StaticRecords) Store {
	return &staticStore{Store: s, rec: newStaticIndex(r)}
}

type accessKey struct{ scope, consumer string }

type delegationKey struct{ scope, consumer, supplier string }

type staticIndex struct {
	prefixes    map[string]Prefix
	scopes      map[string]Scope
	access      map[accessKey]Access
	delegations map[delegationKey]Delegation
	clients     map[string]Client
}

func index[K comparable, V any](records []V, key func(V) K) map[K]V {
	m := make(map[K]V, len(records))
	for _, r := range records {
		if _, dup := m[key(r)]; !dup {
			m[key(r)] = r
		}
	}
	return m
}

func newStaticIndex(r StaticRecords) *staticIndex {
	return &staticIndex{
		prefixes:    index(r.Prefixes, func(p Prefix) string { return p.Prefix }),
		scopes:      index(r.Scopes, func(s Scope) string { return s.Name }),
		access:      index(r.Access, func(a Access) accessKey { return accessKey{a.Scope, a.ConsumerOrgno} }),
		delegations: index(r.Delegations, func(d Delegation) delegationKey { return delegationKey{d.Scope, d.ConsumerOrgno, d.SupplierOrgno} }),
		clients:     index(r.Clients, func(c Client) string { return c.ClientID }),
	}
}

// merge returns the database rows that are not declared plus the declared
// rows that keep, sorted by key.
func merge[K comparable, V any](db []V, static map[K]V, key func(V) K, keep func(V) bool, less func(a, b V) int) []V {
	out := make([]V, 0, len(db)+len(static))
	for _, v := range db {
		if _, declared := static[key(v)]; !declared {
			out = append(out, v)
		}
	}
	for _, v := range static {
		if keep(v) {
			out = append(out, v)
		}
	}
	slices.SortFunc(out, less)
	return out
}

func all[V any](V) bool { return true }

// staticReader answers reads from the declared records, then from next.
type staticReader struct {
	next Reader
	rec  *staticIndex
}

func (r staticReader) GetPrefix(ctx context.Context, prefix string) (Prefix, error) {
	if p, ok := r.rec.prefixes[prefix]; ok {
		return p, nil
	}
	return r.next.GetPrefix(ctx, prefix)
}

func (r staticReader) ListPrefixes(ctx context.Context) ([]Prefix, error) {
	db, err := r.next.ListPrefixes(ctx)
	if err != nil {
		return nil, err
	}
	return merge(db, r.rec.prefixes, func(p Prefix) string { return p.Prefix }, all,
		func(a, b Prefix) int { return cmp.Compare(a.Prefix, b.Prefix) }), nil
}

func (r staticReader) GetScope(ctx context.Context, name string) (Scope, error) {
	if s, ok := r.rec.scopes[name]; ok {
		return s, nil
	}
	return r.next.GetScope(ctx, name)
}

func (r staticReader) ListScopes(ctx context.Context) ([]Scope, error) {
	db, err := r.next.ListScopes(ctx)
	if err != nil {
		return nil, err
	}
	return merge(db, r.rec.scopes, func(s Scope) string { return s.Name }, all,
		func(a, b Scope) int { return cmp.Compare(a.Name, b.Name) }), nil
}

func (r staticReader) GetAccess(ctx context.Context, scope, consumerOrgno string) (Access, error) {
	if a, ok := r.rec.access[accessKey{scope, consumerOrgno}]; ok {
		return a, nil
	}
	return r.next.GetAccess(ctx, scope, consumerOrgno)
}

func (r staticReader) ListAccess(ctx context.Context, f AccessFilter) ([]Access, error) {
	db, err := r.next.ListAccess(ctx, f)
	if err != nil {
		return nil, err
	}
	// A declared row hides its database twin even when the twin did not
	// match f: drop twins first, then add the declared rows that match.
	key := func(a Access) accessKey { return accessKey{a.Scope, a.ConsumerOrgno} }
	return merge(db, r.rec.access, key, f.Match, func(a, b Access) int {
		return cmp.Or(cmp.Compare(a.Scope, b.Scope), cmp.Compare(a.ConsumerOrgno, b.ConsumerOrgno))
	}), nil
}

func (r staticReader) GetDelegation(ctx context.Context, scope, consumerOrgno, supplierOrgno string) (Delegation, error) {
	if d, ok := r.rec.delegations[delegationKey{scope, consumerOrgno, supplierOrgno}]; ok {
		return d, nil
	}
	return r.next.GetDelegation(ctx, scope, consumerOrgno, supplierOrgno)
}

func (r staticReader) ListDelegations(ctx context.Context, f DelegationFilter) ([]Delegation, error) {
	db, err := r.next.ListDelegations(ctx, f)
	if err != nil {
		return nil, err
	}
	key := func(d Delegation) delegationKey { return delegationKey{d.Scope, d.ConsumerOrgno, d.SupplierOrgno} }
	return merge(db, r.rec.delegations, key, f.Match, func(a, b Delegation) int {
		return cmp.Or(cmp.Compare(a.Scope, b.Scope), cmp.Compare(a.ConsumerOrgno, b.ConsumerOrgno),
			cmp.Compare(a.SupplierOrgno, b.SupplierOrgno))
	}), nil
}

func (r staticReader) GetClient(ctx context.Context, clientID string) (Client, error) {
	if c, ok := r.rec.clients[clientID]; ok {
		return c, nil
	}
	return r.next.GetClient(ctx, clientID)
}

func (r staticReader) ListClients(ctx context.Context) ([]Client, error) {
	db, err := r.next.ListClients(ctx)
	if err != nil {
		return nil, err
	}
	return merge(db, r.rec.clients, func(c Client) string { return c.ClientID }, all,
		func(a, b Client) int { return cmp.Compare(a.ClientID, b.ClientID) }), nil
}

// staticStore overlays the reads of Store and guards the writes of Update.
type staticStore struct {
	Store // Generation, issued tokens, audit, Ping, Close pass through
	rec   *staticIndex
}

func (s *staticStore) reader() staticReader { return staticReader{next: s.Store, rec: s.rec} }

func (s *staticStore) GetPrefix(ctx context.Context, p string) (Prefix, error) {
	return s.reader().GetPrefix(ctx, p)
}
func (s *staticStore) ListPrefixes(ctx context.Context) ([]Prefix, error) {
	return s.reader().ListPrefixes(ctx)
}
func (s *staticStore) GetScope(ctx context.Context, n string) (Scope, error) {
	return s.reader().GetScope(ctx, n)
}
func (s *staticStore) ListScopes(ctx context.Context) ([]Scope, error) {
	return s.reader().ListScopes(ctx)
}
func (s *staticStore) GetAccess(ctx context.Context, scope, c string) (Access, error) {
	return s.reader().GetAccess(ctx, scope, c)
}
func (s *staticStore) ListAccess(ctx context.Context, f AccessFilter) ([]Access, error) {
	return s.reader().ListAccess(ctx, f)
}
func (s *staticStore) GetDelegation(ctx context.Context, scope, c, sup string) (Delegation, error) {
	return s.reader().GetDelegation(ctx, scope, c, sup)
}
func (s *staticStore) ListDelegations(ctx context.Context, f DelegationFilter) ([]Delegation, error) {
	return s.reader().ListDelegations(ctx, f)
}
func (s *staticStore) GetClient(ctx context.Context, id string) (Client, error) {
	return s.reader().GetClient(ctx, id)
}
func (s *staticStore) ListClients(ctx context.Context) ([]Client, error) {
	return s.reader().ListClients(ctx)
}

func (s *staticStore) Update(ctx context.Context, fn func(Tx) error) error {
	return s.Store.Update(ctx, func(tx Tx) error {
		return fn(&staticTx{staticReader: staticReader{next: tx, rec: s.rec}, tx: tx})
	})
}

// staticTx reads through the overlay and refuses writes to declared keys.
type staticTx struct {
	staticReader
	tx Tx
}

func readOnly(kind, key string) error {
	return fmt.Errorf("%s %q: %w", kind, key, ErrReadOnly)
}

// exists is the error of creating a declared record: it exists (ErrConflict)
// and is declared in config (ErrReadOnly).
func exists(kind, key string) error {
	return fmt.Errorf("%s %q: %w (%w)", kind, key, ErrConflict, ErrReadOnly)
}

func (t *staticTx) PutPrefix(ctx context.Context, p Prefix) error {
	if _, ok := t.rec.prefixes[p.Prefix]; ok {
		return readOnly("prefix", p.Prefix)
	}
	return t.tx.PutPrefix(ctx, p)
}

func (t *staticTx) CreateScope(ctx context.Context, s Scope) error {
	if _, ok := t.rec.scopes[s.Name]; ok {
		return exists("scope", s.Name)
	}
	return t.tx.CreateScope(ctx, s)
}

func (t *staticTx) UpdateScope(ctx context.Context, s Scope) error {
	if _, ok := t.rec.scopes[s.Name]; ok {
		return readOnly("scope", s.Name)
	}
	return t.tx.UpdateScope(ctx, s)
}

func (t *staticTx) PutAccess(ctx context.Context, a Access) error {
	if _, ok := t.rec.access[accessKey{a.Scope, a.ConsumerOrgno}]; ok {
		return readOnly("access", a.Scope+" for "+a.ConsumerOrgno)
	}
	return t.tx.PutAccess(ctx, a)
}

func (t *staticTx) PutDelegation(ctx context.Context, d Delegation) error {
	if _, ok := t.rec.delegations[delegationKey{d.Scope, d.ConsumerOrgno, d.SupplierOrgno}]; ok {
		return readOnly("delegation", d.Scope+" from "+d.ConsumerOrgno+" to "+d.SupplierOrgno)
	}
	return t.tx.PutDelegation(ctx, d)
}

func (t *staticTx) CreateClient(ctx context.Context, c Client) error {
	if _, ok := t.rec.clients[c.ClientID]; ok {
		return exists("client", c.ClientID)
	}
	return t.tx.CreateClient(ctx, c)
}

func (t *staticTx) UpdateClient(ctx context.Context, c Client) error {
	if _, ok := t.rec.clients[c.ClientID]; ok {
		return readOnly("client", c.ClientID)
	}
	return t.tx.UpdateClient(ctx, c)
}

func (t *staticTx) AppendAudit(ctx context.Context, e AuditEvent) error {
	return t.tx.AppendAudit(ctx, e)
}

// The Page methods ask the database for the page with room for every
// declared key it may hold (a declared record hides its twin), then merge.

func (r staticReader) PagePrefixes(ctx context.Context, p Page) ([]Prefix, error) {
	db, err := r.next.PagePrefixes(ctx, widen(p, len(r.rec.prefixes)))
	if err != nil {
		return nil, err
	}
	return mergePage(db, r.rec.prefixes, func(v Prefix) string { return v.Prefix }, Prefix.Key, all, p), nil
}

func (r staticReader) PageScopes(ctx context.Context, f ScopeFilter, p Page) ([]Scope, error) {
	db, err := r.next.PageScopes(ctx, f, widen(p, len(r.rec.scopes)))
	if err != nil {
		return nil, err
	}
	return mergePage(db, r.rec.scopes, func(v Scope) string { return v.Name }, Scope.Key, f.Match, p), nil
}

func (r staticReader) PageAccess(ctx context.Context, f AccessFilter, p Page) ([]Access, error) {
	db, err := r.next.PageAccess(ctx, f, widen(p, len(r.rec.access)))
	if err != nil {
		return nil, err
	}
	return mergePage(db, r.rec.access, func(v Access) accessKey { return accessKey{v.Scope, v.ConsumerOrgno} }, Access.Key, f.Match, p), nil
}

func (r staticReader) PageDelegations(ctx context.Context, f DelegationFilter, p Page) ([]Delegation, error) {
	db, err := r.next.PageDelegations(ctx, f, widen(p, len(r.rec.delegations)))
	if err != nil {
		return nil, err
	}
	return mergePage(db, r.rec.delegations, func(v Delegation) delegationKey {
		return delegationKey{v.Scope, v.ConsumerOrgno, v.SupplierOrgno}
	}, Delegation.Key, f.Match, p), nil
}

func (r staticReader) PageClients(ctx context.Context, f ClientFilter, p Page) ([]Client, error) {
	db, err := r.next.PageClients(ctx, f, widen(p, len(r.rec.clients)))
	if err != nil {
		return nil, err
	}
	return mergePage(db, r.rec.clients, func(v Client) string { return v.ClientID }, Client.Key, f.Match, p), nil
}

func (s *staticStore) PagePrefixes(ctx context.Context, p Page) ([]Prefix, error) {
	return s.reader().PagePrefixes(ctx, p)
}
func (s *staticStore) PageScopes(ctx context.Context, f ScopeFilter, p Page) ([]Scope, error) {
	return s.reader().PageScopes(ctx, f, p)
}
func (s *staticStore) PageAccess(ctx context.Context, f AccessFilter, p Page) ([]Access, error) {
	return s.reader().PageAccess(ctx, f, p)
}
func (s *staticStore) PageDelegations(ctx context.Context, f DelegationFilter, p Page) ([]Delegation, error) {
	return s.reader().PageDelegations(ctx, f, p)
}
func (s *staticStore) PageClients(ctx context.Context, f ClientFilter, p Page) ([]Client, error) {
	return s.reader().PageClients(ctx, f, p)
}

// Webhooks and events are never declared: they pass through.

func (r staticReader) GetWebhook(ctx context.Context, id string) (Webhook, error) {
	return r.next.GetWebhook(ctx, id)
}
func (r staticReader) PageWebhooks(ctx context.Context, f WebhookFilter, p Page) ([]Webhook, error) {
	return r.next.PageWebhooks(ctx, f, p)
}
func (t *staticTx) CreateWebhook(ctx context.Context, w Webhook) error {
	return t.tx.CreateWebhook(ctx, w)
}
func (t *staticTx) UpdateWebhook(ctx context.Context, w Webhook) error {
	return t.tx.UpdateWebhook(ctx, w)
}

// Members are never declared: they pass through.

func (r staticReader) GetMember(ctx context.Context, org, subject string) (Member, error) {
	return r.next.GetMember(ctx, org, subject)
}
func (r staticReader) PageMembers(ctx context.Context, f MemberFilter, p Page) ([]Member, error) {
	return r.next.PageMembers(ctx, f, p)
}
func (r staticReader) MembershipsOf(ctx context.Context, subject string) ([]Member, error) {
	return r.next.MembershipsOf(ctx, subject)
}
func (t *staticTx) PutMember(ctx context.Context, m Member) error {
	return t.tx.PutMember(ctx, m)
}
func (t *staticTx) DeleteMember(ctx context.Context, org, subject string) error {
	return t.tx.DeleteMember(ctx, org, subject)
}
func (t *staticTx) AppendEvent(ctx context.Context, e Event) (Event, error) {
	return t.tx.AppendEvent(ctx, e)
}
