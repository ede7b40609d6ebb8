package selfservice_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/portvakt/portvakt/internal/entcert"
	"github.com/portvakt/portvakt/internal/exchange"
	"github.com/portvakt/portvakt/internal/manage"
	"github.com/portvakt/portvakt/internal/norid"
	"github.com/portvakt/portvakt/internal/pgtest"
	"github.com/portvakt/portvakt/internal/protocol"
	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/rules"
	"github.com/portvakt/portvakt/internal/selfservice"
	"github.com/portvakt/portvakt/internal/server"
	"github.com/portvakt/portvakt/internal/signer"
	"github.com/portvakt/portvakt/internal/store"
	"github.com/portvakt/portvakt/internal/store/sqlstore"
	"github.com/portvakt/portvakt/internal/testpki"
	"github.com/portvakt/portvakt/internal/tokenendpoint"
	"github.com/portvakt/portvakt/pkg/client"
)

// Synthetic org numbers, valid under mod-11.
var (
	platformOrg = mustOrg("31000001")
	providerOrg = mustOrg("31000002")
	consumerOrg = mustOrg("31000003")
	vendorOrg   = mustOrg("31000004")
	otherOrg    = mustOrg("31000005")
)

// platformClient is the only client the config declares.
const platformClient = "0b0b0b0b-0000-4000-8000-000000000001"

func mustOrg(prefix string) string {
	o, ok := norid.CompleteOrg(prefix)
	if !ok {
		panic("no check digit for " + prefix)
	}
	return o
}

// engine gives a test a fresh, empty database of one engine.
type engine struct {
	name string
	// config returns the Config of a database that lives until the test
	// ends. It may skip the test (or fail it, under CI).
	config func(t *testing.T) sqlstore.Config
}

var (
	sqliteEngine = engine{name: "sqlite", config: func(t *testing.T) sqlstore.Config {
		t.Helper()
		return sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: filepath.Join(t.TempDir(), "portvakt.db")}
	}}
	// postgresEngine gives every test its own schema in the database of
	// PORTVAKT_TEST_POSTGRES_DSN. Without that variable it skips, loudly,
	// and under CI it fails: there every engine must run.
	postgresEngine = engine{name: "postgres", config: func(t *testing.T) sqlstore.Config {
		t.Helper()
		return sqlstore.Config{Driver: sqlstore.DriverPostgres, DSN: pgtest.FreshSchema(t, pgtest.DSN(t))}
	}}
)

// eachEngine runs test as a subtest per engine: "sqlite", then "postgres".
func eachEngine(t *testing.T, test func(t *testing.T, eng engine)) {
	t.Helper()
	for _, eng := range []engine{sqliteEngine, postgresEngine} {
		t.Run(eng.name, func(t *testing.T) { test(t, eng) })
	}
}

// env is a whole server on a real HTTP listener: a store of one engine under the
// config's static records (only the built-ins and the platform client),
// rules cache, token endpoint and the self-service API on one mux.
type env struct {
	t      *testing.T
	issuer string
	db     *sqlstore.Store
	keys   *signer.Set
	pki    *testpki.PKI

	mu    sync.Mutex
	leafs map[string]*testpki.Leaf
}

func newEnv(t *testing.T, eng engine) *env {
	t.Helper()
	ctx := t.Context()
	pki, err := testpki.New("Selfservice Test")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	issuer := srv.URL + "/"

	db, err := sqlstore.Open(ctx, eng.config(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	static := records.Builtin(issuer, platformOrg, now)
	static.Clients = append(static.Clients, store.Client{
		ClientID: platformClient, ClientOrgno: platformOrg, ClientName: "platform-admin",
		Description: "the platform admin", IntegrationType: protocol.IntegrationMaskinporten,
		TokenEndpointAuthMethod: protocol.AuthPrivateKeyJWT,
		Scopes:                  append([]string{records.AdminScope}, records.AdminScopes...),
		Keys:                    []store.ClientKey{}, Active: true, Created: now, LastUpdated: now,
	})
	st := store.WithStatic(db, static)
	cache := rules.NewCache(st, rules.CacheConfig{})
	key, err := signer.Generate("RS256")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := signer.NewSet(key)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := entcert.NewVerifier(entcert.Policy{Roots: []*x509.Certificate{pki.Root.Cert}, Intermediates: []*x509.Certificate{pki.Intermediate.Cert}})
	if err != nil {
		t.Fatal(err)
	}
	ex := exchange.New(exchange.Config{Issuer: issuer}, cache, certs, db, keys)
	log := slog.New(slog.DiscardHandler)
	core, err := manage.New(manage.Config{Issuer: issuer, PlatformOrg: platformOrg}, st, cache)
	if err != nil {
		t.Fatal(err)
	}
	api, err := selfservice.New(selfservice.Config{Issuer: issuer, Log: log}, core, keys)
	if err != nil {
		t.Fatal(err)
	}
	public, err := server.Public{Issuer: issuer, Token: tokenendpoint.New(ex, tokenendpoint.Config{}), JWKS: keys.JWKS, API: api, Log: log}.Handler()
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = public
	return &env{t: t, issuer: issuer, db: db, keys: keys, pki: pki, leafs: map[string]*testpki.Leaf{}}
}

// leaf is org's enterprise certificate, one per org.
func (e *env) leaf(org string) *testpki.Leaf {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if l, ok := e.leafs[org]; ok {
		return l
	}
	l, err := e.pki.Leaf(testpki.LeafOptions{Org: org})
	if err != nil {
		e.t.Fatal(err)
	}
	e.leafs[org] = l
	return l
}

// fetch asks the real token endpoint for a token.
func (e *env) fetch(clientID string, s client.Signer, consumer string, scopes ...string) (string, error) {
	e.t.Helper()
	ts, err := client.NewTokenSource(e.t.Context(), client.Config{
		Issuer: e.issuer, TokenURL: e.issuer + "token", ClientID: clientID, Signer: s,
		Scopes: scopes, ConsumerOrg: consumer,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := ts.Fetch(e.t.Context())
	if err != nil {
		return "", err
	}
	return resp.AccessToken, nil
}

// certToken gets a token for a client authenticated by org's certificate.
func (e *env) certToken(clientID, org, consumer string, scopes ...string) string {
	e.t.Helper()
	l := e.leaf(org)
	s, err := client.CertificateSigner(l.Key, l.Chain)
	if err != nil {
		e.t.Fatal(err)
	}
	tok, err := e.fetch(clientID, s, consumer, scopes...)
	if err != nil {
		e.t.Fatalf("token for %s (%s): %v", clientID, org, err)
	}
	return tok
}

func (e *env) adminToken() string {
	e.t.Helper()
	return e.certToken(platformClient, platformOrg, "", records.AdminScope, "portvakt:clients.write", "portvakt:audit.read")
}

// onboard has the platform admin create a certificate client for org with
// every delegable admin scope, and returns a token of it with all of them.
func (e *env) onboard(admin, org string) (clientID, token string) {
	e.t.Helper()
	var cl store.Client
	e.must(admin, "POST", "/clients", map[string]any{
		"client_orgno": org, "client_name": "admin-" + org, "description": "self-service for " + org,
		"scopes": records.AdminScopes,
	}, http.StatusCreated, &cl)
	return cl.ClientID, e.certToken(cl.ClientID, org, "", records.AdminScopes...)
}

// reply is an API answer.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (e *env) do(token, method, path string, body any) reply {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequestWithContext(e.t.Context(), method, strings.TrimSuffix(e.issuer, "/")+selfservice.Base+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// must calls the API, fails the test on another status, and decodes the
// body into out when out is not nil.
func (e *env) must(token, method, path string, body any, want int, out any) reply {
	e.t.Helper()
	r := e.do(token, method, path, body)
	if r.status != want {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, want, r.body)
	}
	if out != nil {
		if err := json.Unmarshal(r.body, out); err != nil {
			e.t.Fatalf("%s %s: decode %s: %v", method, path, r.body, err)
		}
	}
	return r
}

// problem decodes a problem body.
func problemOf(t *testing.T, r reply) selfservice.Problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json: %s", ct, r.body)
	}
	var p selfservice.Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// ecJWK makes an EC P-256 key and its public JWK with kid.
func ecJWK(t *testing.T, kid string) (crypto.Signer, map[string]any) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k, jwkOf(t, k.Public(), kid)
}

func jwkOf(t *testing.T, pub any, kid string) map[string]any {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKey{Key: pub, KeyID: kid, Use: "sig"})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// tokenClaims reads the claims of a token (unverified; the test made it).
func tokenClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	_, c, err := client.DecodeToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// oauthCode is the OAuth error code of a failed token request.
func oauthCode(err error) string {
	var oe *client.Error
	if errors.As(err, &oe) {
		return oe.Code
	}
	return ""
}

// auditAll reads every audit event, oldest first, as the store has them.
func (e *env) auditAll(ctx context.Context) []store.AuditEvent {
	e.t.Helper()
	evs, err := e.db.ListAudit(ctx, store.AuditFilter{Limit: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	for i, j := 0, len(evs)-1; i < j; i, j = i+1, j-1 {
		evs[i], evs[j] = evs[j], evs[i]
	}
	return evs
}

func bodyReader(t *testing.T, body any) io.Reader {
	t.Helper()
	if body == nil {
		return nil
	}
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(b)
}

func rsaJWK(t *testing.T, bits int, kid string) map[string]any {
	t.Helper()
	k, err := testpki.RSAKey(bits)
	if err != nil {
		t.Fatal(err)
	}
	return jwkOf(t, k.Public(), kid)
}

func ec384JWK(t *testing.T, kid string) (crypto.Signer, map[string]any) {
	t.Helper()
	k, err := testpki.ECKey(elliptic.P384())
	if err != nil {
		t.Fatal(err)
	}
	return k, jwkOf(t, k.Public(), kid)
}

func ecPrivateJWK(t *testing.T, kid string) map[string]any {
	t.Helper()
	k, err := testpki.ECKey(elliptic.P256())
	if err != nil {
		t.Fatal(err)
	}
	return jwkOf(t, k, kid)
}

func ecJWKUse(t *testing.T, kid, use string) map[string]any {
	t.Helper()
	_, m := ecJWK(t, kid)
	m["use"] = use
	return m
}

func ecJWKAlg(t *testing.T, kid, alg string) map[string]any {
	t.Helper()
	_, m := ecJWK(t, kid)
	m["alg"] = alg
	return m
}

func ecJWKNoKid(t *testing.T) map[string]any {
	t.Helper()
	_, m := ecJWK(t, "")
	delete(m, "kid")
	return m
}
