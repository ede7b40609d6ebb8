package main

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portvakt/portvakt/internal/devmode"
	"github.com/portvakt/portvakt/internal/signer"
	"github.com/portvakt/portvakt/internal/testpki"
)

func TestReplicaConfigFromTestdata(t *testing.T) {
	t.Setenv("PORTVAKT_DATABASE_DSN", "postgres://portvakt@127.0.0.1:5432/portvakt")
	// Start-up checks that the trust files exist: the config goes next to one.
	dir := t.TempDir()
	b, err := os.ReadFile("../../testdata/configs/postgres-replica.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "portvakt.yaml"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "trust"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "trust", "root.pem"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(signer.KEKEnv, string(newKEK(t)))
	cfg, err := loadConfig(filepath.Join(dir, "portvakt.yaml"), false)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Database.Driver != "postgres" || cfg.Database.DSN == "" || cfg.Tracing.SampleRatio != 0.1 ||
		cfg.Path("trust/root.pem") != filepath.Join(dir, "trust/root.pem") {
		t.Fatalf("config %+v", cfg)
	}
}

// TestListenerBindErrorsNameTheListener: a taken port says which of the two
// listeners it is.
func TestListenerBindErrorsNameTheListener(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	for _, tc := range []struct {
		name, public, ops, want string
	}{
		{"fail/listen/public", addr, "127.0.0.1:0", "public listener (listen: " + addr + "): "},
		{"fail/listen/ops", "127.0.0.1:0", addr, "ops listener (ops.listen: " + addr + "): "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, o, err := listen(tc.public, tc.ops)
			if err == nil {
				p.Close()
				o.Close()
				t.Fatal("bound a taken port")
			}
			if !strings.HasPrefix(err.Error(), tc.want) || !strings.Contains(err.Error(), "address already in use") {
				t.Fatalf("error %q, want it to start with %q", err, tc.want)
			}
		})
	}
}

func TestInvalidConfigListsEveryProblem(t *testing.T) {
	_, err := loadConfig("../../testdata/configs/invalid.yaml", false)
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, key := range []string{"issuer:", "listen:", "ops.listen:", "database.driver:", "platform.org:", "signing.algorithm:", "audit.retention:", "trust.roots:"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("no problem reported for %s:\n%v", key, err)
		}
	}
}

// TestPublishedKeysAreInTheJWKS: the next key is published before it signs.
func TestPublishedKeysAreInTheJWKS(t *testing.T) {
	next, err := testpki.RSAKey(2048)
	if err != nil {
		t.Fatal(err)
	}
	b, err := testpki.KeyPEM(next)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "next.pem")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	// Published key files go with a static key file (no KEK: no rotation).
	t.Setenv("PORTVAKT_SIGNING_KEY_FILE", filepath.Join(t.TempDir(), "key.pem"))
	t.Setenv("PORTVAKT_SIGNING_PUBLISH_KEY_FILES", path)
	cfg, a := startDev(t, newLoggerFor(t))
	nextKey, err := signer.NewKey(next, "RS256")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(cfg.Issuer + "jwk")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 2 || set.Keys[0].KID != a.keys.Active().ID || set.Keys[1].KID != nextKey.ID {
		t.Fatalf("JWKS %+v, active %s, next %s", set, a.keys.Active().ID, nextKey.ID)
	}
	tok, err := fetch(t, devClient(t, cfg, devmode.ConsumerCertClient, []string{"demo:read"}, ""))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(tok.AccessToken, ".") {
		t.Fatal("no token")
	}
}
