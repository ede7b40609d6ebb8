package interop

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/portvakt/portvakt/internal/testserver"
	"github.com/portvakt/portvakt/pkg/client"
	"github.com/portvakt/portvakt/pkg/resource"
)

func verifier(t *testing.T, s *testserver.Server) *resource.Verifier {
	t.Helper()
	v, err := resource.NewVerifier(t.Context(), resource.VerifierConfig{Issuer: s.Issuer})
	if err != nil {
		t.Fatalf("resource.NewVerifier: %v", err)
	}
	return v
}

// api is a provider's API protected by pkg/resource: it answers with what the
// middleware handed it.
func api(t *testing.T, s *testserver.Server, scope string) *httptest.Server {
	t.Helper()
	v := verifier(t, s)
	h := resource.RequireScope(v, scope)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := resource.FromContext(r.Context())
		_ = json.NewEncoder(w).Encode(map[string]any{
			"consumer": c.ConsumerOrg, "supplier": c.SupplierOrg, "delegated": c.Delegated(), "scopes": c.Scopes,
		})
	}))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

type answer struct {
	Consumer, Supplier string
	Delegated          bool
	Scopes             []string
}

func get(t *testing.T, hc *http.Client, url string) (int, http.Header, answer) {
	t.Helper()
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a answer
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, resp.Header, a
}

// TestLibraries runs pkg/client against pkg/resource through the real server:
// the consumer side in three lines, the provider side in one.
func TestLibraries(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	p := s.PKI
	read := api(t, s, "demo:read")
	ctx := t.Context()

	t.Run("ok/direct", func(t *testing.T) {
		// The three lines a consumer writes (issuer only: discovery finds the
		// token endpoint).
		ts, err := client.NewTokenSource(ctx, client.Config{Issuer: s.Issuer, ClientID: p.ConsumerCert.ID, Scopes: []string{"demo:read"}, Signer: p.ConsumerCert.Signer})
		if err != nil {
			t.Fatal(err)
		}
		hc := &http.Client{Transport: &oauth2.Transport{Source: ts}}

		code, _, a := get(t, hc, read.URL)
		if code != http.StatusOK || a.Consumer != testserver.ConsumerOrg || a.Delegated || a.Supplier != "" {
			t.Fatalf("%d %+v", code, a)
		}
		// The token is cached: a second call makes no new grant.
		before := strings.Count(s.Logs(), `"/token"`)
		get(t, hc, read.URL)
		if after := strings.Count(s.Logs(), `"/token"`); after != before {
			t.Errorf("second call fetched a new token (%d token requests, was %d)", after, before)
		}
	})
	t.Run("ok/delegated", func(t *testing.T) {
		ts, err := client.NewTokenSource(ctx, client.Config{Issuer: s.Issuer, ClientID: p.VendorCert.ID, Scopes: []string{"demo:read"},
			ConsumerOrg: testserver.ConsumerOrg, Signer: p.VendorCert.Signer})
		if err != nil {
			t.Fatal(err)
		}
		code, _, a := get(t, &http.Client{Transport: &oauth2.Transport{Source: ts}}, read.URL)
		if code != http.StatusOK || a.Consumer != testserver.ConsumerOrg || a.Supplier != testserver.VendorOrg || !a.Delegated {
			t.Fatalf("%d %+v", code, a)
		}
	})
	t.Run("ok/kid", func(t *testing.T) {
		code, _, a := get(t, &http.Client{Transport: &oauth2.Transport{Source: s.TokenSource(t, p.ConsumerKID, "demo:read")}}, read.URL)
		if code != http.StatusOK || a.Consumer != testserver.ConsumerOrg {
			t.Fatalf("%d %+v", code, a)
		}
	})
	t.Run("fail/missing-scope", func(t *testing.T) {
		code, h, _ := get(t, &http.Client{Transport: &oauth2.Transport{Source: s.TokenSource(t, p.ConsumerKID, "demo:open")}}, read.URL)
		if code != http.StatusForbidden || !strings.Contains(h.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
			t.Fatalf("%d %q", code, h.Get("WWW-Authenticate"))
		}
	})
	t.Run("fail/no-token", func(t *testing.T) {
		code, h, _ := get(t, http.DefaultClient, read.URL)
		if code != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("%d %q", code, h.Get("WWW-Authenticate"))
		}
	})
	t.Run("fail/no-delegation", func(t *testing.T) {
		// demo:write is not delegated to the vendor (nor on its client).
		ts, err := client.NewTokenSource(ctx, client.Config{Issuer: s.Issuer, ClientID: p.VendorCert.ID, Scopes: []string{"demo:write"},
			ConsumerOrg: testserver.ConsumerOrg, Signer: p.VendorCert.Signer})
		if err != nil {
			t.Fatal(err)
		}
		_, err = ts.Token()
		var oe *client.Error
		if !errors.As(err, &oe) || oe.Code != "invalid_scope" {
			t.Fatalf("want invalid_scope, got %v", err)
		}
	})
}
