package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/portvakt/portvakt/internal/config"
	"github.com/portvakt/portvakt/internal/signer"
	"github.com/portvakt/portvakt/internal/testpki"
)

// keysEnvFor writes a config with a KEK file and signing.key_file and
// returns its path and the imported key's kid.
func writeKeysConfig(t *testing.T, dir, issuer, listen, ops string) (string, string) {
	t.Helper()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pki, err := testpki.New("Keys Test")
	if err != nil {
		t.Fatal(err)
	}
	write("root.pem", testpki.CertPEM(pki.Root.Cert))
	key, err := signer.Generate("ES256")
	if err != nil {
		t.Fatal(err)
	}
	pemKey, err := testpki.KeyPEM(key.Private)
	if err != nil {
		t.Fatal(err)
	}
	write("key.pem", pemKey)
	kek := make([]byte, signer.KEKSize)
	_, _ = rand.Read(kek)
	write("kek.b64", []byte(base64.StdEncoding.EncodeToString(kek)+"\n"))
	yaml := fmt.Sprintf(`issuer: %s
listen: %s
ops: {listen: %s}
data_dir: %s
platform: {org: "%s"}
trust: {roots: [root.pem]}
log: {level: error}
signing: {algorithm: ES256, key_file: key.pem, kek_file: kek.b64}
`, issuer, listen, ops, filepath.Join(dir, "data"), org(1))
	return write("portvakt.yaml", []byte(yaml)), key.ID
}

func jwkKids(t *testing.T, issuer string) []string {
	t.Helper()
	resp, err := http.Get(issuer + "jwk")
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
	return kids
}

func cli(t *testing.T, wantCode int, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := run(args, &out, &errOut); code != wantCode {
		t.Fatalf("portvakt %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, wantCode, out.String(), errOut.String())
	}
	return out.String() + errOut.String()
}

// TestKeysCommands: with a KEK the server imports signing.key_file as the
// first CURRENT key and writes no key file; `keys rotate` publishes a NEXT
// key, `keys rotate --now` replaces the CURRENT one, and the running server
// follows within its poll; a wrong KEK and no KEK are clear errors.
func TestKeysCommands(t *testing.T) {
	dir := t.TempDir()
	pub, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ops, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + pub.Addr().String() + "/"
	file, imported := writeKeysConfig(t, dir, issuer, pub.Addr().String(), ops.Addr().String())
	a := runApp(t, readConfig(t, file), slog.New(slog.DiscardHandler), pub, ops)
	if a.keeper == nil {
		t.Fatal("a KEK is configured but the keys do not come from the store")
	}
	if kids := jwkKids(t, issuer); !slices.Equal(kids, []string{imported}) {
		t.Fatalf("/jwk = %v, want the imported key %s", kids, imported)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "signing-key.pem")); !os.IsNotExist(err) {
		t.Errorf("a signing key file was written next to the database: %v", err)
	}
	if out := cli(t, exitOK, "keys", "list", "--config", file); !strings.Contains(out, imported) || !strings.Contains(out, "CURRENT") {
		t.Fatalf("keys list:\n%s", out)
	}
	cli(t, exitOK, "keys", "rotate", "--config", file)
	out := cli(t, exitOK, "keys", "list", "--config", file)
	if !strings.Contains(out, "NEXT") {
		t.Fatalf("keys list after rotate:\n%s", out)
	}
	cli(t, exitRefused, "keys", "rotate", "--config", file) // a NEXT key exists
	cli(t, exitOK, "keys", "rotate", "--now", "--config", file)
	// The server follows within its poll (500ms): wait for it, bounded.
	deadline := time.Now().Add(10 * time.Second)
	for {
		kids := jwkKids(t, issuer)
		if !slices.Contains(kids, imported) && len(kids) == 2 && a.keys.Active().ID != imported {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/jwk = %v and active %s 10s after rotate --now; want the withdrawn key %s gone", kids, a.keys.Active().ID, imported)
		}
		time.Sleep(50 * time.Millisecond)
	}

	t.Run("fail/wrong-kek", func(t *testing.T) {
		other := make([]byte, signer.KEKSize)
		_, _ = rand.Read(other)
		if err := os.WriteFile(filepath.Join(dir, "kek.b64"), []byte(base64.StdEncoding.EncodeToString(other)), 0o600); err != nil {
			t.Fatal(err)
		}
		if out := cli(t, exitRefused, "keys", "rotate", "--config", file); !strings.Contains(out, "key-encryption key") {
			t.Fatalf("a wrong KEK: %s", out)
		}
		cfg, err := config.Read(file, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := build(t.Context(), cfg, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "PORTVAKT_SIGNING_KEK") {
			t.Fatalf("a server with a wrong KEK: %v", err)
		}
	})
	t.Run("fail/no-kek", func(t *testing.T) {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		noKEK := filepath.Join(dir, "nokek.yaml")
		if err := os.WriteFile(noKEK, bytes.ReplaceAll(b, []byte(", kek_file: kek.b64"), nil), 0o600); err != nil {
			t.Fatal(err)
		}
		if out := cli(t, exitRefused, "keys", "list", "--config", noKEK); !strings.Contains(out, "no key-encryption key") {
			t.Fatalf("no KEK: %s", out)
		}
	})
}
