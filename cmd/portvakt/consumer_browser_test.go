package main

// Browser tests of the console's consumer and vendor pages (catalogue,
// requests, clients and keys, delegations, received), each asserting what
// the page shows and then what the store holds, and a Go test without a
// browser of the key upload's refusals.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/go-jose/go-jose/v4"

	"github.com/portvakt/portvakt/internal/config"
	"github.com/portvakt/portvakt/internal/devmode"
	"github.com/portvakt/portvakt/internal/manage"
	"github.com/portvakt/portvakt/internal/pgtest"
	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/store"
	"github.com/portvakt/portvakt/internal/testpki"
)

// devCore is a core over the running server's store and rules cache: what
// a test uses to set up what another org would do (a provider's new
// scope, a vendor acting for a consumer) outside the pages under test.
func devCore(t testing.TB, cfg *config.Config, a *app) *manage.Service {
	t.Helper()
	core, err := manage.New(manage.Config{Issuer: cfg.Issuer, PlatformOrg: cfg.Platform.Org}, a.store, a.rules)
	if err != nil {
		t.Fatal(err)
	}
	return core
}

// askableScope makes demo:extra, a public scope of the demo provider that
// the demo consumer has no access to and may ask for.
func askableScope(t testing.TB, cfg *config.Config, a *app) string {
	t.Helper()
	prov := &manage.Actor{Org: devmode.ProviderOrg, Scopes: []string{records.ScopesWrite}}
	sc, err := devCore(t, cfg, a).CreateScope(t.Context(), prov, manage.ScopeInput{
		Prefix: "demo", Subscope: "extra", Description: "An extra demo API, granted on request",
	})
	if err != nil {
		t.Fatal(err)
	}
	return sc.Name
}

// submit clicks the submit button of the form sel.
func submit(t testing.TB, tab context.Context, form string) {
	t.Helper()
	click(t, tab, form+` button[type="submit"]`)
}

func TestConsoleCatalogueSearch(t *testing.T) {
	_, a, url := consoleDev(t)
	tab := newTab(t)
	devLogin(t, tab, url, devmode.ConsumerOrg)
	visit(t, tab, url+"catalogue", "catalogue")
	waitText(t, tab, `tr[data-scope="demo:read"]`, "You have access")
	screenshot(t, tab, "catalogue", true)

	// Typing searches as the person types (htmx); Enter submits the form
	// without JavaScript too.
	do(t, tab, chromedp.SendKeys(chromedp.CSS("#f-q"), "write"))
	waitText(t, tab, "#catalogue", "demo:write")
	waitJS(t, tab, `!document.querySelector('tr[data-scope="demo:read"]')`)
	if got := textOf(t, tab, `tr[data-scope="demo:write"] [data-access]`); got != "You have access" {
		t.Fatalf("demo:write shows %q", got)
	}
	if got := textOf(t, tab, `tr[data-scope="demo:open"]`); got != "" {
		t.Fatalf("demo:open does not match %q but shows: %s", "write", got)
	}
	// The store holds the scope the search left out, and the access the
	// page shows.
	if sc, err := a.store.GetScope(t.Context(), "demo:read"); err != nil || !sc.Active {
		t.Fatalf("demo:read: %+v %v", sc, err)
	}
	if ac, err := a.store.GetAccess(t.Context(), "demo:write", devmode.ConsumerOrg); err != nil || ac.State != store.AccessApproved {
		t.Fatalf("demo:write access: %+v %v", ac, err)
	}
}

func TestConsoleRequestAndWithdraw(t *testing.T) {
	cfg, a, url := consoleDev(t)
	scope := askableScope(t, cfg, a)
	tab := newTab(t)
	devLogin(t, tab, url, devmode.ConsumerOrg)
	visit(t, tab, url+"catalogue", "catalogue")
	click(t, tab, fmt.Sprintf(`tr[data-scope=%q] [data-access] a`, scope))
	waitText(t, tab, "h1", "My access requests")
	if got := textOf(t, tab, "#f-scope"); got != "" {
		t.Fatalf("scope input has text content %q", got)
	}
	waitJS(t, tab, fmt.Sprintf(`(document.querySelector("#f-scope") || {}).value === %q`, scope))
	fill(t, tab, "#f-reason", "Our payroll integration reads it")
	submit(t, tab, "#ask-form")
	waitText(t, tab, fmt.Sprintf(`tr[data-request=%q] [data-state]`, scope), "requested")
	screenshot(t, tab, "requests", true)
	ac, err := a.store.GetAccess(t.Context(), scope, devmode.ConsumerOrg)
	if err != nil || ac.State != store.AccessRequested || ac.Reason != "Our payroll integration reads it" || ac.OwnerOrgno != devmode.ProviderOrg {
		t.Fatalf("after the request the store holds %+v %v", ac, err)
	}

	// Asking again is refused with the core's words, and changes nothing.
	fill(t, tab, "#f-scope", scope)
	submit(t, tab, "#ask-form")
	waitText(t, tab, "#ask-form [role=alert]", "asked for scope "+scope+" already")

	click(t, tab, fmt.Sprintf(`tr[data-request=%q] button`, scope))
	waitText(t, tab, fmt.Sprintf(`tr[data-request=%q] [data-state]`, scope), "withdrawn")
	if ac, err = a.store.GetAccess(t.Context(), scope, devmode.ConsumerOrg); err != nil || ac.State != store.AccessWithdrawn {
		t.Fatalf("after the withdrawal the store holds %+v %v", ac, err)
	}
	if n := textOf(t, tab, fmt.Sprintf(`tr[data-request=%q] button`, scope)); n != "" {
		t.Fatalf("a withdrawn request still offers %q", n)
	}
}

func TestConsoleClientAndKeys(t *testing.T) {
	_, a, url := consoleDev(t)
	ctx := t.Context()
	tab := newTab(t)
	devLogin(t, tab, url, devmode.ConsumerOrg)
	visit(t, tab, url+"clients", "clients")
	before := consumerClients(t, a)

	// A scope the org cannot get: the core's message next to the input,
	// and no client stored.
	fill(t, tab, "#f-client_name", "payroll")
	fill(t, tab, "#f-description", "Payroll integration")
	fill(t, tab, "#f-scopes", "demo:read nope:missing")
	submit(t, tab, "#client-form")
	waitText(t, tab, "#err-scopes", "cannot get scope nope:missing")
	if got := attr(t, tab, "#f-scopes", "aria-describedby"); !slices.Contains(strings.Fields(got), "err-scopes") {
		t.Fatalf("the scopes input is described by %q", got)
	}
	screenshot(t, tab, "client-invalid", false)
	if after := consumerClients(t, a); len(after) != len(before) {
		t.Fatalf("a refused client was stored: %d clients, were %d", len(after), len(before))
	}

	fill(t, tab, "#f-scopes", "demo:read demo:open")
	fill(t, tab, "#f-access_token_lifetime", "600")
	submit(t, tab, "#client-form")
	waitText(t, tab, "h1", "Client payroll")
	id := textOf(t, tab, "[data-client-id]")
	cl, err := a.store.GetClient(ctx, id)
	if err != nil || cl.ClientOrgno != devmode.ConsumerOrg || cl.Description != "Payroll integration" ||
		strings.Join(cl.Scopes, " ") != "demo:read demo:open" || cl.AccessTokenLifetime != 600 || !cl.Active || len(cl.Keys) != 0 {
		t.Fatalf("the store holds %+v %v", cl, err)
	}
	// The audit event names the person who acted, as well as the org.
	evs, err := a.store.ListAudit(ctx, store.AuditFilter{Org: devmode.ConsumerOrg, Action: "client.create", Target: id})
	if err != nil || len(evs) != 1 || evs[0].ActorOrg != devmode.ConsumerOrg || evs[0].ActorPerson != "dev:"+devmode.ConsumerOrg {
		t.Fatalf("audit of the creation: %+v %v", evs, err)
	}

	// Keys: a JWK pasted, a PEM certificate pasted, a PEM public key as a
	// file.
	ec, err := testpki.ECKey(elliptic.P256())
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := json.Marshal(jose.JSONWebKey{Key: ec.Public(), KeyID: "jwk-1", Use: "sig"})
	if err != nil {
		t.Fatal(err)
	}
	fill(t, tab, "#f-jwk", string(jwk))
	submit(t, tab, "#jwk-form")
	waitText(t, tab, `tr[data-kid="jwk-1"]`, "EC P-256")

	pki, err := testpki.New("Console test")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := pki.Leaf(testpki.LeafOptions{Org: devmode.ConsumerOrg})
	if err != nil {
		t.Fatal(err)
	}
	fill(t, tab, "#f-kid", "cert-1")
	fill(t, tab, "#f-pem", string(testpki.CertPEM(leaf.Cert)))
	submit(t, tab, "#pem-form")
	waitText(t, tab, `tr[data-kid="cert-1"]`, "RSA 2048")

	ec2, err := testpki.ECKey(elliptic.P384())
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(ec2.Public())
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "pub.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	fill(t, tab, "#f-kid", "file-1")
	do(t, tab, chromedp.SetUploadFiles(chromedp.CSS("#f-pem_file"), []string{file}, chromedp.NodeReady))
	submit(t, tab, "#pem-form")
	waitText(t, tab, `tr[data-kid="file-1"]`, "EC P-384")
	screenshot(t, tab, "client", true)

	cl, err = a.store.GetClient(ctx, id)
	if err != nil || len(cl.Keys) != 3 {
		t.Fatalf("the store holds %+v %v", cl, err)
	}
	for i, want := range []struct {
		kid string
		pub crypto.PublicKey
	}{{"jwk-1", ec.Public()}, {"cert-1", leaf.Cert.PublicKey}, {"file-1", ec2.Public()}} {
		k := cl.Keys[i]
		var got jose.JSONWebKey
		if err := got.UnmarshalJSON(k.JWK); err != nil || k.KID != want.kid || !got.IsPublic() ||
			!got.Key.(interface{ Equal(crypto.PublicKey) bool }).Equal(want.pub) {
			t.Fatalf("key %d: %+v %v", i, k, err)
		}
		// The page shows the expiry the store holds: one year from upload.
		if !k.Expires.Equal(k.Created.AddDate(1, 0, 0)) || k.UploadedBy != devmode.ConsumerOrg {
			t.Fatalf("key %s: created %s, expires %s, uploaded by %q", k.KID, k.Created, k.Expires, k.UploadedBy)
		}
		row := fmt.Sprintf(`tr[data-kid=%q]`, k.KID)
		if got := attr(t, tab, row+" [data-expires]", "data-expires"); got != k.Expires.UTC().Format("2006-01-02") {
			t.Fatalf("key %s shows expiry %q, the store holds %s", k.KID, got, k.Expires)
		}
		if got := textOf(t, tab, row+" [data-uploaded-by]"); got != devmode.ConsumerOrg {
			t.Fatalf("key %s shows uploaded by %q", k.KID, got)
		}
	}

	// Remove one key: the others stay as they were.
	click(t, tab, `tr[data-kid="cert-1"] button`)
	waitJS(t, tab, `!document.querySelector('tr[data-kid="cert-1"]')`)
	after, err := a.store.GetClient(ctx, id)
	if err != nil || len(after.Keys) != 2 || after.Keys[0].KID != "jwk-1" || after.Keys[1].KID != "file-1" ||
		!after.Keys[0].Created.Equal(cl.Keys[0].Created) {
		t.Fatalf("after removing cert-1 the store holds %+v %v", after.Keys, err)
	}

	// Edit: a scope the org cannot get is refused by the core, next to its
	// input; then a new description is saved.
	fill(t, tab, "#f-scopes", "demo:read nope:missing")
	submit(t, tab, "#edit-form")
	waitText(t, tab, "#err-scopes", "cannot get scope nope:missing")
	fill(t, tab, "#f-scopes", "demo:read demo:open")
	fill(t, tab, "#f-description", "Payroll, monthly")
	submit(t, tab, "#edit-form")
	waitJS(t, tab, `!document.querySelector("#err-scopes") && (document.querySelector("#f-description") || {}).value === "Payroll, monthly"`)
	if cl, err = a.store.GetClient(ctx, id); err != nil || cl.Description != "Payroll, monthly" || cl.AccessTokenLifetime != 600 || len(cl.Keys) != 2 {
		t.Fatalf("after the edit the store holds %+v %v", cl, err)
	}

	click(t, tab, `section[aria-labelledby="deactivate"] button`)
	waitText(t, tab, "[data-active]", "deactivated")
	if cl, err = a.store.GetClient(ctx, id); err != nil || cl.Active {
		t.Fatalf("after deactivating the store holds %+v %v", cl, err)
	}
}

// consumerClients are the demo consumer's clients in the store.
func consumerClients(t testing.TB, a *app) []store.Client {
	t.Helper()
	cls, err := a.store.PageClients(t.Context(), store.ClientFilter{ClientOrgno: devmode.ConsumerOrg}, store.Page{Limit: store.MaxPageLimit})
	if err != nil {
		t.Fatal(err)
	}
	return cls
}

// attr is the attribute name of the first element sel matches.
func attr(t testing.TB, tab context.Context, sel, name string) string {
	t.Helper()
	s, err := chromedp.Run(tab, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {getAttribute: () => ""}).getAttribute(%q) || ""`, sel, name)))
	if err != nil {
		t.Fatalf("attribute %s of %s: %v", name, sel, err)
	}
	return s
}

func TestConsoleDelegateAndRevoke(t *testing.T) {
	cfg, a, url := consoleDev(t)
	ctx := t.Context()
	tab := newTab(t)
	devLogin(t, tab, url, devmode.ConsumerOrg)
	visit(t, tab, url+"delegations", "delegations")
	waitText(t, tab, fmt.Sprintf(`tr[data-delegation="demo:read %s"]`, devmode.VendorOrg), "active")

	// Not delegable: the core's words next to the scope.
	fill(t, tab, "#f-scope", "demo:write")
	fill(t, tab, "#f-supplier_org", devmode.VendorOrg)
	submit(t, tab, "#delegate-form")
	waitText(t, tab, "#err-scope", "does not allow delegation")
	if _, err := a.store.GetDelegation(ctx, "demo:write", devmode.ConsumerOrg, devmode.VendorOrg); err == nil {
		t.Fatal("a refused delegation was stored")
	}

	fill(t, tab, "#f-scope", records.ClientsWrite)
	submit(t, tab, "#delegate-form")
	row := fmt.Sprintf(`tr[data-delegation="%s %s"]`, records.ClientsWrite, devmode.VendorOrg)
	waitText(t, tab, row, "active")
	if d, err := a.store.GetDelegation(ctx, records.ClientsWrite, devmode.ConsumerOrg, devmode.VendorOrg); err != nil || d.State != store.DelegationActive {
		t.Fatalf("the store holds %+v %v", d, err)
	}

	// The vendor, through the delegation, makes a client for the consumer
	// (as it would through the API): the consumer's pages show it managed.
	vendor := &manage.Actor{Org: devmode.ConsumerOrg, Supplier: devmode.VendorOrg, Scopes: []string{records.ClientsWrite}}
	managed, err := devCore(t, cfg, a).CreateClient(ctx, vendor, manage.ClientInput{ClientName: "vendor-made", Description: "Made by the vendor", Scopes: []string{"demo:read"}})
	if err != nil {
		t.Fatal(err)
	}
	visit(t, tab, url+"delegations", "delegations")
	waitText(t, tab, fmt.Sprintf(`tr[data-vendor=%q]`, devmode.VendorOrg), "vendor-made")
	screenshot(t, tab, "delegations", true)
	visit(t, tab, url+"clients", "clients")
	if got := textOf(t, tab, fmt.Sprintf(`tr[data-client=%q] [data-managed-by]`, managed.ClientID)); got != "vendor "+devmode.VendorOrg {
		t.Fatalf("the clients page shows managed by %q", got)
	}
	if cl, err := a.store.GetClient(ctx, managed.ClientID); err != nil || cl.ManagedBy != devmode.VendorOrg {
		t.Fatalf("the store holds %+v %v", cl, err)
	}

	// Revoking clients.write takes back what the vendor made.
	visit(t, tab, url+"delegations", "delegations")
	click(t, tab, row+" button")
	waitJS(t, tab, fmt.Sprintf(`!document.querySelector(%q)`, row))
	if d, err := a.store.GetDelegation(ctx, records.ClientsWrite, devmode.ConsumerOrg, devmode.VendorOrg); err != nil || d.State != store.DelegationRevoked {
		t.Fatalf("after the revoke the store holds %+v %v", d, err)
	}
	if cl, err := a.store.GetClient(ctx, managed.ClientID); err != nil || cl.Active {
		t.Fatalf("the vendor's client is still active after the revoke: %+v %v", cl, err)
	}
	visit(t, tab, url+"delegations?inactive=true", "delegations")
	waitText(t, tab, row+" [data-state]", "revoked")
}

func TestConsoleVendorReceived(t *testing.T) {
	_, a, url := consoleDev(t)
	tab := newTab(t)
	devLogin(t, tab, url, devmode.VendorOrg)
	visit(t, tab, url+"received", "received")
	cust := fmt.Sprintf(`tbody[data-customer=%q]`, devmode.ConsumerOrg)
	waitText(t, tab, cust+` tr[data-delegation="demo:read"]`, "active")
	waitText(t, tab, fmt.Sprintf(`tr[data-client=%q]`, devmode.VendorCertClient), "vendor-certificate")
	screenshot(t, tab, "received", true)
	ds, err := a.store.PageDelegations(t.Context(), store.DelegationFilter{Org: devmode.VendorOrg, States: []string{store.DelegationActive}}, store.Page{})
	if err != nil {
		t.Fatal(err)
	}
	var received int
	for _, d := range ds {
		if d.SupplierOrgno == devmode.VendorOrg {
			received++
			if textOf(t, tab, fmt.Sprintf(`tbody[data-customer=%q] tr[data-delegation=%q]`, d.ConsumerOrgno, d.Scope)) == "" {
				t.Fatalf("the page does not show %+v", d)
			}
		}
	}
	if n := count(t, tab, "tbody[data-customer] tr[data-delegation]"); n != received || n == 0 {
		t.Fatalf("the page shows %d received delegations, the store holds %d", n, received)
	}
	// A vendor's own page lists what it received, not what it gave.
	if textOf(t, tab, fmt.Sprintf(`tbody[data-customer=%q]`, devmode.VendorOrg)) != "" {
		t.Fatal("the vendor is shown as its own customer")
	}
}

// waitJS waits until the expression js is true in the tab.
func waitJS(t testing.TB, tab context.Context, js string) {
	t.Helper()
	waitFor(t, tab, "main", js, js)
}

// count is how many elements sel matches.
func count(t testing.TB, tab context.Context, sel string) int {
	t.Helper()
	n, err := chromedp.Run(tab, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestConsoleKeyUploadRefusals posts key uploads the page must refuse (a
// PEM over the 64 KiB bound, a PEM holding a private key) over real HTTP,
// without a browser: each is refused with a message saying why, and the
// client's keys stay as they were.
func TestConsoleKeyUploadRefusals(t *testing.T) {
	eachEngine(t, keyUploadRefusals)
}

func keyUploadRefusals(t *testing.T) {
	cfg, a := startDev(t, newLoggerFor(t))
	if want := os.Getenv("PORTVAKT_DATABASE_DRIVER"); want != "" && cfg.Database.Driver != want {
		t.Fatalf("the server runs on %s, not %s", cfg.Database.Driver, want)
	}
	root := cfg.Issuer + "console/"
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.PostForm(root+"dev-login", url.Values{"org": {devmode.ConsumerOrg}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("dev login: %s", resp.Status)
	}
	// A client in the database (a declared one could not be changed
	// anyway), with one key.
	cons := &manage.Actor{Org: devmode.ConsumerOrg, Scopes: []string{records.ClientsWrite}}
	core := devCore(t, cfg, a)
	cl, err := core.CreateClient(t.Context(), cons, manage.ClientInput{ClientName: "keys", Description: "Key uploads", Scopes: []string{"demo:read"}})
	if err != nil {
		t.Fatal(err)
	}
	id := cl.ClientID
	page := get(t, hc, root+"clients/"+id)
	m := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token on the client page:\n%s", page)
	}
	csrf := m[1]
	ec, err := testpki.ECKey(elliptic.P256())
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := testpki.KeyPEM(ec)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(ec.Public())
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	jwk, errs := records.PEMKey("pem", pubPEM, "kept-1")
	if errs != nil {
		t.Fatal(errs)
	}
	if _, err := core.ReplaceKeys(t.Context(), cons, id, []json.RawMessage{jwk}); err != nil {
		t.Fatal(err)
	}
	big := append(append([]byte{}, pubPEM...), strings.Repeat("# padding\n", records.MaxPEM/10+1)...)
	before, err := a.store.GetClient(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		field  string // pem_file (a file) or pem (pasted)
		body   []byte
		status int
		want   string
		htmx   bool // the CSRF token in the header, as htmx sends it
	}{
		{"fail/file over the form's bound", "pem_file", bytes.Repeat(big, 5), http.StatusRequestEntityTooLarge, "larger than", true},
		{"fail/file over the form's bound without JavaScript", "pem_file", bytes.Repeat(big, 5), http.StatusRequestEntityTooLarge, "larger than", false},
		{"fail/file over 64 KiB", "pem_file", big, http.StatusUnprocessableEntity, "at most 65536 bytes (64 KiB)", false},
		{"fail/pasted over 64 KiB", "pem", big, http.StatusUnprocessableEntity, "at most 65536 bytes (64 KiB)", false},
		{"fail/file with a private key", "pem_file", keyPEM, http.StatusUnprocessableEntity, "holds a private key, which was not stored", false},
		{"fail/pasted private key", "pem", keyPEM, http.StatusUnprocessableEntity, "holds a private key, which was not stored", false},
		{"fail/certificate and private key", "pem_file", append(append([]byte{}, pubPEM...), keyPEM...), http.StatusUnprocessableEntity, "holds a private key", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body strings.Builder
			mw := multipart.NewWriter(&body)
			_ = mw.WriteField("csrf_token", csrf)
			_ = mw.WriteField("kid", "refused-1")
			if c.field == "pem_file" {
				w, _ := mw.CreateFormFile("pem_file", "upload.pem")
				_, _ = w.Write(c.body)
			} else {
				_ = mw.WriteField("pem", string(c.body))
			}
			_ = mw.Close()
			req, err := http.NewRequest("POST", root+"clients/"+id+"/keys", strings.NewReader(body.String()))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", mw.FormDataContentType())
			if c.htmx {
				req.Header.Set("HX-Request", "true")
				req.Header.Set("X-CSRF-Token", csrf)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			page := string(b)
			if resp.StatusCode != c.status || !strings.Contains(strings.ReplaceAll(page, "&#34;", `"`), c.want) ||
				(c.status == http.StatusUnprocessableEntity && !strings.Contains(page, `id="err-pem"`)) {
				t.Fatalf("%s; want %d with %q (next to the PEM input when 422):\n%s", resp.Status, c.status, c.want, page)
			}
			if strings.Contains(page, "PRIVATE KEY") || strings.Contains(page, "# padding") {
				t.Fatal("the refusal echoes the upload")
			}
			after, err := a.store.GetClient(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			if len(after.Keys) != 1 || after.Keys[0].KID != "kept-1" || !after.LastUpdated.Equal(before.LastUpdated) {
				t.Fatalf("the refused upload changed the client's keys: %+v", after.Keys)
			}
		})
	}
}

func get(t testing.TB, hc *http.Client, u string) string {
	t.Helper()
	resp, err := hc.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", u, resp.Status, err)
	}
	return string(b)
}

// TestConsoleAccessRequestStory is the access-request story across two
// people, each in a browser session of their own: the consumer asks for a
// scope, the provider approves it in its inbox, and then the consumer's
// new client gets a token for it over real HTTP, signed with the dev
// PKI's consumer certificate.
func TestConsoleAccessRequestStory(t *testing.T) {
	eachEngine(t, accessRequestInBrowsers)
}

// eachEngine runs fn over the dev server on SQLite and on PostgreSQL (a
// fresh schema of PORTVAKT_TEST_POSTGRES_DSN).
func eachEngine(t *testing.T, fn func(t *testing.T)) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			if engine == "postgres" {
				t.Setenv("PORTVAKT_DATABASE_DRIVER", "postgres")
				t.Setenv("PORTVAKT_DATABASE_DSN", pgtest.FreshSchema(t, pgtest.DSN(t)))
			}
			fn(t)
		})
	}
}

func accessRequestInBrowsers(t *testing.T) {
	cfg, a, url := consoleDev(t)
	ctx := t.Context()
	scope := askableScope(t, cfg, a)
	consumer, provider := newTab(t), newTab(t)
	devLogin(t, consumer, url, devmode.ConsumerOrg)
	devLogin(t, provider, url, devmode.ProviderOrg)

	// The consumer asks.
	visit(t, consumer, url+"catalogue", "catalogue")
	click(t, consumer, fmt.Sprintf(`tr[data-scope=%q] [data-access] a`, scope))
	waitJS(t, consumer, fmt.Sprintf(`(document.querySelector("#f-scope") || {}).value === %q`, scope))
	fill(t, consumer, "#f-reason", "Payroll needs it")
	submit(t, consumer, "#ask-form")
	waitText(t, consumer, fmt.Sprintf(`tr[data-request=%q] [data-state]`, scope), "requested")

	// Until the provider answers, no client of the consumer may list it.
	visit(t, consumer, url+"clients", "clients")
	fill(t, consumer, "#f-client_name", "payroll")
	fill(t, consumer, "#f-description", "Payroll integration")
	fill(t, consumer, "#f-scopes", scope)
	submit(t, consumer, "#client-form")
	waitText(t, consumer, "#err-scopes", "cannot get scope "+scope)

	// The provider sees the request, with the consumer's reason, in its
	// inbox (another session, other cookies) and approves it.
	visit(t, provider, url+"inbox", "inbox")
	row := fmt.Sprintf(`tr[data-request="%s %s"]`, scope, devmode.ConsumerOrg)
	waitText(t, provider, row, "Payroll needs it")
	fill(t, provider, row+` input[name="reason"]`, "Approved for payroll")
	click(t, provider, row+` button[value="approve"]`)
	waitJS(t, provider, fmt.Sprintf(`!document.querySelector(%q)`, row))
	ac, err := a.store.GetAccess(ctx, scope, devmode.ConsumerOrg)
	if err != nil || ac.State != store.AccessApproved || ac.Reason != "Approved for payroll" {
		t.Fatalf("after the approval the store holds %+v %v", ac, err)
	}

	// The consumer sees the answer, and now makes the client.
	visit(t, consumer, url+"requests", "requests")
	waitText(t, consumer, fmt.Sprintf(`tr[data-request=%q] [data-state]`, scope), "approved")
	waitText(t, consumer, fmt.Sprintf(`tr[data-request=%q]`, scope), "Approved for payroll")
	visit(t, consumer, url+"clients", "clients")
	fill(t, consumer, "#f-client_name", "payroll")
	fill(t, consumer, "#f-description", "Payroll integration")
	fill(t, consumer, "#f-scopes", scope)
	submit(t, consumer, "#client-form")
	waitText(t, consumer, "h1", "Client payroll")
	id := textOf(t, consumer, "[data-client-id]")
	if cl, err := a.store.GetClient(ctx, id); err != nil || strings.Join(cl.Scopes, " ") != scope || len(cl.Keys) != 0 {
		t.Fatalf("the store holds %+v %v", cl, err)
	}

	// Its token: the client has no keys, so it signs with the org's
	// enterprise certificate.
	tok, err := devTokenSource(t, cfg, id, devCertSigner(t, cfg, "consumer"), []string{scope}, "").Fetch(ctx)
	if err != nil {
		t.Fatalf("token for %s: %v", scope, err)
	}
	if tok.Scope != scope || tok.AccessToken == "" {
		t.Fatalf("token response: %+v", tok)
	}
}
