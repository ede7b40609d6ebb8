package selfservice

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/portvakt/portvakt/internal/manage"
	"github.com/portvakt/portvakt/internal/rules"
	"github.com/portvakt/portvakt/internal/signer"
	"github.com/portvakt/portvakt/internal/store/sqlstore"
)

// TestOpenAPIMatchesRouter loads openapi.json with kin-openapi and fails
// on any difference between it and the routes the handler serves: an
// operation on one side only, a security requirement that disagrees with
// the route's authentication, or a documented operation the mux does not
// route.
func TestOpenAPIMatchesRouter(t *testing.T) {
	ctx := t.Context()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openAPIDocument)
	if err != nil {
		t.Fatalf("load openapi.json: %v", err)
	}
	if err := doc.Validate(ctx); err != nil {
		t.Fatalf("openapi.json is not valid: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("openapi %q, want 3.1.x", doc.OpenAPI)
	}

	db, err := sqlstore.Open(ctx, sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: filepath.Join(t.TempDir(), "p.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	key, err := signer.Generate("ES256")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := signer.NewSet(key)
	if err != nil {
		t.Fatal(err)
	}
	core, err := manage.New(manage.Config{Issuer: "https://auth.example/", PlatformOrg: "310000019"}, db, rules.NewCache(db, rules.CacheConfig{}))
	if err != nil {
		t.Fatal(err)
	}
	api, err := New(Config{Issuer: "https://auth.example/"}, core, keys)
	if err != nil {
		t.Fatal(err)
	}
	h := &handler{}

	documented := map[string]*openapi3.Operation{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			documented[method+" "+path] = op
		}
	}
	served := map[string]route{}
	for _, rt := range h.routes() {
		served[rt.Method+" "+rt.Path] = rt
	}
	for k, rt := range served {
		op, ok := documented[k]
		if !ok {
			t.Errorf("%s is served but not documented", k)
			continue
		}
		secured := op.Security != nil && len(*op.Security) > 0
		if secured != (rt.Auth == authRequired) {
			t.Errorf("%s: documented security %v, but the route's auth mode is %d", k, secured, rt.Auth)
		}
		if rt.Auth == authRequired && !strings.Contains(op.Description, strings.Join(rt.Scopes, " or ")) {
			t.Errorf("%s: description %q does not name the scopes %v", k, op.Description, rt.Scopes)
		}
	}
	for k := range documented {
		if _, ok := served[k]; !ok {
			t.Errorf("%s is documented but not served", k)
		}
	}

	// Walk the mux: every documented operation reaches its route (an
	// unauthenticated call gets 401 or its answer, never the 404 of an
	// unknown path or a 405).
	keysSorted := make([]string, 0, len(documented))
	for k := range documented {
		keysSorted = append(keysSorted, k)
	}
	slices.Sort(keysSorted)
	for _, k := range keysSorted {
		method, path, _ := strings.Cut(k, " ")
		concrete := strings.NewReplacer("{prefix}", "acme", "{org}", "310000027", "{supplier_org}", "310000027",
			"{id}", "6f1c2a4e-0000-4000-8000-000000000001", "{subject}", "kari%40idp.example").Replace(path)
		req := httptest.NewRequestWithContext(ctx, method, Base+concrete, nil)
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		rt := served[k]
		switch {
		case rec.Code == http.StatusMethodNotAllowed:
			t.Errorf("%s: routed to 405", k)
		case rec.Code == http.StatusNotFound && rt.Auth == authRequired:
			t.Errorf("%s: 404 before authentication: %s", k, rec.Body)
		case rt.Auth == authRequired && rec.Code != http.StatusUnauthorized:
			t.Errorf("%s without a token: %d, want 401", k, rec.Code)
		case rt.Auth != authRequired && rec.Code != http.StatusOK:
			t.Errorf("%s: %d, want 200: %s", k, rec.Code, rec.Body)
		}
	}

	// The served document is the embedded one, as JSON.
	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, "GET", Base+"/openapi.json", nil))
	if !json.Valid(rec.Body.Bytes()) || rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("GET /openapi.json: %s %q", rec.Header().Get("Content-Type"), rec.Body.String()[:min(80, rec.Body.Len())])
	}
}
