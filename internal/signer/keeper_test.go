package signer_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/portvakt/portvakt/internal/pgtest"
	"github.com/portvakt/portvakt/internal/server"
	"github.com/portvakt/portvakt/internal/signer"
	"github.com/portvakt/portvakt/internal/store"
	"github.com/portvakt/portvakt/internal/store/sqlstore"
	"github.com/portvakt/portvakt/pkg/resource"
)

const (
	issuer = "http://127.0.0.1/"
	day    = 24 * time.Hour
	poll   = time.Second
)

var (
	t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	// step is how far the clock moves between two ticks of the replicas in
	// rotate: shorter than the JWKS max-age, and the time a change takes to
	// reach every replica.
	step   = signer.JWKSMaxAge - 30*time.Second
	policy = signer.Policy{Interval: 10 * day, PrePublish: day, Retain: 2*time.Hour + 10*time.Second, Propagation: step}
)

// clock is the pinned clock every part of a test shares.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func openSQLite(t *testing.T) (*sqlstore.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "portvakt.db")
	return openMigrated(t, sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: path}), path
}

func openPostgres(t *testing.T, dsn string) *sqlstore.Store {
	t.Helper()
	return openMigrated(t, sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: dsn})
}

func openMigrated(t *testing.T, cfg sqlstore.Config) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

func kek(t *testing.T) *signer.KEK {
	t.Helper()
	b := make([]byte, signer.KEKSize)
	_, _ = rand.Read(b)
	k, err := signer.ParseKEK(base64.StdEncoding.EncodeToString(b))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func keeper(t *testing.T, st signer.KeyStore, k *signer.KEK, c *clock, owner string) *signer.Keeper {
	t.Helper()
	kp, err := signer.NewKeeper(t.Context(), signer.KeeperConfig{Store: st, Vault: k, Policy: policy, Algorithm: "ES256",
		Owner: owner, PollInterval: poll, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// serveJWKS serves a replica's /jwk through the server's own handler.
func serveJWKS(t *testing.T, kp *signer.Keeper) string {
	t.Helper()
	h, err := server.Public{Issuer: issuer, Token: http.NotFoundHandler(), JWKS: kp.Set().JWKS, Log: slog.New(slog.DiscardHandler)}.Handler()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL + "/jwk"
}

// verifier verifies through jwksURL, caching the JWKS for exactly its
// max-age: an unknown kid does not make it fetch sooner.
func verifier(t *testing.T, jwksURL string, c *clock) *resource.Verifier {
	t.Helper()
	ks, err := resource.NewRemoteKeySet(t.Context(), resource.RemoteKeySetConfig{JWKSURL: jwksURL,
		RefreshInterval: signer.JWKSMaxAge, MinRefreshInterval: signer.JWKSMaxAge, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	v, err := resource.NewVerifier(t.Context(), resource.VerifierConfig{Issuer: issuer, KeySet: ks, NoLeeway: true, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func published(t *testing.T, jwksURL string) []string {
	t.Helper()
	resp, err := http.Get(jwksURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=300" {
		t.Errorf("Cache-Control %q", cc)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.KeyID)
	}
	slices.Sort(kids)
	return kids
}

type token struct {
	jwt string
	kid string
	exp time.Time
}

func sign(t *testing.T, kp *signer.Keeper, now time.Time) token {
	t.Helper()
	exp := now.Add(2 * time.Hour)
	s, err := kp.Set().Sign(map[string]any{"iss": issuer, "iat": now.Unix(), "exp": exp.Unix(), "client_id": "c1",
		"consumer": map[string]string{"authority": "iso6523-actorid-upis", "ID": "0192:910000001"}})
	if err != nil {
		t.Fatal(err)
	}
	return token{jwt: s, kid: kp.Set().Active().ID, exp: exp}
}

func tick(t *testing.T, kps ...*signer.Keeper) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(kps))
	for i, kp := range kps {
		wg.Go(func() { errs[i] = kp.Tick(t.Context()) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// rotate walks the clock from t0 through one rotation and the removal of
// the old key in steps shorter than the JWKS max-age, ticking every
// replica at each step (concurrently), signing on each and verifying every
// token not yet expired through the first replica's /jwk with a verifier
// that caches it for max-age. It returns the old and the new kid.
func rotate(t *testing.T, c *clock, kps ...*signer.Keeper) (string, string) {
	t.Helper()
	jwks := serveJWKS(t, kps[0])
	v := verifier(t, jwks, c)
	old := kps[0].Set().Active().ID
	var tokens []token
	var next string
	var nextSeen, activated time.Time
	due := t0.Add(policy.Interval - policy.PrePublish)
	// Jump close to the first event, then walk.
	for now := due.Add(-time.Hour); now.Before(due.Add(policy.PrePublish + policy.Retain + time.Hour)); now = now.Add(step) {
		if now.After(due.Add(time.Hour)) && now.Before(due.Add(policy.PrePublish-time.Hour)) {
			now = due.Add(policy.PrePublish - time.Hour) // the quiet day in between
		}
		c.Set(now)
		tick(t, kps...)
		kids := published(t, jwks)
		for _, kp := range kps {
			tk := sign(t, kp, now)
			tokens = append(tokens, tk)
			if tk.kid != old {
				if next == "" {
					t.Fatalf("at %v a token names %s, never published as NEXT", now, tk.kid)
				}
				if tk.kid != next {
					t.Fatalf("at %v a token names %s, want the next key %s", now, tk.kid, next)
				}
				if now.Sub(nextSeen) < policy.PrePublish {
					t.Fatalf("at %v a token names %s, published only since %v", now, tk.kid, nextSeen)
				}
				if activated.IsZero() {
					activated = now
				}
			} else if !activated.IsZero() && now.Sub(activated) >= poll {
				t.Fatalf("at %v a replica still signs with %s, activated %s at %v", now, old, next, activated)
			}
		}
		if next == "" && len(kids) == 2 {
			next = kids[0]
			if next == old {
				next = kids[1]
			}
			nextSeen = now
			if now.Before(due) {
				t.Fatalf("the next key was published at %v, before %v", now, due)
			}
		}
		if !activated.IsZero() && now.Sub(activated) >= policy.Retain {
			if slices.Contains(kids, old) {
				t.Fatalf("at %v the old key is still published, %v after activation", now, now.Sub(activated))
			}
		} else if !slices.Contains(kids, old) {
			t.Fatalf("at %v the old key left /jwk too early", now)
		}
		for _, tk := range tokens {
			if !now.Before(tk.exp) {
				continue
			}
			if _, err := v.Verify(t.Context(), tk.jwt); err != nil {
				t.Fatalf("at %v a token of %s expiring %v does not verify through /jwk: %v", now, tk.kid, tk.exp, err)
			}
		}
	}
	if activated.IsZero() {
		t.Fatal("the next key never became CURRENT")
	}
	return old, next
}

func TestRotationThroughJWKS(t *testing.T) {
	t.Parallel()
	st, _ := openSQLite(t)
	c := &clock{t: t0}
	kp := keeper(t, st, kek(t), c, "r1")
	old, next := rotate(t, c, kp)
	keys, err := st.ListSigningKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].KID != next || keys[0].State != store.SigningKeyCurrent {
		t.Fatalf("after the rotation: %+v; want only %s CURRENT (%s removed)", keys, next, old)
	}
}

func TestTwoReplicasRotateOncePostgres(t *testing.T) {
	t.Parallel()
	dsn := pgtest.FreshSchema(t, pgtest.DSN(t))
	a, b := openPostgres(t, dsn), openPostgres(t, dsn)
	c := &clock{t: t0}
	k := kek(t)
	// Both replicas start on an empty store at once: one key wins.
	var kpA, kpB *signer.Keeper
	var wg sync.WaitGroup
	wg.Go(func() { kpA = keeper(t, a, k, c, "a") })
	wg.Go(func() { kpB = keeper(t, b, k, c, "b") })
	wg.Wait()
	if kpA == nil || kpB == nil {
		t.FailNow()
	}
	if kpA.Set().Active().ID != kpB.Set().Active().ID {
		t.Fatalf("the replicas start with different keys %s and %s", kpA.Set().Active().ID, kpB.Set().Active().ID)
	}
	err := a.Update(t.Context(), func(tx store.Tx) error {
		return tx.CreateWebhook(t.Context(), store.Webhook{ID: "w1", Org: "310000019", URL: "https://hook.example/",
			Events: []string{store.EventSigningKeyRotated}, Active: true, Created: t0, LastUpdated: t0})
	})
	if err != nil {
		t.Fatal(err)
	}
	_, next := rotate(t, c, kpA, kpB)
	keys, err := a.ListSigningKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].KID != next {
		t.Fatalf("after the rotation: %+v; want exactly one rotation to %s", keys, next)
	}
	ds, err := b.ClaimDeliveries(t.Context(), store.DeliveryClaim{Now: c.Now(), Owner: "x", Lease: time.Minute, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].Event.Name != store.EventSigningKeyRotated || !bytes.Contains(ds[0].Event.Record, []byte(next)) {
		t.Fatalf("deliveries %+v; want one signing_key.rotated naming %s", ds, next)
	}
	if err := b.FinishDelivery(t.Context(), store.DeliveryResult{WebhookID: "w1", EventID: ds[0].Event.ID, Owner: "x",
		Attempt: ds[0].Attempt, Time: c.Now(), Status: 200, State: store.DeliveryDelivered}); err != nil {
		t.Fatal(err)
	}
	if more, err := b.ClaimDeliveries(t.Context(), store.DeliveryClaim{Now: c.Now(), Owner: "x", Lease: time.Minute, Limit: 10}); err != nil || len(more) != 0 {
		t.Fatalf("a second event: %+v, %v; want exactly one rotation event", more, err)
	}
}

// rotate --now: the new key signs at once, and the old key's tokens stop
// verifying once a verifier's cache runs out.
func TestRotateNow(t *testing.T) {
	t.Parallel()
	st, _ := openSQLite(t)
	c := &clock{t: t0}
	k := kek(t)
	kp := keeper(t, st, k, c, "r1")
	jwks := serveJWKS(t, kp)
	v := verifier(t, jwks, c)
	old := sign(t, kp, t0)
	if _, err := v.Verify(t.Context(), old.jwt); err != nil {
		t.Fatal(err)
	}
	keys, err := st.ListSigningKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ch, err := policy.RotateNow(keys, t0, signer.Generator("ES256", k))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.ChangeSigningKeys(t.Context(), ch); err != nil {
		t.Fatal(err)
	}
	tick(t, kp)
	fresh := sign(t, kp, t0)
	if fresh.kid == old.kid {
		t.Fatal("rotate --now: still signing with the old key")
	}
	if kids := published(t, jwks); slices.Contains(kids, old.kid) || !slices.Contains(kids, fresh.kid) {
		t.Fatalf("rotate --now: /jwk holds %v; want %s and not %s", kids, fresh.kid, old.kid)
	}
	c.Set(t0.Add(signer.JWKSMaxAge))
	if _, err := v.Verify(t.Context(), fresh.jwt); err != nil {
		t.Fatalf("the new key's token: %v", err)
	}
	if _, err := v.Verify(t.Context(), old.jwt); err == nil {
		t.Fatal("a token of the withdrawn key still verifies after the JWKS max-age")
	}
}

// The store holds the private keys sealed only, and a wrong KEK is a clear
// error at start.
func TestStoreHoldsNoPlaintextKey(t *testing.T) {
	t.Parallel()
	st, path := openSQLite(t)
	c := &clock{t: t0}
	k := kek(t)
	kp := keeper(t, st, k, c, "r1")
	ch, err := policy.Rotate(nil, t0, signer.Generator("ES256", k))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.ChangeSigningKeys(t.Context(), ch); err != nil {
		t.Fatal(err)
	}
	keys, err := st.ListSigningKeys(t.Context())
	if err != nil || len(keys) != 2 {
		t.Fatalf("keys %+v, %v", keys, err)
	}
	priv := kp.Set().Active().Private.(*ecdsa.PrivateKey)
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	secrets := [][]byte{der, priv.D.Bytes(), []byte(base64.StdEncoding.EncodeToString(der)),
		[]byte(base64.RawURLEncoding.EncodeToString(priv.D.Bytes()))}
	files, _ := filepath.Glob(path + "*") // the database, its WAL and shared memory
	if len(files) == 0 {
		t.Fatal("no database files")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if bytes.Contains(b, s) {
				t.Fatalf("%s holds the private key in clear", filepath.Base(f))
			}
		}
	}
	for _, r := range keys {
		if bytes.Contains(r.PublicJWK, []byte(`"d"`)) {
			t.Fatalf("the public JWK of %s holds a private part", r.KID)
		}
	}
	_, err = signer.NewKeeper(t.Context(), signer.KeeperConfig{Store: st, Vault: kek(t), Policy: policy, Now: c.Now})
	if !errors.Is(err, signer.ErrWrongKEK) {
		t.Fatalf("a wrong KEK: %v, want ErrWrongKEK", err)
	}
}

// keyStates records what a Keeper tells its Observer.
type keyStates struct{ got []signer.KeyState }

func (k *keyStates) KeysLoaded(s signer.KeyState) { k.got = append(k.got, s) }
func (k *keyStates) last() signer.KeyState        { return k.got[len(k.got)-1] }

// The Observer is told, at each reload, when the CURRENT key began to
// sign, whether a NEXT key is published and when the first RETIRED key
// leaves: what the key-age metrics and alerts are made of.
func TestKeeperTellsItsObserver(t *testing.T) {
	db, _ := openSQLite(t)
	c := &clock{t: t0}
	var obs keyStates
	kp, err := signer.NewKeeper(t.Context(), signer.KeeperConfig{Store: db, Vault: kek(t), Policy: policy, Algorithm: "ES256",
		Owner: "a", PollInterval: poll, Now: c.Now, Observer: &obs})
	if err != nil {
		t.Fatal(err)
	}
	want := func(what string, s signer.KeyState, activated, nextPublished time.Time, retired int, leaves time.Time) {
		t.Helper()
		if !s.CurrentActivated.Equal(activated) || !s.NextPublished.Equal(nextPublished) || s.Retired != retired || !s.RetiredLeaves.Equal(leaves) {
			t.Fatalf("%s: told %+v; want current activated %s, next published %s, %d retired leaving %s", what, s, activated, nextPublished, retired, leaves)
		}
		if s.Policy.Interval != policy.Interval || s.Policy.PrePublish != policy.PrePublish {
			t.Fatalf("%s: policy %+v", what, s.Policy)
		}
	}
	want("first start", obs.last(), t0, time.Time{}, 0, time.Time{})
	due := t0.Add(policy.Interval - policy.PrePublish)
	c.Set(due)
	tick(t, kp)
	want("NEXT made", obs.last(), t0, due, 0, time.Time{})
	act := due.Add(policy.PrePublish + policy.Propagation)
	c.Set(act)
	tick(t, kp)
	want("rotated", obs.last(), act, time.Time{}, 1, act.Add(policy.Retain))
	c.Set(act.Add(policy.Retain))
	tick(t, kp)
	want("old key gone", obs.last(), act, time.Time{}, 0, time.Time{})
}
