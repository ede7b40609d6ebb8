package selfservice_test

import (
	"errors"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/store"
)

// GET /audit for an org with a handful of tokens among many others answers
// in well under the request timeout, for the consumer and for the provider
// of the tokens' scopes. (The store's tests check the plans and the million
// rows; this is the same walk through real HTTP.)
func TestAuditAmongManyTokens(t *testing.T) { eachEngine(t, testAuditAmongManyTokens) }

func testAuditAmongManyTokens(t *testing.T, eng engine) {
	e := newEnv(t, eng)
	ctx := t.Context()
	admin := e.adminToken()
	e.must(admin, "PUT", "/prefixes/acme", map[string]string{"owner_org": providerOrg}, http.StatusOK, nil)
	_, provider := e.onboard(admin, providerOrg)
	_, consumer := e.onboard(admin, consumerOrg)

	others := 50_000
	if v := os.Getenv("PORTVAKT_TEST_AUDIT_ROWS"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			others = n
		}
	}
	start := time.Now()
	now := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(others) && errs[w] == nil; i = next.Add(1) {
				iat := now.Add(-time.Duration(i) * time.Millisecond)
				errs[w] = e.db.InsertIssuedToken(ctx, store.IssuedToken{
					ClientID: "seed", AssertionJTI: "s" + strconv.FormatInt(i, 10), TokenJTI: "st" + strconv.FormatInt(i, 10),
					ConsumerOrgno: strconv.Itoa(800000000 + int(i%20000)), Scopes: []string{"p" + strconv.Itoa(int(i%5000)) + ":read"},
					Audience: []string{}, IssuedAt: iat, ExpiresAt: iat.Add(2 * time.Minute), ClientAMR: "private_key_jwt",
				})
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	mine := map[string]bool{}
	for i := range 5 {
		iat := now.Add(-time.Duration(i*others/5) * time.Millisecond)
		tok := store.IssuedToken{
			ClientID: "mine", AssertionJTI: "m" + strconv.Itoa(i), TokenJTI: "mine-" + strconv.Itoa(i),
			ConsumerOrgno: consumerOrg, Scopes: []string{"acme:api"}, Audience: []string{},
			IssuedAt: iat, ExpiresAt: iat.Add(2 * time.Minute), ClientAMR: "private_key_jwt",
		}
		if err := e.db.InsertIssuedToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		mine[tok.TokenJTI] = true
	}
	t.Logf("%s: seeded %d tokens in %s", eng.name, others, time.Since(start).Round(time.Millisecond))

	for _, who := range []struct{ name, token string }{{"consumer", consumer}, {"provider", provider}} {
		t.Run("ok/"+who.name, func(t *testing.T) {
			var page struct {
				Events []struct {
					Action string `json:"action"`
					Target string `json:"target"`
				} `json:"events"`
			}
			start := time.Now()
			e.must(who.token, "GET", "/audit?action=token.issue&limit=50", nil, http.StatusOK, &page)
			took := time.Since(start)
			t.Logf("%s: GET /audit as the %s among %d tokens: %d events in %s", eng.name, who.name, others, len(page.Events), took.Round(time.Microsecond))
			found := 0
			for _, ev := range page.Events {
				if mine[ev.Target] {
					found++
				}
			}
			if found != len(mine) {
				t.Fatalf("%d of the org's %d tokens listed", found, len(mine))
			}
			if took > 2*time.Second {
				t.Fatalf("took %s, want well under the 5 s request timeout", took)
			}
		})
	}
}
