package testserver_test

import (
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/portvakt/portvakt/internal/config"
	"github.com/portvakt/portvakt/internal/testserver"
)

func TestMain(m *testing.M) { os.Exit(testserver.Main(m)) }

func TestStart(t *testing.T) {
	s := testserver.Start(t, testserver.Options{
		Records: func(r *config.Records) {
			r.Scopes = append(r.Scopes, config.ScopeRecord{Prefix: "demo", Subscope: "extra", Description: "added by the test", AccessibleForAll: true})
			r.Clients[1].Scopes = append(r.Clients[1].Scopes, "demo:extra")
		},
	})
	p := s.PKI
	for _, tc := range []struct {
		name   string
		c      testserver.Client
		scopes []string
	}{
		{"ok/certificate", p.ConsumerCert, []string{"demo:read", "demo:write"}},
		{"ok/kid", p.ConsumerKID, []string{"demo:read"}},
		{"ok/declared-by-option", p.ConsumerKID, []string{"demo:extra"}},
		{"ok/admin", p.ProviderAdmin, []string{"portvakt:scopes.read"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := s.Token(t, tc.c, tc.scopes...)
			if resp.Scope != strings.Join(tc.scopes, " ") {
				t.Errorf("scope %q, want %q", resp.Scope, strings.Join(tc.scopes, " "))
			}
		})
	}
	t.Run("ok/ops", func(t *testing.T) {
		resp, err := http.Get(s.OpsURL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("healthz: %s", resp.Status)
		}
	})
	t.Run("ok/logs", func(t *testing.T) {
		var access int
		for _, rec := range s.LogRecords() {
			if _, ok := rec["status"]; ok {
				access++
			}
		}
		if access == 0 {
			t.Errorf("no access log line in:\n%s", s.Logs())
		}
	})
}

func TestStop(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	s.Stop(t)
	if !s.Exited() {
		t.Fatal("still running after Stop")
	}
	if !strings.Contains(s.Logs(), "portvakt serving") {
		t.Errorf("no start-up line in the log:\n%s", s.Logs())
	}
}

func TestReplica(t *testing.T) {
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run("ok/"+driver, func(t *testing.T) {
			var dsn string
			if driver == "postgres" {
				dsn = testserver.PostgresDSN(t)
			}
			testReplica(t, testserver.Options{Driver: driver, DSN: dsn})
		})
	}
}

func testReplica(t *testing.T, o testserver.Options) {
	a := testserver.Start(t, o)
	b := testserver.Start(t, testserver.Options{Replica: a})
	if b.Issuer != a.Issuer || b.TokenURL == a.TokenURL {
		t.Fatalf("replica: issuer %s token %s; first: issuer %s token %s", b.Issuer, b.TokenURL, a.Issuer, a.TokenURL)
	}
	if b.DSN != a.DSN {
		t.Fatalf("replica DSN %q, first %q", b.DSN, a.DSN)
	}
	for _, s := range []*testserver.Server{a, b} {
		s.Token(t, s.PKI.ConsumerKID, "demo:read")
	}
}
