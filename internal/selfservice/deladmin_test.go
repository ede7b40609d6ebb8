package selfservice_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/portvakt/portvakt/internal/selfservice"
	"github.com/portvakt/portvakt/internal/store"
	"github.com/portvakt/portvakt/pkg/client"
)

// deladmin is a platform where a consumer delegated portvakt:clients.write
// to a vendor. The provider owns acme:api (delegable) and acme:internal (not
// delegable), and granted the consumer both; the other org has acme:api too
// and delegated it to the consumer (the consumer is its vendor).
type deladmin struct {
	*env
	admin, provider, consumer, vendor, other string // tokens of each org's admin client, for itself
	consumerAdmin, vendorAdmin               string // client ids
}

func newDelegatedAdmin(t *testing.T, eng engine) *deladmin {
	t.Helper()
	e := newEnv(t, eng)
	d := &deladmin{env: e, admin: e.adminToken()}
	e.must(d.admin, "PUT", "/prefixes/acme", map[string]string{"owner_org": providerOrg}, http.StatusOK, nil)
	_, d.provider = e.onboard(d.admin, providerOrg)
	d.consumerAdmin, d.consumer = e.onboard(d.admin, consumerOrg)
	d.vendorAdmin, d.vendor = e.onboard(d.admin, vendorOrg)
	_, d.other = e.onboard(d.admin, otherOrg)
	e.must(d.provider, "POST", "/scopes", map[string]any{
		"prefix": "acme", "subscope": "api", "description": "The ACME API", "delegation_source": e.issuer,
	}, http.StatusCreated, nil)
	e.must(d.provider, "POST", "/scopes", map[string]any{
		"prefix": "acme", "subscope": "internal", "description": "not for vendors",
	}, http.StatusCreated, nil)
	for _, a := range []string{consumerOrg + "?scope=acme:api", consumerOrg + "?scope=acme:internal", otherOrg + "?scope=acme:api"} {
		e.must(d.provider, "PUT", "/scopes/access/"+a, nil, http.StatusOK, nil)
	}
	e.must(d.other, "PUT", "/delegations/"+consumerOrg+"?scope=acme:api", nil, http.StatusOK, nil)
	d.delegate("portvakt:clients.write")
	return d
}

// delegate has the consumer delegate scope to the vendor.
func (d *deladmin) delegate(scope string) {
	d.t.Helper()
	d.must(d.consumer, "PUT", "/delegations/"+vendorOrg+"?scope="+scope, nil, http.StatusOK, nil)
}

// revoke has the consumer revoke the vendor's delegation of scope.
func (d *deladmin) revoke(scope string) {
	d.t.Helper()
	d.must(d.consumer, "DELETE", "/delegations/"+vendorOrg+"?scope="+scope, nil, http.StatusNoContent, nil)
}

// asConsumer is a token of the vendor's admin client acting for the
// consumer with scopes delegated to it.
func (d *deladmin) asConsumer(scopes ...string) string {
	d.t.Helper()
	return d.certToken(d.vendorAdmin, vendorOrg, consumerOrg, scopes...)
}

// managed has the vendor create a client for the consumer.
func (d *deladmin) managed(vendorTok string, scopes ...string) store.Client {
	d.t.Helper()
	var cl store.Client
	d.must(vendorTok, "POST", "/clients", map[string]any{
		"client_name": "run-by-vendor", "description": "managed by the vendor", "scopes": scopes,
	}, http.StatusCreated, &cl)
	return cl
}

// keyPair is a client key: the signer and its public JWK.
type keyPair struct {
	kid    string
	signer client.Signer
	jwk    map[string]any
}

func (d *deladmin) newKey(kid string) keyPair {
	d.t.Helper()
	k, jwk := ecJWK(d.t, kid)
	s, err := client.KeySigner(k, kid)
	if err != nil {
		d.t.Fatal(err)
	}
	return keyPair{kid: kid, signer: s, jwk: jwk}
}

// upload posts a key set; it returns the answer.
func (d *deladmin) upload(tok, clientID string, keys ...keyPair) reply {
	d.t.Helper()
	jwks := make([]any, len(keys))
	for i, k := range keys {
		jwks[i] = k.jwk
	}
	return d.do(tok, "POST", "/clients/"+clientID+"/jwks", map[string]any{"keys": jwks})
}

// uploaders reads the client's JWKS as the consumer sees it: kid -> uploaded_by.
func (d *deladmin) uploaders(clientID string) map[string]string {
	d.t.Helper()
	var set struct{ Keys []map[string]any }
	d.must(d.consumer, "GET", "/clients/"+clientID+"/jwks", nil, http.StatusOK, &set)
	out := map[string]string{}
	for _, k := range set.Keys {
		up, ok := k["uploaded_by"].(string)
		if !ok {
			d.t.Fatalf("key %v has no uploaded_by", k)
		}
		out[k["kid"].(string)] = up
	}
	return out
}

func (d *deladmin) getClient(tok, id string) store.Client {
	d.t.Helper()
	var cl store.Client
	d.must(tok, "GET", "/clients/"+id, nil, http.StatusOK, &cl)
	return cl
}

// wantProblem checks an answer's status and that its problem names each of
// words (in the detail or a field error).
func wantProblem(t *testing.T, r reply, status int, words ...string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	p := problemOf(t, r)
	text := p.Detail
	for _, fe := range p.Errors {
		text += " " + fe.Field + ": " + fe.Detail
	}
	for _, w := range words {
		if !strings.Contains(text, w) {
			t.Fatalf("problem %q does not name %q", text, w)
		}
	}
}

func (d *deladmin) putClient(tok string, cl store.Client, edit func(m map[string]any)) reply {
	d.t.Helper()
	b, err := json.Marshal(cl)
	if err != nil {
		d.t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		d.t.Fatal(err)
	}
	edit(m)
	return d.do(tok, "PUT", "/clients/"+cl.ClientID, m)
}

// TestDelegatedAdmin: a vendor acting for a consumer through a delegated
// admin scope never gets more than the consumer gave it (docs/selfservice.md).
func TestDelegatedAdmin(t *testing.T) {
	eachEngine(t, func(t *testing.T, eng engine) {
		for _, tc := range []struct {
			name string
			run  func(t *testing.T, d *deladmin)
		}{
			// The rule: a managed client lists only scopes its owner could
			// delegate, whoever edits it, and never a portvakt admin scope.
			{"ok/delegated-admin/managed-client-lists-scopes-the-consumer-could-delegate", testManagedClientDelegableScopes},
			{"fail/delegated-admin/admin-scope-on-consumer-client", testAdminScopeOnConsumerClient},
			{"fail/delegated-admin/non-delegable-scope", testNonDelegableScope},
			{"fail/delegated-admin/self-delegation", testSelfDelegation},
			{"fail/delegated-admin/self-access", testSelfAccess},
			{"fail/delegated-admin/key-after-revocation", testKeyAfterRevocation},
			{"fail/delegated-admin/managed-client-after-revocation", testManagedClientAfterRevocation},
			{"fail/delegated-admin/bearer-after-revocation", testBearerAfterRevocation},
			{"fail/delegated-admin/key-on-consumer-client", testKeyOnConsumerClient},
			{"fail/delegated-admin/replace-consumer-key", testReplaceConsumerKey},
			{"fail/delegated-admin/reactivate", testReactivate},
			{"fail/delegated-admin/change-managed-by", testChangeManagedBy},
			{"fail/delegated-admin/managed-client-consumer-org", testManagedClientConsumerOrg},
			{"fail/delegated-admin/consumer-admin-client", testConsumerAdminClient},
		} {
			t.Run(tc.name, func(t *testing.T) { tc.run(t, newDelegatedAdmin(t, eng)) })
		}
	})
}

func testManagedClientDelegableScopes(t *testing.T, d *deladmin) {
	v := d.asConsumer("portvakt:clients.write")
	m := d.managed(v, "acme:api")
	if m.ClientOrgno != consumerOrg || m.ManagedBy != vendorOrg || !slices.Equal(m.Scopes, []string{"acme:api"}) {
		t.Fatalf("managed client %+v", m)
	}
	vk := d.newKey("vendor-key")
	if r := d.upload(v, m.ClientID, vk); r.status != http.StatusOK {
		t.Fatalf("upload: %d %s", r.status, r.body)
	}
	tok, err := d.fetch(m.ClientID, vk.signer, "", "acme:api")
	if err != nil {
		t.Fatalf("token from the managed client: %v", err)
	}
	if c := tokenClaims(t, tok); c["consumer"].(map[string]any)["ID"] != "0192:"+consumerOrg || c["supplier"] != nil {
		t.Fatalf("token claims %v", c)
	}
}

func testAdminScopeOnConsumerClient(t *testing.T, d *deladmin) {
	v := d.asConsumer("portvakt:clients.write")
	r := d.do(v, "POST", "/clients", map[string]any{
		"client_name": "takeover", "description": "x", "scopes": []string{"acme:api", "portvakt:delegations.write"},
	})
	wantProblem(t, r, http.StatusBadRequest, "scopes[1]", "portvakt:delegations.write", "admin scope")

	// Nor on the consumer's own clients.
	var own store.Client
	d.must(d.consumer, "POST", "/clients", map[string]any{"description": "own", "scopes": []string{"acme:internal"}}, http.StatusCreated, &own)
	r = d.putClient(v, own, func(m map[string]any) { m["scopes"] = []string{"acme:internal", "portvakt:admin"} })
	wantProblem(t, r, http.StatusBadRequest, "scopes[1]", "portvakt:admin")
	// What is already there may stay (the vendor renames the client).
	if r := d.putClient(v, own, func(m map[string]any) { m["client_name"] = "renamed by the vendor" }); r.status != http.StatusOK {
		t.Fatalf("vendor renames the consumer's client: %d %s", r.status, r.body)
	}
	if got := d.getClient(d.consumer, own.ClientID); got.ClientName != "renamed by the vendor" || !slices.Equal(got.Scopes, own.Scopes) {
		t.Fatalf("consumer's client after the vendor's rename: %+v", got)
	}
	// The consumer itself may.
	own = d.getClient(d.consumer, own.ClientID)
	if r := d.putClient(d.consumer, own, func(m map[string]any) { m["scopes"] = []string{"acme:internal", "portvakt:clients.read"} }); r.status != http.StatusOK {
		t.Fatalf("the consumer adds an admin scope to its client: %d %s", r.status, r.body)
	}
}

// testConsumerAdminClient: the clients the consumer administers itself
// with are out of the vendor's reach, or it could lock the consumer out of
// revoking it.
func testConsumerAdminClient(t *testing.T, d *deladmin) {
	v := d.asConsumer("portvakt:clients.write")
	admin := d.getClient(v, d.consumerAdmin)
	wantProblem(t, d.putClient(v, admin, func(m map[string]any) { m["scopes"] = []string{"acme:api"} }), http.StatusForbidden, "cannot change or deactivate")
	wantProblem(t, d.do(v, "DELETE", "/clients/"+d.consumerAdmin, nil), http.StatusForbidden, "cannot change or deactivate")
	if got := d.getClient(d.consumer, d.consumerAdmin); !got.Active || !slices.Equal(got.Scopes, admin.Scopes) {
		t.Fatalf("the consumer's admin client after the vendor's attempts: %+v", got)
	}
	// The consumer can still revoke.
	d.revoke("portvakt:clients.write")
}

func testNonDelegableScope(t *testing.T, d *deladmin) {
	v := d.asConsumer("portvakt:clients.write")
	r := d.do(v, "POST", "/clients", map[string]any{
		"client_name": "x", "description": "x", "scopes": []string{"acme:internal"},
	})
	wantProblem(t, r, http.StatusBadRequest, "scopes[0]", "acme:internal", "does not allow delegation")
	// Nor a scope delegated *to* the consumer that it cannot get itself.
	d.must(d.provider, "POST", "/scopes", map[string]any{
		"prefix": "acme", "subscope": "otheronly", "description": "x", "delegation_source": d.issuer,
	}, http.StatusCreated, nil)
	d.must(d.provider, "PUT", "/scopes/access/"+otherOrg+"?scope=acme:otheronly", nil, http.StatusOK, nil)
	d.must(d.other, "PUT", "/delegations/"+consumerOrg+"?scope=acme:otheronly", nil, http.StatusOK, nil)
	r = d.do(v, "POST", "/clients", map[string]any{"description": "x", "scopes": []string{"acme:otheronly"}})
	wantProblem(t, r, http.StatusBadRequest, "acme:otheronly")

	// On a managed client the consumer cannot add it either.
	m := d.managed(v, "acme:api")
	r = d.putClient(d.consumer, m, func(b map[string]any) { b["scopes"] = []string{"acme:api", "acme:internal"} })
	wantProblem(t, r, http.StatusBadRequest, "acme:internal")
	// On its own clients it can: the rule is about what a vendor touches.
	d.must(d.consumer, "POST", "/clients", map[string]any{"description": "own", "scopes": []string{"acme:internal", "acme:otheronly"}}, http.StatusCreated, nil)
}

func testSelfDelegation(t *testing.T, d *deladmin) {
	d.delegate("portvakt:delegations.write")
	v := d.asConsumer("portvakt:delegations.write")
	r := d.do(v, "PUT", "/delegations/"+vendorOrg+"?scope=acme:api", nil)
	wantProblem(t, r, http.StatusForbidden, "cannot delegate anything to itself")
	// Nor an admin scope to anyone: the vendor would pass its power on.
	r = d.do(v, "PUT", "/delegations/"+otherOrg+"?scope=portvakt:clients.write", nil)
	wantProblem(t, r, http.StatusForbidden, "portvakt:clients.write")
	var dels []store.Delegation
	d.must(d.vendor, "GET", "/delegations", nil, http.StatusOK, &dels)
	for _, dl := range dels {
		if dl.Scope == "acme:api" && dl.ConsumerOrgno == consumerOrg {
			t.Fatalf("the vendor delegated to itself: %+v", dl)
		}
	}
	// What the consumer delegated, it may use: acme:api to another org.
	d.must(v, "PUT", "/delegations/"+otherOrg+"?scope=acme:api", nil, http.StatusOK, nil)
}

// testSelfAccess: a provider's vendor, given portvakt:scopes.write, cannot
// put itself on the provider's allow-list.
func testSelfAccess(t *testing.T, d *deladmin) {
	d.must(d.provider, "PUT", "/delegations/"+vendorOrg+"?scope=portvakt:scopes.write", nil, http.StatusOK, nil)
	v := d.certToken(d.vendorAdmin, vendorOrg, providerOrg, "portvakt:scopes.write")
	wantProblem(t, d.do(v, "PUT", "/scopes/access/"+vendorOrg+"?scope=acme:api", nil), http.StatusForbidden, "cannot grant itself access")
	if r := d.do(d.provider, "GET", "/scopes/access?scope=acme:api&inactive=true", nil); strings.Contains(string(r.body), vendorOrg) {
		t.Fatalf("the vendor is on the allow-list: %s", r.body)
	}
	// Managing the allow-list for others is what it was given.
	d.must(v, "PUT", "/scopes/access/"+otherOrg+"?scope=acme:internal", nil, http.StatusOK, nil)
}

func testKeyAfterRevocation(t *testing.T, d *deladmin) {
	v := d.asConsumer("portvakt:clients.write")
	m := d.managed(v, "acme:api")
	vk, ck := d.newKey("vendor-key"), d.newKey("consumer-key")
	d.must(d.consumer, "POST", "/clients/"+m.ClientID+"/jwks", map[string]any{"keys": []any{ck.jwk}}, http.StatusOK, nil)
	if r := d.upload(v, m.ClientID, ck, vk); r.status != http.StatusOK {
		t.Fatalf("vendor upload: %d %s", r.status, r.body)
	}
	if got := d.uploaders(m.ClientID); got["vendor-key"] != vendorOrg || got["consumer-key"] != consumerOrg {
		t.Fatalf("uploaded_by %v", got)
	}
	if _, err := d.fetch(m.ClientID, vk.signer, "", "acme:api"); err != nil {
		t.Fatalf("vendor key before revocation: %v", err)
	}

	d.revoke("portvakt:clients.write")
	// The consumer takes its client back: the vendor's key is gone, its own works.
	cl := d.getClient(d.consumer, m.ClientID)
	d.putClient(d.consumer, cl, func(b map[string]any) { b["active"] = true })
	if _, err := d.fetch(m.ClientID, vk.signer, "", "acme:api"); oauthCode(err) != "invalid_grant" {
		t.Fatalf("vendor key after revocation: %v, want invalid_grant", err)
	}
	if _, err := d.fetch(m.ClientID, ck.signer, "", "acme:api"); err != nil {
		t.Fatalf("consumer key after revocation: %v", err)
	}
	if got := d.uploaders(m.ClientID); len(got) != 1 || got["consumer-key"] != consumerOrg {
		t.Fatalf("keys after revocation: %v, want only the consumer's", got)
	}
}

func testManagedClientAfterRevocation(t *testing.T, d *deladmin) {
	v := d.asConsumer("portvakt:clients.write")
	m := d.managed(v, "acme:api")
	own := d.must(d.consumer, "POST", "/clients", map[string]any{"description": "own", "scopes": []string{"acme:api"}}, http.StatusCreated, nil)
	d.revoke("portvakt:clients.write")
	if cl := d.getClient(d.consumer, m.ClientID); cl.Active || cl.ManagedBy != vendorOrg {
		t.Fatalf("managed client after revocation: active %v managed_by %q, want inactive, still %s", cl.Active, cl.ManagedBy, vendorOrg)
	}
	var ownCl store.Client
	if err := json.Unmarshal(own.body, &ownCl); err != nil {
		t.Fatal(err)
	}
	if cl := d.getClient(d.consumer, ownCl.ClientID); !cl.Active {
		t.Fatal("the consumer's own client was deactivated too")
	}
	var listed []store.Client
	d.must(d.consumer, "GET", "/clients", nil, http.StatusOK, &listed)
	for _, cl := range listed {
		if cl.ClientID == m.ClientID {
			t.Fatal("the deactivated managed client is still listed as active")
		}
	}
	// Delegated again, the vendor still cannot bring it back.
	d.delegate("portvakt:clients.write")
	v = d.asConsumer("portvakt:clients.write")
	cl := d.getClient(d.consumer, m.ClientID)
	wantProblem(t, d.putClient(v, cl, func(b map[string]any) { b["active"] = true }), http.StatusForbidden, "cannot reactivate")
}

func testBearerAfterRevocation(t *testing.T, d *deladmin) {
	v := d.asConsumer("portvakt:clients.write")
	d.managed(v, "acme:api")
	d.revoke("portvakt:clients.write")
	// The vendor's access token is unexpired, but the delegation is gone.
	r := d.do(v, "POST", "/clients", map[string]any{"description": "after", "scopes": []string{"acme:api"}})
	wantProblem(t, r, http.StatusForbidden, "no longer delegates portvakt:clients.write")
	wantProblem(t, d.do(v, "GET", "/clients", nil), http.StatusForbidden, "no longer delegates")
}

func testKeyOnConsumerClient(t *testing.T, d *deladmin) {
	v := d.asConsumer("portvakt:clients.write")
	vk := d.newKey("vendor-key")
	wantProblem(t, d.upload(v, d.consumerAdmin, vk), http.StatusForbidden, "not managed by your organisation")
	wantProblem(t, d.do(v, "DELETE", "/clients/"+d.consumerAdmin+"/jwks", nil), http.StatusForbidden, "not managed by your organisation")
	if got := d.uploaders(d.consumerAdmin); len(got) != 0 {
		t.Fatalf("keys of the consumer's admin client: %v", got)
	}
}

func testReplaceConsumerKey(t *testing.T, d *deladmin) {
	v := d.asConsumer("portvakt:clients.write")
	m := d.managed(v, "acme:api")
	ck, vk, vk2 := d.newKey("consumer-key"), d.newKey("vendor-key"), d.newKey("vendor-key-2")
	d.must(d.consumer, "POST", "/clients/"+m.ClientID+"/jwks", map[string]any{"keys": []any{ck.jwk}}, http.StatusOK, nil)
	wantProblem(t, d.upload(v, m.ClientID, vk), http.StatusForbidden, "consumer-key", "never replaces or removes a key it did not upload")
	// The same kid with other material replaces it too.
	imposter := d.newKey("consumer-key")
	wantProblem(t, d.upload(v, m.ClientID, imposter, vk), http.StatusForbidden, "consumer-key")
	wantProblem(t, d.do(v, "DELETE", "/clients/"+m.ClientID+"/jwks", nil), http.StatusForbidden, "consumer-key")
	// Kept unchanged, the consumer's key stays the consumer's.
	if r := d.upload(v, m.ClientID, ck, vk); r.status != http.StatusOK {
		t.Fatalf("upload keeping the consumer's key: %d %s", r.status, r.body)
	}
	if r := d.upload(v, m.ClientID, ck, vk2); r.status != http.StatusOK {
		t.Fatalf("the vendor replaces its own key: %d %s", r.status, r.body)
	}
	if got := d.uploaders(m.ClientID); len(got) != 2 || got["consumer-key"] != consumerOrg || got["vendor-key-2"] != vendorOrg {
		t.Fatalf("uploaded_by %v", got)
	}
	if _, err := d.fetch(m.ClientID, ck.signer, "", "acme:api"); err != nil {
		t.Fatalf("the consumer's key: %v", err)
	}
}

func testReactivate(t *testing.T, d *deladmin) {
	v := d.asConsumer("portvakt:clients.write")
	m := d.managed(v, "acme:api")
	d.must(d.consumer, "DELETE", "/clients/"+m.ClientID, nil, http.StatusNoContent, nil)
	cl := d.getClient(d.consumer, m.ClientID)
	wantProblem(t, d.putClient(v, cl, func(b map[string]any) { b["active"] = true }), http.StatusForbidden, "cannot reactivate")
	if d.getClient(d.consumer, m.ClientID).Active {
		t.Fatal("the vendor reactivated the client")
	}
	// Other edits of an inactive client are not reactivation.
	if r := d.putClient(v, cl, func(b map[string]any) { b["client_name"] = "still off" }); r.status != http.StatusOK {
		t.Fatalf("rename: %d %s", r.status, r.body)
	}
}

func testChangeManagedBy(t *testing.T, d *deladmin) {
	v := d.asConsumer("portvakt:clients.write")
	m := d.managed(v, "acme:api")
	if m.ManagedBy != vendorOrg {
		t.Fatalf("managed_by %q, want %s", m.ManagedBy, vendorOrg)
	}
	wantProblem(t, d.putClient(d.consumer, m, func(b map[string]any) { b["managed_by"] = "" }), http.StatusBadRequest, "managed_by")
	wantProblem(t, d.putClient(v, m, func(b map[string]any) { b["managed_by"] = otherOrg }), http.StatusBadRequest, "managed_by")
	wantProblem(t, d.do(d.consumer, "POST", "/clients", map[string]any{"description": "x", "managed_by": vendorOrg}), http.StatusBadRequest, "managed_by")
	if got := d.getClient(d.consumer, m.ClientID); got.ManagedBy != vendorOrg {
		t.Fatalf("managed_by %q after the refused changes", got.ManagedBy)
	}
	// The consumer's own clients are managed by nobody.
	if got := d.getClient(d.consumer, d.consumerAdmin); got.ManagedBy != "" {
		t.Fatalf("consumer's own client managed_by %q", got.ManagedBy)
	}
}

func testManagedClientConsumerOrg(t *testing.T, d *deladmin) {
	v := d.asConsumer("portvakt:clients.write")
	m := d.managed(v, "acme:api")
	vk := d.newKey("vendor-key")
	if r := d.upload(v, m.ClientID, vk); r.status != http.StatusOK {
		t.Fatalf("upload: %d %s", r.status, r.body)
	}
	// The other org delegated acme:api to the consumer; a client the vendor
	// manages for the consumer must not reach it.
	if _, err := d.fetch(m.ClientID, vk.signer, otherOrg, "acme:api"); oauthCode(err) != "invalid_scope" {
		t.Fatalf("managed client with consumer_org: %v, want invalid_scope", err)
	}
	// The consumer's own client does (the delegation works).
	var own store.Client
	d.must(d.consumer, "POST", "/clients", map[string]any{"description": "own", "scopes": []string{"acme:api"}}, http.StatusCreated, &own)
	ck := d.newKey("consumer-key")
	d.must(d.consumer, "POST", "/clients/"+own.ClientID+"/jwks", map[string]any{"keys": []any{ck.jwk}}, http.StatusOK, nil)
	if _, err := d.fetch(own.ClientID, ck.signer, otherOrg, "acme:api"); err != nil {
		t.Fatalf("consumer's own client with consumer_org: %v", err)
	}
}

// TestDelegatedAdminStory is the whole story, through HTTP: the vendor
// creates a client for the consumer and uploads its key, gets a token with
// it; the consumer revokes the vendor's portvakt:clients.write; the next
// token request with the vendor's key fails, the managed client is
// deactivated, and both orgs' audit views show every step.
func TestDelegatedAdminStory(t *testing.T) { eachEngine(t, testDelegatedAdminStory) }

func testDelegatedAdminStory(t *testing.T, eng engine) {
	d := newDelegatedAdmin(t, eng)
	v := d.asConsumer("portvakt:clients.write")

	m := d.managed(v, "acme:api")
	vk := d.newKey("vendor-key")
	if r := d.upload(v, m.ClientID, vk); r.status != http.StatusOK {
		t.Fatalf("vendor upload: %d %s", r.status, r.body)
	}
	// The consumer's lists show who manages the client and who uploaded its key.
	var listed []store.Client
	d.must(d.consumer, "GET", "/clients", nil, http.StatusOK, &listed)
	i := slices.IndexFunc(listed, func(c store.Client) bool { return c.ClientID == m.ClientID })
	if i < 0 || listed[i].ManagedBy != vendorOrg || len(listed[i].Keys) != 1 || listed[i].Keys[0].UploadedBy != vendorOrg {
		t.Fatalf("consumer's GET /clients: %+v, want the client managed by %s with the vendor's key", listed, vendorOrg)
	}
	if got := d.getClient(d.consumer, m.ClientID); got.ManagedBy != vendorOrg || got.Keys[0].UploadedBy != vendorOrg {
		t.Fatalf("consumer's GET /clients/{id}: %+v", got)
	}
	if got := d.uploaders(m.ClientID); got["vendor-key"] != vendorOrg {
		t.Fatalf("consumer's GET /clients/{id}/jwks: uploaded_by %v", got)
	}

	tok, err := d.fetch(m.ClientID, vk.signer, "", "acme:api")
	if err != nil {
		t.Fatalf("token with the vendor's key: %v", err)
	}
	tokJTI := tokenClaims(t, tok)["jti"].(string)

	d.revoke("portvakt:clients.write")
	if _, err := d.fetch(m.ClientID, vk.signer, "", "acme:api"); oauthCode(err) != "invalid_grant" {
		t.Fatalf("token with the vendor's key after revocation: %v, want invalid_grant", err)
	}
	if got := d.getClient(d.consumer, m.ClientID); got.Active || len(got.Keys) != 0 {
		t.Fatalf("managed client after revocation: active %v, keys %+v; want inactive without the vendor's key", got.Active, got.Keys)
	}

	// Both audit views, oldest first: the steps of the story.
	wantSteps := []string{
		"delegation.create portvakt:clients.write",
		"client.create " + m.ClientID,
		"client.keys.replace " + m.ClientID,
		"delegation.revoke portvakt:clients.write",
		"client.keys.revoke " + m.ClientID,
		"client.deactivate " + m.ClientID,
	}
	for _, view := range []struct{ org, clientID string }{{consumerOrg, d.consumerAdmin}, {vendorOrg, d.vendorAdmin}} {
		auditor := d.certToken(view.clientID, view.org, "", "portvakt:audit.read")
		var page struct {
			Events []struct {
				store.AuditEvent
				Token *struct {
					ConsumerOrgno string   `json:"consumer_orgno"`
					Scopes        []string `json:"scopes"`
				} `json:"token"`
			} `json:"events"`
		}
		d.must(auditor, "GET", "/audit?limit=500", nil, http.StatusOK, &page)
		var steps []string
		sawToken := false
		for _, ev := range slices.Backward(page.Events) {
			switch {
			case ev.Action == "token.issue" && ev.Target == tokJTI:
				sawToken = ev.ActorClientID == m.ClientID && ev.Token != nil && ev.Token.ConsumerOrgno == consumerOrg &&
					slices.Equal(ev.Token.Scopes, []string{"acme:api"}) && slices.Contains(ev.Orgs, vendorOrg)
			case ev.Target == m.ClientID || ev.Target == "portvakt:clients.write":
				steps = append(steps, ev.Action+" "+ev.Target)
				if !slices.Contains(ev.Orgs, consumerOrg) || !slices.Contains(ev.Orgs, vendorOrg) {
					t.Errorf("%s's view: %s %s concerns %v, want both orgs", view.org, ev.Action, ev.Target, ev.Orgs)
				}
				if ev.Action == "client.create" && (ev.ActorOrg != consumerOrg || ev.ActorClientID != d.vendorAdmin) {
					t.Errorf("%s's view: client.create by %s (client %s), want the vendor's client %s acting for %s",
						view.org, ev.ActorOrg, ev.ActorClientID, d.vendorAdmin, consumerOrg)
				}
			}
		}
		if !slices.Equal(steps, wantSteps) {
			t.Errorf("%s's audit view:\n got %q\nwant %q", view.org, steps, wantSteps)
		}
		if !sawToken {
			t.Errorf("%s's audit view does not show the token %s issued with the vendor's key", view.org, tokJTI)
		}
	}
}

// TestDelegatedAdminUploadRacingRevocation: the vendor keeps uploading keys
// to its managed client while the consumer revokes. Once the revocation
// has returned and the uploads have stopped, no key of the vendor is left:
// an upload that passed its request's delegation check before the revoke
// must not commit after it (the check is repeated in the transaction).
func TestDelegatedAdminUploadRacingRevocation(t *testing.T) {
	eachEngine(t, func(t *testing.T, eng engine) {
		d := newDelegatedAdmin(t, eng)
		v := d.asConsumer("portvakt:clients.write")
		m := d.managed(v, "acme:api")
		const workers, perWorker = 4, 15
		bodies := make([][]byte, workers*perWorker)
		for i := range bodies {
			b, err := json.Marshal(map[string]any{"keys": []any{d.newKey("vendor-key").jwk}})
			if err != nil {
				t.Fatal(err)
			}
			bodies[i] = b
		}
		url := strings.TrimSuffix(d.issuer, "/") + selfservice.Base + "/clients/" + m.ClientID + "/jwks"
		upload := func(body []byte) (int, error) {
			req, err := http.NewRequestWithContext(t.Context(), "POST", url, bytes.NewReader(body))
			if err != nil {
				return 0, err
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+v)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return 0, err
			}
			resp.Body.Close()
			return resp.StatusCode, nil
		}
		started := make(chan struct{}, workers)
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			wg.Go(func() {
				started <- struct{}{}
				for i := range perWorker {
					status, err := upload(bodies[w*perWorker+i])
					switch {
					case err != nil:
						errs <- err
						return
					case status == http.StatusForbidden:
						return // revoked: every later upload is refused too
					case status != http.StatusOK:
						errs <- fmt.Errorf("upload: status %d", status)
						return
					}
				}
			})
		}
		for range workers {
			<-started
		}
		d.revoke("portvakt:clients.write")
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if got := d.uploaders(m.ClientID); len(got) != 0 {
			t.Fatalf("keys after the revocation: %v, want none", got)
		}
		if status, err := upload(bodies[0]); err != nil || status != http.StatusForbidden {
			t.Fatalf("upload after the revocation: %d %v, want 403", status, err)
		}
	})
}
