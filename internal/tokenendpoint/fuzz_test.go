package tokenendpoint_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzAssertion posts arbitrary assertions: the endpoint never panics and
// never answers 5xx for anything a client can send. Seeds: the committed
// corpus in testdata/fuzz/FuzzAssertion plus real signed assertions of every
// kind made here.
func FuzzAssertion(f *testing.F) {
	e := newEnv(f)
	for _, id := range []string{"consumer-seid1", "consumer-seid2", "kid-rsa", "kid-ec256", "untrusted"} {
		i := e.ids[id]
		f.Add(e.sign(i, e.claims(i, "demo:read demo:records"), nil))
	}
	vendor := e.ids["vendor"]
	c := e.claims(vendor, "demo:read")
	c["consumer_org"] = consumerOrg
	c["resource"] = []string{"https://api.example/records"}
	f.Add(e.sign(vendor, c, nil))
	f.Fuzz(func(t *testing.T, assertion string) {
		form := url.Values{"grant_type": {jwtBearer}, "assertion": {assertion}}
		req := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		e.handler.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("assertion %q: status %d %s", assertion, rec.Code, rec.Body)
		}
	})
}
