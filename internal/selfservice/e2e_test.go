package selfservice_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/portvakt/portvakt/internal/store"
	"github.com/portvakt/portvakt/pkg/client"
)

// TestEndToEnd goes from a config that declares only the platform admin to
// tokens for a consumer and a delegated vendor, through HTTP only, and
// checks the audit trail event by event.
func TestEndToEnd(t *testing.T) { eachEngine(t, testEndToEnd) }

func testEndToEnd(t *testing.T, eng engine) {
	e := newEnv(t, eng)
	ctx := t.Context()
	admin := e.adminToken()

	// The platform admin assigns a prefix and onboards three orgs.
	var p store.Prefix
	e.must(admin, "PUT", "/prefixes/acme", map[string]string{"owner_org": providerOrg}, http.StatusOK, &p)
	if p.Prefix != "acme" || p.OwnerOrg != providerOrg {
		t.Fatalf("prefix %+v", p)
	}
	providerAdmin, provider := e.onboard(admin, providerOrg)
	consumerAdmin, consumer := e.onboard(admin, consumerOrg)
	vendorAdmin, vendor := e.onboard(admin, vendorOrg)

	// The provider creates a delegable scope and grants the consumer.
	var sc store.Scope
	e.must(provider, "POST", "/scopes", map[string]any{
		"prefix": "acme", "subscope": "api", "description": "The ACME API", "delegation_source": e.issuer,
	}, http.StatusCreated, &sc)
	if sc.Name != "acme:api" || !sc.Active || sc.OwnerOrgno != providerOrg || sc.Visibility != store.VisibilityPublic {
		t.Fatalf("scope %+v", sc)
	}
	e.must(provider, "PUT", "/scopes/access/"+consumerOrg+"?scope=acme:api", nil, http.StatusOK, nil)

	// The consumer creates a kid client, uploads a key, and gets a token.
	var kidClient store.Client
	e.must(consumer, "POST", "/clients", map[string]any{
		"client_name": "acme-integration", "description": "calls the ACME API", "scopes": []string{"acme:api"},
	}, http.StatusCreated, &kidClient)
	key, jwk := ecJWK(t, "consumer-key-1")
	var set struct{ Keys []map[string]any }
	e.must(consumer, "POST", "/clients/"+kidClient.ClientID+"/jwks", map[string]any{"keys": []any{jwk}}, http.StatusOK, &set)
	if len(set.Keys) != 1 || set.Keys[0]["kid"] != "consumer-key-1" || set.Keys[0]["exp"] == nil {
		t.Fatalf("jwks %+v", set)
	}
	kidSigner, err := client.KeySigner(key, "consumer-key-1")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := e.fetch(kidClient.ClientID, kidSigner, "", "acme:api")
	if err != nil {
		t.Fatalf("consumer token: %v", err)
	}
	if c := tokenClaims(t, tok); c["scope"] != "acme:api" || c["client_amr"] != "private_key_jwt" {
		t.Fatalf("consumer token claims %v", c)
	}

	// The consumer delegates the scope to the vendor, and the vendor gets a
	// delegated token with consumer_org.
	e.must(consumer, "PUT", "/delegations/"+vendorOrg+"?scope=acme:api", nil, http.StatusOK, nil)
	var vendorClient store.Client
	e.must(vendor, "POST", "/clients", map[string]any{
		"client_name": "acme-for-customers", "description": "vendor integration", "scopes": []string{"acme:api"},
	}, http.StatusCreated, &vendorClient)
	vtok := e.certToken(vendorClient.ClientID, vendorOrg, consumerOrg, "acme:api")
	vc := tokenClaims(t, vtok)
	if vc["consumer"].(map[string]any)["ID"] != "0192:"+consumerOrg || vc["supplier"].(map[string]any)["ID"] != "0192:"+vendorOrg {
		t.Fatalf("vendor token claims %v", vc)
	}

	// A vendor with a delegated admin scope acts for the consumer.
	e.must(consumer, "PUT", "/delegations/"+vendorOrg+"?scope=portvakt:clients.write", nil, http.StatusOK, nil)
	vendorAsConsumer := e.certToken(vendorAdmin, vendorOrg, consumerOrg, "portvakt:clients.write")
	var managed store.Client
	e.must(vendorAsConsumer, "POST", "/clients", map[string]any{
		"client_name": "run-by-vendor", "description": "managed by the vendor", "scopes": []string{"acme:api"},
	}, http.StatusCreated, &managed)
	if managed.ClientOrgno != consumerOrg {
		t.Fatalf("vendor-made client belongs to %s, want the consumer %s", managed.ClientOrgno, consumerOrg)
	}

	// The provider removes access: the next token requests fail at once.
	e.must(provider, "DELETE", "/scopes/access/"+consumerOrg+"?scope=acme:api", nil, http.StatusNoContent, nil)
	if _, err := e.fetch(kidClient.ClientID, kidSigner, "", "acme:api"); oauthCode(err) != "invalid_scope" {
		t.Fatalf("consumer token after revoke: %v, want invalid_scope", err)
	}
	vl := e.leaf(vendorOrg)
	vs, _ := client.CertificateSigner(vl.Key, vl.Chain)
	if _, err := e.fetch(vendorClient.ClientID, vs, consumerOrg, "acme:api"); oauthCode(err) != "invalid_scope" {
		t.Fatalf("vendor token after revoke: %v, want invalid_scope", err)
	}

	// The audit trail, event by event.
	jti := func(tok string) string { return tokenClaims(t, tok)["jti"].(string) }
	type want struct {
		action, actor, actorClient, jti, target string
		orgs                                    []string
	}
	wants := []want{
		{"prefix.assign", platformOrg, platformClient, jti(admin), "acme", []string{providerOrg, platformOrg}},
		{"client.create", platformOrg, platformClient, jti(admin), providerAdmin, []string{providerOrg, platformOrg}},
		{"client.create", platformOrg, platformClient, jti(admin), consumerAdmin, []string{consumerOrg, platformOrg}},
		{"client.create", platformOrg, platformClient, jti(admin), vendorAdmin, []string{vendorOrg, platformOrg}},
		{"scope.create", providerOrg, providerAdmin, jti(provider), "acme:api", []string{providerOrg}},
		{"access.grant", providerOrg, providerAdmin, jti(provider), "acme:api", []string{providerOrg, consumerOrg}},
		{"client.create", consumerOrg, consumerAdmin, jti(consumer), kidClient.ClientID, []string{consumerOrg}},
		{"client.keys.replace", consumerOrg, consumerAdmin, jti(consumer), kidClient.ClientID, []string{consumerOrg}},
		{"delegation.create", consumerOrg, consumerAdmin, jti(consumer), "acme:api", []string{consumerOrg, vendorOrg}},
		{"client.create", vendorOrg, vendorAdmin, jti(vendor), vendorClient.ClientID, []string{vendorOrg}},
		{"delegation.create", consumerOrg, consumerAdmin, jti(consumer), "portvakt:clients.write", []string{consumerOrg, vendorOrg}},
		{"client.create", consumerOrg, vendorAdmin, jti(vendorAsConsumer), managed.ClientID, []string{consumerOrg, vendorOrg}},
		{"access.revoke", providerOrg, providerAdmin, jti(provider), "acme:api", []string{providerOrg, consumerOrg}},
	}
	got := e.auditAll(ctx)
	if len(got) != len(wants) {
		for _, g := range got {
			t.Logf("event %s %s %s", g.Action, g.ActorOrg, g.Target)
		}
		t.Fatalf("%d audit events, want %d", len(got), len(wants))
	}
	for i, w := range wants {
		g := got[i]
		if g.Action != w.action || g.ActorOrg != w.actor || g.ActorClientID != w.actorClient || g.ActorTokenJTI != w.jti ||
			g.Target != w.target || !slices.Equal(g.Orgs, w.orgs) {
			t.Errorf("event %d: got %s actor=%s client=%s jti=%s target=%s orgs=%v\nwant %+v",
				i, g.Action, g.ActorOrg, g.ActorClientID, g.ActorTokenJTI, g.Target, g.Orgs, w)
		}
	}
	// Before and after say what changed.
	last := got[len(got)-1]
	var before, after store.Access
	if err := json.Unmarshal(last.Before, &before); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(last.After, &after); err != nil {
		t.Fatal(err)
	}
	if before.State != store.AccessApproved || after.State != store.AccessDenied || after.ConsumerOrgno != consumerOrg {
		t.Errorf("access.revoke before %+v after %+v", before, after)
	}
	if got[4].Before != nil || got[4].After == nil {
		t.Errorf("scope.create: before %s after %s, want only after", got[4].Before, got[4].After)
	}

	// Through the API each org sees the events concerning it, newest first,
	// paged with next_cursor.
	auditor := e.certToken(consumerAdmin, consumerOrg, "", "portvakt:audit.read")
	var seen []string
	cursor := ""
	for range 10 {
		var page struct {
			Events     []store.AuditEvent `json:"events"`
			NextCursor string             `json:"next_cursor"`
		}
		e.must(auditor, "GET", "/audit?limit=2&cursor="+cursor, nil, http.StatusOK, &page)
		for _, ev := range page.Events {
			if ev.Action == "token.issue" {
				continue // token events: see TestAuditVisibility
			}
			seen = append(seen, ev.Action+" "+ev.Target)
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	wantSeen := []string{
		"access.revoke acme:api", "client.create " + managed.ClientID, "delegation.create portvakt:clients.write",
		"delegation.create acme:api", "client.keys.replace " + kidClient.ClientID, "client.create " + kidClient.ClientID,
		"access.grant acme:api", "client.create " + consumerAdmin,
	}
	if !slices.Equal(seen, wantSeen) {
		t.Errorf("consumer's audit view:\n got %q\nwant %q", seen, wantSeen)
	}
}
