package interop

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/testserver"
	"github.com/portvakt/portvakt/pkg/client"
	"github.com/portvakt/portvakt/pkg/dpop"
	"github.com/portvakt/portvakt/pkg/resource"
)

// dpopServer is a portvakt process that requires DPoP nonces, as a
// deployment that wants fresh proofs would run it.
func dpopServer(t *testing.T) *testserver.Server {
	t.Helper()
	return testserver.Start(t, testserver.Options{Config: map[string]any{
		"dpop": map[string]any{"require_nonce": true, "nonce_secret": strings.Repeat("n", 32)},
	}})
}

// dpopAPI is a provider's API protected by pkg/resource with DPoP on (and,
// with nonces, requiring them too): it answers with the key the token is
// bound to.
func dpopAPI(t *testing.T, s *testserver.Server, nonces *dpop.Nonces) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	v, err := resource.NewVerifier(t.Context(), resource.VerifierConfig{Issuer: s.Issuer,
		DPoP: resource.DPoPConfig{PublicURL: "http://" + srv.Listener.Addr().String(), Nonces: nonces}})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = resource.RequireScope(v, "demo:read")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := resource.FromContext(r.Context())
		_ = json.NewEncoder(w).Encode(map[string]string{"consumer": c.ConsumerOrg, "jkt": c.JKT})
	}))
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// The end-to-end story: a consumer with one option in pkg/client gets a
// DPoP-bound token (retrying once with the server's nonce), calls a
// provider's API protected by pkg/resource, and the same token without the
// key (as Bearer, or with a proof by another key) is refused.
func TestDPoPWithBothLibraries(t *testing.T) {
	s := dpopServer(t)
	p := s.PKI
	rsNonces, err := dpop.NewNonces(nil, time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		nonces *dpop.Nonces
	}{{"plain-api", nil}, {"api-with-nonces", rsNonces}} {
		t.Run(tc.name, func(t *testing.T) {
			api := dpopAPI(t, s, tc.nonces)
			key, err := dpop.GenerateKey()
			if err != nil {
				t.Fatal(err)
			}
			cfg := s.ClientConfig(p.ConsumerCert, "demo:read")
			cfg.DPoP = &client.DPoP{Key: key}
			ts, err := client.NewTokenSource(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			hc := ts.HTTPClient()
			for i := range 2 { // the second call reuses the token with a fresh proof
				code, body := call(t, hc, api.URL+"/records", "", "")
				if code != 200 || !strings.Contains(body, `"jkt":"`+key.Thumbprint()+`"`) || !strings.Contains(body, testserver.ConsumerOrg) {
					t.Fatalf("ok/dpop/call-%d: %d %s", i, code, body)
				}
			}
			tok, err := ts.Token()
			if err != nil || tok.TokenType != "DPoP" {
				t.Fatalf("token %v (%v)", tok, err)
			}
			// The first token request had no nonce: the client retried.
			if !strings.Contains(s.Logs(), "use_dpop_nonce") {
				t.Fatal("the server never answered use_dpop_nonce: the nonce retry was not exercised")
			}
			other, err := dpop.GenerateKey()
			if err != nil {
				t.Fatal(err)
			}
			now, nonce := time.Now(), ""
			if tc.nonces != nil {
				nonce = tc.nonces.Current()
			}
			proofBy := func(k *dpop.Key) string {
				pr, err := k.Proof("GET", api.URL+"/records", tok.AccessToken, nonce, now)
				if err != nil {
					t.Fatal(err)
				}
				return pr
			}
			for _, rc := range []struct{ name, auth, proof, want string }{
				{"fail/stolen/as-bearer", "Bearer " + tok.AccessToken, "", "invalid_token"},
				{"fail/stolen/as-bearer-with-the-proof-header", "Bearer " + tok.AccessToken, proofBy(other), "invalid_token"},
				{"fail/stolen/proof-by-another-key", "DPoP " + tok.AccessToken, proofBy(other), "invalid_dpop_proof"},
				{"fail/stolen/no-proof", "DPoP " + tok.AccessToken, "", "invalid_dpop_proof"},
			} {
				t.Run(rc.name, func(t *testing.T) {
					code, body := call(t, http.DefaultClient, api.URL+"/records", rc.auth, rc.proof)
					if code != 401 || !strings.Contains(body, rc.want) {
						t.Fatalf("%d %s, want 401 %s", code, body, rc.want)
					}
				})
			}
		})
	}
	t.Run("ok/bearer-client-unchanged", func(t *testing.T) {
		api := dpopAPI(t, s, nil)
		ts := s.TokenSource(t, p.ConsumerKID, "demo:read")
		code, body := call(t, ts.HTTPClient(), api.URL+"/records", "", "")
		if code != 200 || !strings.Contains(body, `"jkt":""`) {
			t.Fatalf("%d %s", code, body)
		}
	})
}

func call(t *testing.T, hc *http.Client, url, auth, proof string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
