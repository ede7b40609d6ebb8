//go:build pkcs11

package hsm_test

import (
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThalesGroup/crypto11"
	"github.com/go-jose/go-jose/v4"
	"github.com/miekg/pkcs11"

	"github.com/portvakt/portvakt/internal/hsm"
	"github.com/portvakt/portvakt/internal/hsm/hsmtest"
	"github.com/portvakt/portvakt/internal/server"
	"github.com/portvakt/portvakt/internal/signer"
	"github.com/portvakt/portvakt/internal/store/sqlstore"
	"github.com/portvakt/portvakt/pkg/resource"
)

const issuer = "http://127.0.0.1/"

var (
	t0     = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	day    = 24 * time.Hour
	policy = signer.Policy{Interval: 10 * day, PrePublish: day, Retain: 2*time.Hour + 10*time.Second, Propagation: time.Second}
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func connect(t *testing.T, cfg hsm.Config) *hsm.Token {
	t.Helper()
	tok, err := hsm.Connect(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tok.Close() })
	return tok
}

func openSQLite(t *testing.T) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(t.Context(), sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: filepath.Join(t.TempDir(), "portvakt.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

func published(t *testing.T, jwksURL string) []string {
	t.Helper()
	resp, err := http.Get(jwksURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.KeyID)
	}
	slices.Sort(kids)
	return kids
}

func sign(t *testing.T, s *signer.Set, now time.Time) string {
	t.Helper()
	tok, err := s.Sign(map[string]any{"iss": issuer, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "client_id": "c1",
		"consumer": map[string]string{"authority": "iso6523-actorid-upis", "ID": "0192:910000001"}})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// verify checks tok through jwksURL with a fresh verifier (no cache).
func verify(t *testing.T, jwksURL, tok string, now time.Time) {
	t.Helper()
	at := func() time.Time { return now }
	ks, err := resource.NewRemoteKeySet(t.Context(), resource.RemoteKeySetConfig{JWKSURL: jwksURL, Now: at})
	if err != nil {
		t.Fatal(err)
	}
	v, err := resource.NewVerifier(t.Context(), resource.VerifierConfig{Issuer: issuer, KeySet: ks, NoLeeway: true, Now: at})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Fatalf("a token signed in the token does not verify through /jwk: %v", err)
	}
}

func kidOf(t *testing.T, tok string) string {
	t.Helper()
	var hdr struct{ Kid string }
	part, _, _ := strings.Cut(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil || json.Unmarshal(b, &hdr) != nil {
		t.Fatalf("header of %q", tok)
	}
	return hdr.Kid
}

// TestTokenKeysRotateThroughJWKS: with the keys in the token, the first
// key is generated there and its tokens verify through /jwk over HTTP; the
// schedule makes a second key in the token, both are published, the new one
// signs after activation, the old one's tokens still verify; the store
// holds references only, by which a second replica (its own session) signs
// with the same key.
func TestTokenKeysRotateThroughJWKS(t *testing.T) {
	for _, alg := range signer.Algorithms() {
		t.Run("ok/"+alg, func(t *testing.T) {
			cfg := hsmtest.Config(t)
			tok := connect(t, cfg)
			st := openSQLite(t)
			c := &clock{t: t0}
			kp, err := signer.NewKeeper(t.Context(), signer.KeeperConfig{Store: st, Vault: tok, Policy: policy, Algorithm: alg,
				Owner: "r1", PollInterval: time.Second, Now: c.Now})
			if err != nil {
				t.Fatal(err)
			}
			h, err := server.Public{Issuer: issuer, Token: http.NotFoundHandler(), JWKS: kp.Set().JWKS, Log: slog.New(slog.DiscardHandler)}.Handler()
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			jwks := srv.URL + "/jwk"

			first := kp.Set().Active().ID
			tok1 := sign(t, kp.Set(), t0)
			if kidOf(t, tok1) != first {
				t.Fatalf("the token names %s, want %s", kidOf(t, tok1), first)
			}
			verify(t, jwks, tok1, t0)

			// The schedule makes the NEXT key in the token.
			due := t0.Add(policy.Interval - policy.PrePublish)
			c.Set(due)
			if err := kp.Tick(t.Context()); err != nil {
				t.Fatal(err)
			}
			kids := published(t, jwks)
			if len(kids) != 2 || !slices.Contains(kids, first) {
				t.Fatalf("after the NEXT key: /jwk publishes %v", kids)
			}
			second := kids[0]
			if second == first {
				second = kids[1]
			}
			if got := kidOf(t, sign(t, kp.Set(), due)); got != first {
				t.Fatalf("the NEXT key signs before it is due: %s", got)
			}
			keys, err := st.ListSigningKeys(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			refs := map[string]bool{}
			for _, k := range keys {
				if !signer.IsReference(k.PrivateSealed) {
					t.Fatalf("key %s is stored as %q, not as a reference into the token", k.KID, k.PrivateSealed)
				}
				// Each is a key of its own in the token.
				s, err := tok.Open(k.KID, k.PrivateSealed)
				if err != nil {
					t.Fatalf("key %s is not in the token: %v", k.KID, err)
				}
				if key, err := signer.NewKey(s, alg); err != nil || key.ID != k.KID {
					t.Fatalf("the token's key under %s has kid %v (%v)", k.PrivateSealed, key, err)
				}
				refs[string(k.PrivateSealed)] = true
			}
			if len(keys) != 2 || len(refs) != 2 {
				t.Fatalf("after the NEXT key the store holds %d keys, %d references; want 2 and 2", len(keys), len(refs))
			}

			// Activation: the new key signs, the old one's tokens verify.
			active := due.Add(policy.PrePublish + policy.Propagation)
			c.Set(active)
			if err := kp.Tick(t.Context()); err != nil {
				t.Fatal(err)
			}
			tok2 := sign(t, kp.Set(), active)
			if kidOf(t, tok2) != second {
				t.Fatalf("after activation a token names %s, want %s", kidOf(t, tok2), second)
			}
			verify(t, jwks, tok2, active)
			verify(t, jwks, tok1, t0.Add(30*time.Minute))
			if kids := published(t, jwks); len(kids) != 2 || !slices.Contains(kids, first) || !slices.Contains(kids, second) {
				t.Fatalf("after activation /jwk publishes %v, want both keys", kids)
			}

			// Another replica, its own session, finds the key by reference.
			other := connect(t, cfg)
			keys, err = st.ListSigningKeys(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			set, err := signer.SetFromStore(keys, other, active)
			if err != nil {
				t.Fatal(err)
			}
			if set.Active().ID != second {
				t.Fatalf("the other replica signs with %s, want %s", set.Active().ID, second)
			}
			verify(t, jwks, sign(t, set, active), active)
		})
	}
}

// TestKeysNeverLeaveTheToken: a generated private key is sensitive, not
// extractable and never was (read back from the token through a session of
// the test's own), and every way out fails: reading its private value,
// PKCS#8, sealing it under a KEK.
func TestKeysNeverLeaveTheToken(t *testing.T) {
	cfg := hsmtest.Config(t)
	tok := connect(t, cfg)
	raw, err := crypto11.Configure(&crypto11.Config{Path: cfg.Module, TokenLabel: cfg.TokenLabel, Pin: cfg.PIN})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = raw.Close() })
	for _, c := range []struct {
		alg    string
		secret crypto11.AttributeType // the private value an export would read
	}{{"RS256", pkcs11.CKA_PRIVATE_EXPONENT}, {"ES256", pkcs11.CKA_VALUE}} {
		t.Run("ok/"+c.alg, func(t *testing.T) {
			key, kept, err := tok.Generate(c.alg)
			if err != nil {
				t.Fatal(err)
			}
			ref, err := hsm.ParseReference(kept)
			if err != nil {
				t.Fatal(err)
			}
			s, err := raw.FindKeyPair(ref.ID, []byte(ref.Label))
			if err != nil || s == nil {
				t.Fatalf("the key %s is not in the token: %v", ref, err)
			}
			attrs, err := raw.GetAttributes(s, []crypto11.AttributeType{pkcs11.CKA_EXTRACTABLE, pkcs11.CKA_SENSITIVE,
				pkcs11.CKA_NEVER_EXTRACTABLE, pkcs11.CKA_ALWAYS_SENSITIVE, pkcs11.CKA_DECRYPT})
			if err != nil {
				t.Fatal(err)
			}
			for typ, want := range map[crypto11.AttributeType]byte{pkcs11.CKA_EXTRACTABLE: 0, pkcs11.CKA_SENSITIVE: 1,
				pkcs11.CKA_NEVER_EXTRACTABLE: 1, pkcs11.CKA_ALWAYS_SENSITIVE: 1} {
				if a := attrs[typ]; a == nil || len(a.Value) != 1 || a.Value[0] != want {
					t.Errorf("attribute %#x = %v, want %d", typ, a, want)
				}
			}
			if a := attrs[pkcs11.CKA_DECRYPT]; c.alg == "RS256" && (a == nil || len(a.Value) != 1 || a.Value[0] != 0) {
				t.Errorf("the RSA signing key may decrypt: %v", a)
			}
			if a, err := raw.GetAttribute(s, c.secret); err == nil && a != nil && len(a.Value) > 0 {
				t.Fatalf("the private value was read out of the token: %d bytes", len(a.Value))
			}
			if _, err := x509.MarshalPKCS8PrivateKey(key.Private); err == nil {
				t.Fatal("the key marshalled to PKCS#8")
			}
			if _, err := kek(t).Seal(key.ID, key.Private); err == nil {
				t.Fatal("the key was sealed under a KEK")
			}
		})
	}
}

func kek(t *testing.T) *signer.KEK {
	t.Helper()
	k, err := signer.NewKEK(make([]byte, signer.KEKSize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestOpen: a reference opens the key it names; what is not in the token,
// or not a reference, is a clear error.
func TestOpen(t *testing.T) {
	tok := connect(t, hsmtest.Config(t))
	key, kept, err := tok.Generate("ES256")
	if err != nil {
		t.Fatal(err)
	}
	ref, err := hsm.ParseReference(kept)
	if err != nil {
		t.Fatal(err)
	}
	other := hsm.Reference{Label: ref.Label, ID: append([]byte{0xff}, ref.ID...)}
	sealed, err := kek(t).Seal(key.ID, mustGenerate(t).Private)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		kept []byte
		want error
	}{
		{"ok/reference", kept, nil},
		{"fail/not-in-token", []byte(other.String()), hsm.ErrNoKey},
		{"fail/sealed", sealed, signer.ErrSealedKey},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := tok.Open(key.ID, c.kept)
			if c.want != nil {
				if !errors.Is(err, c.want) {
					t.Fatalf("err = %v, want %v", err, c.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !s.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(key.Private.Public()) {
				t.Fatal("opened another key")
			}
		})
	}
}

func mustGenerate(t *testing.T) *signer.Key {
	t.Helper()
	k, err := signer.Generate("ES256")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestWrongPIN: a PIN the token refuses is ErrWrongPIN, naming the setting
// and never the PIN. It runs with no other session open (a logged-in
// module would take any PIN).
func TestWrongPIN(t *testing.T) {
	cfg := hsmtest.Config(t)
	cfg.PIN = "wrong-" + cfg.PIN[:2]
	_, err := hsm.Connect(cfg)
	if !errors.Is(err, hsm.ErrWrongPIN) {
		t.Fatalf("err = %v, want ErrWrongPIN", err)
	}
	if !strings.Contains(err.Error(), hsm.PINEnv) || strings.Contains(err.Error(), cfg.PIN) {
		t.Fatalf("the error %q does not name %s, or shows the PIN", err, hsm.PINEnv)
	}
	cfg.PIN = hsmtest.Config(t).PIN
	cfg.TokenLabel = "no-such-token"
	if _, err := hsm.Connect(cfg); err == nil || !strings.Contains(err.Error(), "no-such-token") {
		t.Fatalf("an unknown token: %v", err)
	}
}
