package selfservice_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/manage"
	"github.com/portvakt/portvakt/internal/protocol"
	"github.com/portvakt/portvakt/internal/rules"
	"github.com/portvakt/portvakt/internal/selfservice"
	"github.com/portvakt/portvakt/internal/signer"
	"github.com/portvakt/portvakt/internal/store/sqlstore"
)

// TestBearerTokenEdges pins the API's clock to a whole second and checks
// the edges of its bearer-token check over real HTTP: no expiry leeway at
// all, and only the published keys, each with its own algorithm.
func TestBearerTokenEdges(t *testing.T) { eachEngine(t, testBearerTokenEdges) }

func testBearerTokenEdges(t *testing.T, eng engine) {
	now := time.Unix(1_900_000_000, 0)
	db, err := sqlstore.Open(t.Context(), eng.config(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	active, err := signer.Generate("RS256")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := signer.NewSet(active)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := signer.Generate("RS256")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	issuer := srv.URL + "/"
	core, err := manage.New(manage.Config{Issuer: issuer, PlatformOrg: platformOrg, Now: func() time.Time { return now }},
		db, rules.NewCache(db, rules.CacheConfig{}))
	if err != nil {
		t.Fatal(err)
	}
	api, err := selfservice.New(selfservice.Config{Issuer: issuer, Now: func() time.Time { return now }}, core, keys)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = api

	claims := func(exp time.Time) protocol.AccessTokenClaims {
		return protocol.AccessTokenClaims{
			Issuer: issuer, ClientID: platformClient, Scope: "portvakt:admin", Consumer: protocol.NewOrg(platformOrg),
			IssuedAt: now.Add(-time.Minute).Unix(), ExpiresAt: exp.Unix(), JTI: "j1",
		}
	}
	fresh := claims(now.Add(time.Minute))
	// The stranger's private key under the published kid, and the published
	// key with an algorithm that is not its own.
	impostor := &signer.Key{ID: active.ID, Alg: "RS256", Private: stranger.Private}
	otherAlg := &signer.Key{ID: active.ID, Alg: "PS256", Private: active.Private}

	const notValid = "the access token is not valid here"
	const expired = "the access token has expired; get a new one"
	cases := []struct {
		name       string
		token      string
		wantStatus int
		wantDetail string
	}{
		{"ok/fresh", sign(t, active, "at+jwt", fresh), 200, ""},
		{"ok/expires-in-one-second", sign(t, active, "at+jwt", claims(now.Add(time.Second))), 200, ""},
		{"fail/expires-now", sign(t, active, "at+jwt", claims(now)), 401, expired},
		{"fail/expired-one-second-ago", sign(t, active, "at+jwt", claims(now.Add(-time.Second))), 401, expired},
		{"fail/unpublished-key", sign(t, stranger, "at+jwt", fresh), 401, notValid},
		{"fail/unpublished-key-under-published-kid", sign(t, impostor, "at+jwt", fresh), 401, notValid},
		{"fail/published-key-other-alg", sign(t, otherAlg, "at+jwt", fresh), 401, notValid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/api/v1/prefixes", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+tc.token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if tc.wantStatus == 200 {
				return
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
				t.Errorf("WWW-Authenticate %q", got)
			}
			var p selfservice.Problem
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(p.Detail, tc.wantDetail) {
				t.Fatalf("detail %q, want it to start with %q", p.Detail, tc.wantDetail)
			}
		})
	}
}
