package scaleout_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/config"
	"github.com/portvakt/portvakt/internal/pgtest"
	"github.com/portvakt/portvakt/internal/store"
	"github.com/portvakt/portvakt/internal/store/sqlstore"
	"github.com/portvakt/portvakt/internal/testserver"
	"github.com/portvakt/portvakt/pkg/client"
)

// One assertion, 50 concurrent submissions over two replicas: the
// issued-token insert lets exactly one through.
func TestReplayAcrossReplicas(t *testing.T) {
	dsn := pgtest.FreshSchema(t, postgresDSN(t))
	a := testserver.Start(t, testserver.Options{Driver: "postgres", DSN: dsn})
	b := testserver.Start(t, testserver.Options{Replica: a})
	c := a.PKI.ConsumerKID
	assertion, err := a.TokenSource(t, c, "demo:read").Assertion(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	_, claims, err := client.DecodeToken(assertion)
	if err != nil {
		t.Fatal(err)
	}
	jti, _ := claims["jti"].(string)

	const n = 50
	hc := newHTTPClient()
	results := make([]result, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		url := a.TokenURL
		if i%2 == 1 {
			url = b.TokenURL
		}
		wg.Go(func() {
			<-start
			results[i] = post(t.Context(), hc, url, assertion)
		})
	}
	close(start)
	wg.Wait()

	var ok, replay int
	for i, r := range results {
		switch {
		case r.err != nil:
			t.Errorf("request %d: %v", i, r.err)
		case r.status == http.StatusOK:
			ok++
		case r.status == http.StatusBadRequest && r.code == "invalid_grant":
			replay++
		default:
			t.Errorf("request %d: %d %s, want 200 or 400 invalid_grant", i, r.status, r.code)
		}
	}
	if ok != 1 || replay != n-1 {
		t.Errorf("%d tokens and %d invalid_grant, want 1 and %d", ok, replay, n-1)
	}
	if rows := sqlInt(t, dsn, "SELECT count(*) FROM issued_tokens WHERE client_id = $1 AND assertion_jti = $2", c.ID, jti); rows != 1 {
		t.Errorf("%d issued-token rows for the assertion, want 1", rows)
	}
	if rows := sqlInt(t, dsn, "SELECT count(*) FROM issued_tokens"); rows != 1 {
		t.Errorf("%d issued-token rows in all, want 1", rows)
	}
}

const dynScope = "demo:dyn"

// A change made anywhere is honoured by the other replica within a second:
// through replica A's self-service API and through another store (both
// announced by NOTIFY), and by raw SQL that only bumps the generation (the
// poll fallback).
func TestAccessChangeAcrossReplicas(t *testing.T) {
	dsn := pgtest.FreshSchema(t, postgresDSN(t))
	// The scope and its access row live in the database, not in the
	// declared records (those are read-only), so the API can change them.
	db, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: dsn, MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	setAccess := func(t *testing.T, state string) {
		t.Helper()
		err := db.Update(t.Context(), func(tx store.Tx) error {
			return tx.PutAccess(t.Context(), store.Access{Scope: dynScope, ConsumerOrgno: testserver.ConsumerOrg, OwnerOrgno: testserver.ProviderOrg, State: state})
		})
		if err != nil {
			t.Fatalf("put access %s: %v", state, err)
		}
	}
	err = db.Update(t.Context(), func(tx store.Tx) error {
		return tx.CreateScope(t.Context(), store.Scope{
			Name: dynScope, Prefix: "demo", Subscope: "dyn", Description: "changed by the test", Active: true,
			Visibility: store.VisibilityPublic, OwnerOrgno: testserver.ProviderOrg,
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	setAccess(t, store.AccessApproved)

	a := testserver.Start(t, testserver.Options{Driver: "postgres", DSN: dsn, Records: func(r *config.Records) {
		for i := range r.Clients {
			if r.Clients[i].ClientID == testserver.SharedPKI(t).ConsumerKID.ID {
				r.Clients[i].Scopes = append(r.Clients[i].Scopes, dynScope)
			}
		}
	}})
	b := testserver.Start(t, testserver.Options{Replica: a})
	hc := newHTTPClient()
	consumer := a.PKI.ConsumerKID
	if r := request(t, hc, b, consumer, dynScope); r.status != http.StatusOK {
		t.Fatalf("before any change, replica B: %d %s %v", r.status, r.code, r.err)
	}

	// honoured waits until replica B answers as wanted, and fails the test
	// when that took more than a second.
	honoured := func(t *testing.T, how string, since time.Time, granted bool) {
		t.Helper()
		for {
			r := request(t, hc, b, consumer, dynScope)
			switch {
			case r.err != nil:
				t.Fatalf("replica B: %v", r.err)
			case granted && r.status == http.StatusOK, !granted && r.status == http.StatusBadRequest && r.code == "invalid_scope":
				d := time.Since(since)
				t.Logf("%s: honoured by replica B after %v", how, d.Round(time.Millisecond))
				if d > time.Second {
					t.Errorf("%s: replica B took %v, want at most 1s", how, d)
				}
				return
			case r.status != http.StatusOK && r.code != "invalid_scope":
				t.Fatalf("replica B: %d %s", r.status, r.code)
			}
			if time.Since(since) > 10*time.Second {
				t.Fatalf("%s: replica B still answers %d after 10s", how, r.status)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	t.Run("ok/self-service-on-replica-a", func(t *testing.T) {
		admin := a.Token(t, a.PKI.ProviderAdmin, "portvakt:scopes.write")
		req, err := http.NewRequestWithContext(t.Context(), http.MethodDelete,
			a.URL+"api/v1/scopes/access/"+testserver.ConsumerOrg+"?scope="+dynScope, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+admin.AccessToken)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		committed := time.Now()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("revoke through replica A: %s", resp.Status)
		}
		if r := request(t, hc, a, consumer, dynScope); r.code != "invalid_scope" {
			t.Errorf("replica A itself after its own revoke: %d %s, want invalid_scope", r.status, r.code)
		}
		honoured(t, "revoke through replica A's API (NOTIFY)", committed, false)
	})
	t.Run("ok/another-store", func(t *testing.T) {
		setAccess(t, store.AccessApproved)
		honoured(t, "grant by another store's Update (NOTIFY)", time.Now(), true)
	})
	t.Run("ok/raw-sql-poll-fallback", func(t *testing.T) {
		// No NOTIFY here: only the generation counter tells the replicas.
		pgtest.Exec(t, dsn, `UPDATE access SET state = 'DENIED' WHERE scope = '`+dynScope+`' AND consumer_orgno = '`+testserver.ConsumerOrg+`';
UPDATE generation SET value = value + 1 WHERE id = 1`)
		honoured(t, "revoke by raw SQL (generation poll)", time.Now(), false)
	})
	for _, s := range []*testserver.Server{a, b} {
		if strings.Contains(s.Logs(), "rules change listener") {
			t.Errorf("%s: the listener lost its connection during the test", s.URL)
		}
	}
}
