package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/portvakt/portvakt/internal/norid"
	"github.com/portvakt/portvakt/internal/protocol"
	"github.com/portvakt/portvakt/internal/store"
	"github.com/portvakt/portvakt/internal/store/sqlstore"
)

// seedCommand is `portvakt-bench seed ...`: fill a store with a dataset of a
// given size, through the store's own code (Update transactions and the
// issued-token insert), so that a server started on it runs at that size.
const seedCommand = "seed"

// dataset is the size of a seeded platform.
type dataset struct {
	Orgs, Scopes, Access, Delegations, Clients int
	// BigOrgClients of the clients belong to one org (the first seeded),
	// the org whose client list is measured.
	BigOrgClients int
	// OnlyTokens skips the records: only issued-token rows are added (a
	// purge backlog on a store seeded before).
	OnlyTokens bool
	// Tokens issued-token rows spread over the last TokenSpan, of which
	// FewTokens (at most) belong to the second seeded org, the org whose
	// audit view is measured; Expired rows are past Retention (a purge
	// backlog).
	Tokens, FewTokens, Expired int
	TokenSpan, Retention       time.Duration
}

// Sizes: S is a demo-sized platform, L a country's.
var datasets = map[string]dataset{
	"S": {Orgs: 100, Scopes: 300, Access: 1000, Delegations: 100, Clients: 300, BigOrgClients: 30, FewTokens: 17},
	"L": {Orgs: 20000, Scopes: 5000, Access: 200000, Delegations: 20000, Clients: 30000, BigOrgClients: 5000, FewTokens: 17},
}

// seedOrgs are the first n seeded organisation numbers: 9 digits, mod-11
// valid, in a range (9xxxxxxxx) apart from the dev and test orgs. A base
// whose check digit would be 10 has no valid number and is skipped.
func seedOrgs(n int) []string {
	orgs := make([]string, 0, n)
	for base := 90000000; len(orgs) < n; base++ {
		if org, ok := norid.CompleteOrg(strconv.Itoa(base)); ok {
			orgs = append(orgs, org)
		}
	}
	return orgs
}

func seedScope(i int) (prefix, name string) {
	prefix = fmt.Sprintf("sp%04d", i/10)
	return prefix, fmt.Sprintf("%s:s%d", prefix, i%10)
}

// seed writes the dataset d into the store behind cfg.
//
// When keyDir is set, the big org and the few-tokens org each also get an
// admin client with a registered key whose private half is written there
// (seed-admin.key.pem, kid seed-admin), so that their lists can be read
// through the API; their client ids are printed.
func seed(ctx context.Context, cfg sqlstore.Config, d dataset, now time.Time, keyDir string, out io.Writer) error {
	if d.Orgs < 2 || d.Scopes < 10 || d.Scopes%2 != 0 || d.Access > d.Scopes*min(d.Orgs, 1000) ||
		d.Delegations > d.Access/2 || d.BigOrgClients > d.Clients {
		return fmt.Errorf("seed: inconsistent sizes %+v", d)
	}
	st, err := sqlstore.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return err
	}
	start := time.Now()
	step := func(what string, n int, t0 time.Time) {
		fmt.Fprintf(out, "seeded %d %s in %s\n", n, what, time.Since(t0).Round(time.Millisecond))
	}

	orgs := seedOrgs(d.Orgs)
	if d.OnlyTokens {
		t0 := time.Now()
		if err := seedTokens(ctx, st, d, orgs, now); err != nil {
			return err
		}
		step("issued tokens", d.Tokens+d.Expired, t0)
		return nil
	}
	// Providers own ten scopes each; providers are the first orgs.
	t0 := time.Now()
	if err := batched(ctx, st, (d.Scopes+9)/10, func(tx store.Tx, i int) error {
		p, _ := seedScope(i * 10)
		return tx.PutPrefix(ctx, store.Prefix{Prefix: p, OwnerOrg: orgs[i%d.Orgs], Created: now, LastUpdated: now})
	}); err != nil {
		return err
	}
	if err := batched(ctx, st, d.Scopes, func(tx store.Tx, i int) error {
		p, name := seedScope(i)
		s := store.Scope{Name: name, Prefix: p, Subscope: name[len(p)+1:], Active: true,
			Description: "seeded scope " + name, LongDescription: "A scope seeded for scale measurements.",
			AllowedIntegrationTypes: []string{}, Audiences: []string{}, Visibility: store.VisibilityPublic,
			OwnerOrgno: orgs[(i/10)%d.Orgs], Created: now, LastUpdated: now}
		switch {
		case i%2 == 0:
			s.DelegationSource = "seed" // delegable (the delegations below use even scopes)
		case i%7 == 1:
			s.AccessibleForAll = true
		case i%7 == 3:
			s.Visibility = store.VisibilityPrivate
		}
		return tx.CreateScope(ctx, s)
	}); err != nil {
		return err
	}
	step("prefixes and scopes", d.Scopes, t0)

	// Access row k: scope k % Scopes for its (k / Scopes)-th consumer, so the
	// pairs are unique while Access <= Scopes * Orgs.
	accessOf := func(k int) (scope int, consumer int) {
		scope = k % d.Scopes
		return scope, (k/d.Scopes + scope*37) % d.Orgs
	}
	orgScopes := make(map[int][]string, d.Orgs)
	t0 = time.Now()
	if err := batched(ctx, st, d.Access, func(tx store.Tx, k int) error {
		si, ci := accessOf(k)
		_, name := seedScope(si)
		if len(orgScopes[ci]) < 3 {
			orgScopes[ci] = append(orgScopes[ci], name)
		}
		return tx.PutAccess(ctx, store.Access{Scope: name, ConsumerOrgno: orgs[ci], OwnerOrgno: orgs[(si/10)%d.Orgs],
			State: store.AccessApproved, Created: now, LastUpdated: now})
	}); err != nil {
		return err
	}
	step("access rows", d.Access, t0)

	// Delegation k: the consumer of access row 2k (an even, so delegable,
	// scope) delegates it to the next org.
	t0 = time.Now()
	if err := batched(ctx, st, d.Delegations, func(tx store.Tx, k int) error {
		si, ci := accessOf(2 * k)
		_, name := seedScope(si)
		return tx.PutDelegation(ctx, store.Delegation{Scope: name, ConsumerOrgno: orgs[ci], SupplierOrgno: orgs[(ci+1)%d.Orgs],
			State: store.DelegationActive, Created: now, LastUpdated: now})
	}); err != nil {
		return err
	}
	step("delegations", d.Delegations, t0)

	jwk, err := seedJWK()
	if err != nil {
		return err
	}
	t0 = time.Now()
	if err := batched(ctx, st, d.Clients, func(tx store.Tx, i int) error {
		org := 0
		if i >= d.BigOrgClients {
			org = 1 + (i-d.BigOrgClients)%(d.Orgs-1)
		}
		c := store.Client{ClientID: uuid.NewSHA1(uuid.NameSpaceOID, []byte("portvakt-seed-client-"+strconv.Itoa(i))).String(),
			ClientOrgno: orgs[org], ClientName: fmt.Sprintf("seeded client %d", i), Description: "seeded for scale measurements",
			IntegrationType: protocol.IntegrationMaskinporten, TokenEndpointAuthMethod: protocol.AuthPrivateKeyJWT,
			Scopes: append([]string{}, orgScopes[org]...), Keys: []store.ClientKey{}, Active: true, Created: now, LastUpdated: now}
		if i%2 == 0 {
			c.Keys = []store.ClientKey{{KID: "seed-key-" + strconv.Itoa(i), JWK: jwk, Created: now, Expires: now.AddDate(1, 0, 0)}}
		}
		return tx.CreateClient(ctx, c)
	}); err != nil {
		return err
	}
	step("clients", d.Clients, t0)

	if keyDir != "" {
		if err := seedAdmins(ctx, st, keyDir, orgs[:2], now, out); err != nil {
			return err
		}
	}

	t0 = time.Now()
	if err := seedTokens(ctx, st, d, orgs, now); err != nil {
		return err
	}
	step("issued tokens", d.Tokens+d.Expired, t0)
	fmt.Fprintf(out, "seed done in %s: big org %s (%d clients), few-tokens org %s\n",
		time.Since(start).Round(time.Millisecond), orgs[0], d.BigOrgClients, orgs[1])
	return nil
}

// seedBatch is how many records one seeding transaction writes.
const seedBatch = 500

// batched calls put for 0..n-1, seedBatch calls per Update.
func batched(ctx context.Context, st store.Store, n int, put func(tx store.Tx, i int) error) error {
	for lo := 0; lo < n; lo += seedBatch {
		hi := min(n, lo+seedBatch)
		if err := st.Update(ctx, func(tx store.Tx) error {
			for i := lo; i < hi; i++ {
				if err := put(tx, i); err != nil {
					return fmt.Errorf("seed record %d: %w", i, err)
				}
			}
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// seedTokens inserts the issued-token rows through the store's insert (and
// its group commit) from many goroutines. Row k of the few-tokens org is
// every (Tokens / FewTokens)-th; the others go to the other orgs in turn.
func seedTokens(ctx context.Context, st store.Store, d dataset, orgs []string, now time.Time) error {
	span := d.TokenSpan
	if span <= 0 {
		span = 72 * time.Hour
	}
	retention := d.Retention
	if retention <= 0 {
		retention = 90 * 24 * time.Hour
	}
	every := 0
	if d.FewTokens > 0 && d.Tokens > 0 {
		every = max(1, d.Tokens/d.FewTokens)
	}
	total := d.Tokens + d.Expired
	run := strconv.FormatInt(now.UnixNano(), 36) // keys unique across seeding runs
	const workers = 32
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for w := range workers {
		wg.Go(func() {
			for k := w; k < total; k += workers {
				org := orgs[2+k%(len(orgs)-2)]
				iat := now.Add(-time.Duration(int64(span) / int64(max(1, d.Tokens)) * int64(k)))
				if k >= d.Tokens {
					iat = now.Add(-retention - time.Hour - time.Duration(k-d.Tokens)*time.Millisecond)
				} else if every > 0 && k%every == 0 && k/every < d.FewTokens {
					org = orgs[1]
				}
				_, scope := seedScope(k % d.Scopes)
				err := st.InsertIssuedToken(ctx, store.IssuedToken{
					ClientID: "seed", AssertionJTI: "seed-" + run + "-" + strconv.Itoa(k), TokenJTI: "seed-" + run + "-" + strconv.Itoa(k),
					ConsumerOrgno: org, Scopes: []string{scope}, Audience: []string{},
					IssuedAt: iat.Truncate(time.Second), ExpiresAt: iat.Truncate(time.Second).Add(2 * time.Minute),
					ClientAMR: protocol.AMRPrivateKeyJWT,
				})
				if err != nil && !errors.Is(err, store.ErrConflict) {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// seedAdminKID names the seeded admin clients' key.
const seedAdminKID = "seed-admin"

// seedAdminClient is the client id of the seeded admin client of org.
func seedAdminClient(org string) string {
	return uuid.NewSHA1(uuid.NameSpaceOID, []byte("portvakt-seed-admin-"+org)).String()
}

// seedAdmins gives each of orgs an admin client (read scopes and audit)
// whose key is written to keyDir/seed-admin.key.pem.
func seedAdmins(ctx context.Context, st store.Store, keyDir string, orgs []string, now time.Time, out io.Writer) error {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return err
	}
	path := filepath.Join(keyDir, "seed-admin.key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return err
	}
	jwk, err := json.Marshal(jose.JSONWebKey{Key: k.Public(), KeyID: seedAdminKID, Algorithm: "ES256", Use: "sig"})
	if err != nil {
		return err
	}
	return st.Update(ctx, func(tx store.Tx) error {
		for _, org := range orgs {
			id := seedAdminClient(org)
			if err := tx.CreateClient(ctx, store.Client{ClientID: id, ClientOrgno: org, ClientName: "seed admin",
				Description: "reads the seeded org's lists", IntegrationType: protocol.IntegrationMaskinporten,
				TokenEndpointAuthMethod: protocol.AuthPrivateKeyJWT,
				Scopes:                  []string{"portvakt:clients.read", "portvakt:scopes.read", "portvakt:audit.read"},
				Keys:                    []store.ClientKey{{KID: seedAdminKID, JWK: jwk, Created: now, Expires: now.AddDate(1, 0, 0)}},
				Active:                  true, Created: now, LastUpdated: now}); err != nil {
				return err
			}
			fmt.Fprintf(out, "admin client of %s: %s (key %s, kid %s)\n", org, id, path, seedAdminKID)
		}
		return nil
	})
}

// seedJWK is one public EC key shared by the seeded clients' key sets.
func seedJWK() (json.RawMessage, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return json.Marshal(jose.JSONWebKey{Key: k.Public(), KeyID: "seed", Algorithm: "ES256", Use: "sig"})
}

// runSeed parses `portvakt-bench seed` flags and seeds.
func runSeed(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("portvakt-bench seed", flag.ContinueOnError)
	size := fs.String("size", "S", "dataset: S (100 orgs, 300 scopes, 1,000 access rows, 300 clients) or L (20,000 orgs, 5,000 scopes, 200,000 access rows, 20,000 delegations, 30,000 clients)")
	driver := fs.String("driver", "sqlite", "store: sqlite or postgres")
	dsn := fs.String("dsn", envOr("PORTVAKT_DATABASE_DSN", ".portvakt-dev/portvakt.db"), "the store's DSN: an SQLite file or a PostgreSQL URL (env PORTVAKT_DATABASE_DSN)")
	tokens := fs.Int("tokens", 0, "issued-token rows within the last --token-span (the audit view's haystack)")
	expired := fs.Int("expired", 0, "issued-token rows past the audit retention (a purge backlog)")
	span := fs.Duration("token-span", 72*time.Hour, "the live tokens' issue times spread over this span before now")
	retention := fs.Duration("retention", 90*24*time.Hour, "the server's audit.retention: --expired rows are older")
	onlyTokens := fs.Bool("only-tokens", false, "add only the issued-token rows (to a store seeded before with the same --size)")
	keyDir := fs.String("key-dir", "", "write the measured orgs' admin key here and give those orgs an admin client (empty: none)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	d, ok := datasets[*size]
	if !ok {
		return fmt.Errorf("seed: --size must be S or L, not %q", *size)
	}
	d.Tokens, d.Expired, d.TokenSpan, d.Retention, d.OnlyTokens = *tokens, *expired, *span, *retention, *onlyTokens
	return seed(ctx, sqlstore.Config{Driver: *driver, DSN: *dsn}, d, time.Now().UTC(), *keyDir, out)
}
