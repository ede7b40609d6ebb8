package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/pgtest"
	"github.com/portvakt/portvakt/internal/store/sqlstore"
	"github.com/portvakt/portvakt/pkg/client"
)

// startReferenceInProcess runs the reference server, with the store named
// by storeDriver ("": none), in this process (the tool starts it as a child;
// the handler is the same) and returns its issuer and mix file.
func startReferenceInProcess(t *testing.T, storeDriver string) (issuer, mix string) {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveReference(ctx, dir, storeDriver) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("reference server: %v", err)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if issuer, mix, ok := referenceReady(dir); ok {
			return issuer, mix
		}
		if time.Now().After(deadline) {
			t.Fatal("reference server not listening after 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// referenceClient is the one client of the reference server's mix.
func referenceClient(t *testing.T, issuer, mix string) source {
	t.Helper()
	specs, err := readMix(mix)
	if err != nil {
		t.Fatal(err)
	}
	srcs, err := sources(t.Context(), issuer, "", specs)
	if err != nil {
		t.Fatal(err)
	}
	return srcs[0]
}

// loadCleanly runs the tool briefly against the reference server and checks
// that its summary names the reference and counts no errors.
func loadCleanly(t *testing.T, issuer, mix, label string, concurrency int) {
	t.Helper()
	var out bytes.Buffer
	err := bench(t.Context(), options{
		issuer: issuer, mix: mix, concurrency: concurrency, duration: 400 * time.Millisecond, rounds: 2,
		boundSample: 50 * time.Millisecond, rateEstimate: 500, driver: label,
		presignLimit: 20 * time.Second, warmupPerClient: 1,
	}, &out)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, out.String())
	}
	summary := summaryLine(out.String())
	for _, want := range []string{"driver=" + label + " ", "errors=none"} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary line lacks %q: %s", want, summary)
		}
	}
}

func TestReferenceServerUnderTheLoadTool(t *testing.T) {
	issuer, mix := startReferenceInProcess(t, "")
	loadCleanly(t, issuer, mix, "reference", 2)
}

func TestReferenceServerIssuesOnlyForItsClientsValidAssertions(t *testing.T) {
	issuer, mix := startReferenceInProcess(t, "")
	tok, err := referenceClient(t, issuer, mix).ts.Fetch(t.Context())
	if err != nil || tok.AccessToken == "" {
		t.Fatalf("token from the reference server: %v", err)
	}

	// Another key under the reference kid: the signature does not verify.
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s, err := client.KeySigner(other, refKID)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := client.NewTokenSource(t.Context(), client.Config{Issuer: issuer, ClientID: refClientID, Scopes: []string{"reference:read"}, Signer: s})
	if err != nil {
		t.Fatal(err)
	}
	a, err := ts.Assertion(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for name, form := range map[string]url.Values{
		"wrong key":        {"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {a}},
		"wrong grant type": {"grant_type": {"client_credentials"}, "assertion": {a}},
		"not a JWT":        {"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {"x.y.z"}},
	} {
		resp, err := http.PostForm(issuer+"token", form)
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			Error string `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || e.Error == "" {
			t.Errorf("%s: status %d error %q, want 400 with an OAuth error", name, resp.StatusCode, e.Error)
		}
	}
}

// referenceStores are the stores the reference runs with here: SQLite, and
// PostgreSQL in a schema of its own when PORTVAKT_TEST_POSTGRES_DSN is set
// (scripts/test.sh sets it; under CI its absence fails the test).
func referenceStores(t *testing.T) []string {
	t.Helper()
	stores := []string{sqlstore.DriverSQLite}
	dsn := os.Getenv("PORTVAKT_TEST_POSTGRES_DSN")
	switch {
	case dsn != "":
		t.Setenv(referenceDSNEnv, pgtest.FreshSchema(t, dsn))
		stores = append(stores, sqlstore.DriverPostgres)
	case os.Getenv("CI") != "":
		t.Fatal("PORTVAKT_TEST_POSTGRES_DSN is not set (scripts/test.sh starts PostgreSQL and sets it)")
	default:
		t.Log("SKIPPING the PostgreSQL store: PORTVAKT_TEST_POSTGRES_DSN is not set")
	}
	return stores
}

func TestReferenceServerWithAStoreIssuesOncePerAssertion(t *testing.T) {
	for _, driver := range referenceStores(t) {
		t.Run(driver, func(t *testing.T) {
			issuer, mix := startReferenceInProcess(t, driver)
			ts := referenceClient(t, issuer, mix).ts
			post := func(a string) (int, string) {
				t.Helper()
				resp, err := http.PostForm(issuer+"token", url.Values{"grant_type": {client.GrantType}, "assertion": {a}})
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var body struct {
					AccessToken string `json:"access_token"`
					Error       string `json:"error"`
				}
				_ = json.NewDecoder(resp.Body).Decode(&body)
				if resp.StatusCode == http.StatusOK && body.AccessToken == "" {
					t.Fatalf("200 without an access token")
				}
				return resp.StatusCode, body.Error
			}
			a, err := ts.Assertion(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if status, e := post(a); status != http.StatusOK {
				t.Fatalf("first use: status %d %s, want 200", status, e)
			}
			if status, e := post(a); status != http.StatusBadRequest || e != "invalid_grant" {
				t.Errorf("replay: status %d %q, want 400 invalid_grant", status, e)
			}
			b, err := ts.Assertion(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if status, e := post(b); status != http.StatusOK {
				t.Errorf("a fresh assertion after the replay: status %d %s, want 200", status, e)
			}
			loadCleanly(t, issuer, mix, "reference+"+driver, 4)
		})
	}
}

func TestReferenceStoreMustBeKnownAndPostgresNeedsItsDSN(t *testing.T) {
	t.Setenv(referenceDSNEnv, "")
	for driver, want := range map[string]string{
		"mysql":                 `reference store "mysql": want "sqlite" or "postgres"`,
		sqlstore.DriverPostgres: "set " + referenceDSNEnv,
	} {
		err := serveReference(t.Context(), t.TempDir(), driver)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("store %q: error %v, want one saying %q", driver, err, want)
		}
	}
}
