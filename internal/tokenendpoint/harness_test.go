package tokenendpoint_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/portvakt/portvakt/internal/entcert"
	"github.com/portvakt/portvakt/internal/exchange"
	rec "github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/rules"
	"github.com/portvakt/portvakt/internal/server"
	"github.com/portvakt/portvakt/internal/signer"
	"github.com/portvakt/portvakt/internal/store"
	"github.com/portvakt/portvakt/internal/store/sqlstore"
	"github.com/portvakt/portvakt/internal/testpki"
	"github.com/portvakt/portvakt/internal/tokenendpoint"
)

const (
	issuer      = "https://auth.test.example/"
	platformOrg = "310000019"
	providerOrg = "310000027"
	consumerOrg = "310000035"
	vendorOrg   = "310000043"
	otherOrg    = "310000051"
)

// clock is the pinned clock every part of the server under test reads.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// identity is a client's signing material.
type identity struct {
	clientID string
	key      crypto.Signer
	x5c      []string // certificate clients
	kid      string   // key clients
	serial   *big.Int // the leaf's serial, when a test needs it
}

// env is one server under test: real SQLite, real HTTP.
type env struct {
	t       testing.TB
	clock   *clock
	db      *sqlstore.Store
	store   store.Store
	cache   *rules.Cache
	keys    *signer.Set
	handler http.Handler
	srv     *httptest.Server
	pki     *testpki.PKI
	ids     map[string]*identity
	logs    *logBuffer // the access lines, JSON
}

// logBuffer collects log output written from the server's goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var (
	sharedOnce sync.Once
	sharedPKI  *testpki.PKI
	sharedIDs  map[string]*identity
	sharedKeys *signer.Set
	sharedErr  error
)

// fixtures makes the (slow to generate) keys and certificates once per test
// binary; every env gets its own database.
func fixtures(t testing.TB) (*testpki.PKI, map[string]*identity, *signer.Set) {
	t.Helper()
	sharedOnce.Do(func() {
		p, err := testpki.New("Test")
		if err != nil {
			sharedErr = err
			return
		}
		ids := map[string]*identity{}
		leaf := func(name, org string, o testpki.LeafOptions) {
			if sharedErr != nil {
				return
			}
			o.Org = org
			l, err := p.Leaf(o)
			if err != nil {
				sharedErr = err
				return
			}
			ids[name] = &identity{clientID: uuid.NewSHA1(uuid.NameSpaceURL, []byte(name)).String(), key: l.Key, x5c: l.X5C()}
		}
		leaf("consumer-seid1", consumerOrg, testpki.LeafOptions{Style: testpki.SEID1})
		leaf("consumer-seid2", consumerOrg, testpki.LeafOptions{Style: testpki.SEID2})
		leaf("vendor", vendorOrg, testpki.LeafOptions{})
		leaf("other", otherOrg, testpki.LeafOptions{})
		leaf("expired-cert", consumerOrg, testpki.LeafOptions{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
		leaf("no-digsig", consumerOrg, testpki.LeafOptions{KeyUsage: 0, NoKeyUsage: true})
		leaf("keyenc-only", consumerOrg, testpki.LeafOptions{KeyUsage: 0x20 /* keyEncipherment */})
		leaf("self-signed", consumerOrg, testpki.LeafOptions{SelfSigned: true})
		// A certificate from a CA nobody trusts.
		if sharedErr == nil {
			rogue, err := testpki.New("Rogue")
			if err != nil {
				sharedErr = err
				return
			}
			l, err := rogue.Leaf(testpki.LeafOptions{Org: consumerOrg})
			if err != nil {
				sharedErr = err
				return
			}
			ids["untrusted"] = &identity{clientID: uuid.NewSHA1(uuid.NameSpaceURL, []byte("untrusted")).String(), key: l.Key, x5c: l.X5C()}
		}
		for name, mk := range map[string]func() (crypto.Signer, error){
			"kid-rsa":   func() (crypto.Signer, error) { return testpki.RSAKey(2048) },
			"kid-ec256": func() (crypto.Signer, error) { return testpki.ECKey(elliptic.P256()) },
			"kid-ec384": func() (crypto.Signer, error) { return testpki.ECKey(elliptic.P384()) },
		} {
			k, err := mk()
			if err != nil {
				sharedErr = err
				return
			}
			ids[name] = &identity{clientID: uuid.NewSHA1(uuid.NameSpaceURL, []byte(name)).String(), key: k, kid: name + "-1"}
		}
		k, err := signer.Generate("RS256")
		if err != nil {
			sharedErr = err
			return
		}
		sharedKeys, sharedErr = signer.NewSet(k)
		sharedPKI, sharedIDs = p, ids
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return sharedPKI, sharedIDs, sharedKeys
}

func jwkOf(t testing.TB, id *identity) json.RawMessage {
	t.Helper()
	alg := "RS256"
	if ec, ok := id.key.(*ecdsa.PrivateKey); ok {
		alg = map[int]string{256: "ES256", 384: "ES384"}[ec.Curve.Params().BitSize]
	}
	b, err := json.Marshal(jose.JSONWebKey{Key: id.key.Public(), KeyID: id.kid, Algorithm: alg, Use: "sig"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// records are the access rules every test starts from.
func records(t testing.TB, ids map[string]*identity, now time.Time) store.StaticRecords {
	t.Helper()
	r := rec.Builtin(issuer, platformOrg, now)
	scope := func(sub string, mod func(*store.Scope)) {
		s := store.Scope{
			Name: "demo:" + sub, Prefix: "demo", Subscope: sub, Description: sub, Active: true,
			AllowedIntegrationTypes: []string{}, Visibility: store.VisibilityPublic, Audiences: []string{},
			OwnerOrgno: providerOrg, Created: now, LastUpdated: now,
		}
		if mod != nil {
			mod(&s)
		}
		r.Scopes = append(r.Scopes, s)
	}
	r.Prefixes = append(r.Prefixes, store.Prefix{Prefix: "demo", OwnerOrg: providerOrg, Created: now, LastUpdated: now})
	scope("read", func(s *store.Scope) { s.DelegationSource = issuer })
	scope("write", func(s *store.Scope) { s.ATMaxAge = 60 })
	scope("short", func(s *store.Scope) { s.ATMaxAge = 30 })
	scope("open", func(s *store.Scope) { s.AccessibleForAll = true })
	scope("inactive", func(s *store.Scope) { s.Active = false })
	scope("nodelegation", nil)
	scope("foreign-delegation", func(s *store.Scope) { s.DelegationSource = "https://elsewhere.example/" })
	scope("revoked-delegation", func(s *store.Scope) { s.DelegationSource = issuer })
	scope("denied", nil)
	scope("other-type", func(s *store.Scope) { s.AllowedIntegrationTypes = []string{"idporten"} })
	scope("any-type", func(s *store.Scope) { s.AllowedIntegrationTypes = []string{"maskinporten"} })
	scope("records", func(s *store.Scope) {
		s.RequiresAudience = true
		s.Audiences = []string{"https://api.example/records", "https://api.example/archive"}
	})
	scope("audlist", func(s *store.Scope) { s.Audiences = []string{"https://api.example/a"} })
	grant := func(scope, org, state string) {
		r.Access = append(r.Access, store.Access{Scope: scope, ConsumerOrgno: org, OwnerOrgno: providerOrg, State: state, Created: now, LastUpdated: now})
	}
	for _, s := range []string{"read", "write", "short", "inactive", "nodelegation", "foreign-delegation", "revoked-delegation", "other-type", "any-type", "records", "audlist"} {
		grant("demo:"+s, consumerOrg, store.AccessApproved)
	}
	grant("demo:denied", consumerOrg, store.AccessDenied)
	deleg := func(scope, state string) {
		r.Delegations = append(r.Delegations, store.Delegation{Scope: scope, ConsumerOrgno: consumerOrg, SupplierOrgno: vendorOrg, State: state, Created: now, LastUpdated: now})
	}
	deleg("demo:read", store.DelegationActive)
	deleg("demo:nodelegation", store.DelegationActive)
	deleg("demo:foreign-delegation", store.DelegationActive)
	deleg("demo:revoked-delegation", store.DelegationRevoked)

	all := []string{"demo:read", "demo:write", "demo:short", "demo:open", "demo:inactive", "demo:nodelegation", "demo:foreign-delegation",
		"demo:revoked-delegation", "demo:denied", "demo:other-type", "demo:any-type", "demo:records", "demo:audlist"}
	client := func(name, org string, keys bool, mod func(*store.Client)) {
		id := ids[name]
		c := store.Client{
			ClientID: id.clientID, ClientOrgno: org, ClientName: name, Description: name,
			IntegrationType: "maskinporten", TokenEndpointAuthMethod: "private_key_jwt",
			Scopes: all, Active: true, Created: now, LastUpdated: now,
		}
		if keys {
			c.Keys = []store.ClientKey{{KID: id.kid, JWK: jwkOf(t, id), Created: now, Expires: now.AddDate(1, 0, 0)}}
		}
		if mod != nil {
			mod(&c)
		}
		r.Clients = append(r.Clients, c)
	}
	for _, n := range []string{"consumer-seid1", "consumer-seid2", "expired-cert", "no-digsig", "keyenc-only", "self-signed", "untrusted"} {
		client(n, consumerOrg, false, nil)
	}
	client("vendor", vendorOrg, false, nil)
	client("other", consumerOrg, false, nil) // registered to the consumer, certificate of another org
	for _, n := range []string{"kid-rsa", "kid-ec256", "kid-ec384"} {
		client(n, consumerOrg, true, nil)
	}
	return r
}

type envOption = func(*store.StaticRecords)

// openStore opens and migrates the store of a test env (sc), closed at the
// test's end, and returns it, recs overlaid on it, and a rules cache over
// that.
func openStore(t testing.TB, sc sqlstore.Config, recs store.StaticRecords) (*sqlstore.Store, store.Store, *rules.Cache) {
	t.Helper()
	db, err := sqlstore.Open(t.Context(), sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	st := store.WithStatic(db, recs)
	return db, st, rules.NewCache(st, rules.CacheConfig{})
}

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	return newObservedEnv(t, observers{}, opts...)
}

// observers are what an env's parts report to; the zero value (every
// Observer nil) observes nothing.
type observers struct {
	exchange exchange.Observer
	endpoint tokenendpoint.Observer
	// endpointNow is the token endpoint's clock; nil = time.Now.
	endpointNow func() time.Time
}

func newObservedEnv(t testing.TB, obs observers, opts ...envOption) *env {
	t.Helper()
	pki, ids, keys := fixtures(t)
	c := &clock{t: time.Now().Truncate(time.Second)}
	recs := records(t, ids, c.Now())
	for _, o := range opts {
		o(&recs)
	}
	db, st, cache := openStore(t, sqlstore.Config{Driver: "sqlite", DSN: filepath.Join(t.TempDir(), "portvakt.db")}, recs)
	certs, err := entcert.NewVerifier(entcert.Policy{Roots: []*x509.Certificate{pki.Root.Cert}, Intermediates: []*x509.Certificate{pki.Intermediate.Cert}, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	ex := exchange.New(exchange.Config{Issuer: issuer, Now: c.Now, Observer: obs.exchange}, cache, certs, db, keys)
	logs := &logBuffer{}
	te := tokenendpoint.New(ex, tokenendpoint.Config{Observer: obs.endpoint, Now: obs.endpointNow})
	h, err := server.Public{Issuer: issuer, Token: te, JWKS: keys.JWKS, Log: slog.New(slog.NewJSONHandler(logs, nil))}.Handler()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, clock: c, db: db, store: st, cache: cache, keys: keys, handler: h, pki: pki, ids: ids, logs: logs}
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	return e
}

// claims is an assertion's claim set, valid for id by default.
func (e *env) claims(id *identity, scope string) jwt.MapClaims {
	now := e.clock.Now()
	return jwt.MapClaims{
		"aud": issuer, "iss": id.clientID, "iat": now.Unix(), "exp": now.Add(60 * time.Second).Unix(),
		"jti": uuid.NewString(), "scope": scope,
	}
}

// sign makes an assertion for id with alg, or the identity's default.
func (e *env) sign(id *identity, c jwt.MapClaims, hdr map[string]any) string {
	e.t.Helper()
	alg := "RS256"
	if ec, ok := id.key.(*ecdsa.PrivateKey); ok {
		alg = map[int]string{256: "ES256", 384: "ES384"}[ec.Curve.Params().BitSize]
	}
	if a, ok := hdr["alg"].(string); ok {
		alg = a
	}
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(alg), c)
	if id.kid != "" {
		tok.Header["kid"] = id.kid
	}
	if id.x5c != nil {
		tok.Header["x5c"] = id.x5c
	}
	for k, v := range hdr {
		if k == "alg" {
			continue
		}
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	var key any = id.key
	if _, ok := key.(*rsa.PrivateKey); !ok && strings.HasPrefix(alg, "RS") {
		e.t.Fatalf("alg %s needs an RSA key", alg)
	}
	s, err := tok.SignedString(key)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// response is a parsed token endpoint answer.
type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (r response) code() string { s, _ := r.body["error"].(string); return s }
func (r response) desc() string { s, _ := r.body["error_description"].(string); return s }

func (e *env) postForm(form url.Values) response {
	e.t.Helper()
	return e.do(http.MethodPost, "application/x-www-form-urlencoded", form.Encode())
}

func (e *env) grant(assertion string) response {
	e.t.Helper()
	return e.postForm(url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {assertion}})
}

func (e *env) do(method, contentType, body string) response {
	e.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, e.srv.URL+"/token", strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	_ = json.Unmarshal(b, &r.body)
	return r
}

// issued counts the issued-token rows.
func (e *env) issued() int {
	e.t.Helper()
	rows, err := e.db.ListIssuedTokens(context.Background(), store.IssuedTokenFilter{Limit: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	return len(rows)
}
