package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portvakt/portvakt/internal/config"
	"github.com/portvakt/portvakt/internal/devmode"
	"github.com/portvakt/portvakt/internal/signer"
	"github.com/portvakt/portvakt/internal/testpki"
)

// newKEK is a fresh key-encryption key as a KEK file holds it.
func newKEK(t testing.TB) []byte {
	t.Helper()
	b := make([]byte, signer.KEKSize)
	_, _ = rand.Read(b)
	return []byte(base64.StdEncoding.EncodeToString(b) + "\n")
}

// writeServerConfig writes a non-dev config with a trust root and extra
// (YAML) appended, returning its path.
func writeServerConfig(t *testing.T, extra string) string {
	t.Helper()
	dir := t.TempDir()
	pki, err := testpki.New("Signing Test")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "root.pem"), testpki.CertPEM(pki.Root.Cert), 0o600); err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf("issuer: http://%s/\nlisten: %s\nops: {listen: %s}\ndata_dir: %s\nplatform: {org: %q}\ntrust: {roots: [root.pem]}\nlog: {level: error}\n",
		freePort(t), freePort(t), freePort(t), filepath.Join(dir, "data"), org(1)) + extra
	p := filepath.Join(dir, "portvakt.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestNoKeySourceRefusesToStart: outside --dev, a server with no KEK, no
// HSM and no key file does not start, and says exactly what to set and how
// to make a KEK; `serve` exits with it. The `keys kek` it names makes a
// KEK that works.
func TestNoKeySourceRefusesToStart(t *testing.T) {
	t.Setenv(signer.KEKEnv, "")
	file := writeServerConfig(t, "")
	want := "invalid configuration:\nsigning: no signing key source. The server keeps its signing keys in the database, sealed with a " +
		"key-encryption key (KEK), and rotates them: set PORTVAKT_SIGNING_KEK, or signing.kek_file, to 32 random bytes " +
		"in base64 (make one with `portvakt keys kek` or `openssl rand -base64 32`). Or keep the keys in an HSM " +
		"(signing.pkcs11), or sign with one static key that never rotates (signing.key_file)"
	if _, err := loadConfig(file, false); err == nil || err.Error() != want {
		t.Fatalf("got:\n%v\nwant:\n%s", err, want)
	}
	if out := cli(t, exitRefused, "serve", "--config", file); !strings.Contains(out, "PORTVAKT_SIGNING_KEK") || !strings.Contains(out, "portvakt keys kek") {
		t.Fatalf("serve without a key source: %s", out)
	}
	// A config read past the validation still does not get a signing key.
	cfg, err := config.Read(file, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := build(t.Context(), cfg, newLoggerFor(t)); err == nil || !strings.Contains(err.Error(), config.NoKeySource) {
		t.Fatalf("build without a key source: %v", err)
	}
	// The helper the message names.
	kek := strings.TrimSpace(cli(t, exitOK, "keys", "kek"))
	if _, err := signer.ParseKEK(kek); err != nil {
		t.Fatalf("keys kek printed %q: %v", kek, err)
	}
	if other := strings.TrimSpace(cli(t, exitOK, "keys", "kek")); other == kek {
		t.Fatal("keys kek printed the same key twice")
	}
	t.Setenv(signer.KEKEnv, kek)
	cfg = readConfig(t, file)
	a := startApp(t, cfg, newLoggerFor(t))
	if a.keeper == nil {
		t.Fatal("with a KEK the keys are not kept in the database")
	}
}

// TestDevModeKeepsItsOwnKEK: --dev with no key source makes a KEK in its
// data directory (mode 0600), keeps its keys in its database under it (so
// they rotate), and a restart reuses both: the same KEK file and the same
// signing key.
func TestDevModeKeepsItsOwnKEK(t *testing.T) {
	t.Setenv(signer.KEKEnv, "")
	t.Setenv("PORTVAKT_DATA_DIR", filepath.Join(t.TempDir(), "dev"))
	t.Setenv("PORTVAKT_LISTEN", freePort(t))
	t.Setenv("PORTVAKT_OPS_LISTEN", freePort(t))
	cfg, err := loadConfig("", true)
	if err != nil {
		t.Fatal(err)
	}
	a, err := build(t.Context(), cfg, newLoggerFor(t))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(cfg.DataDir, devmode.KEKFile)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("the dev KEK has mode %v, want 0600", st.Mode().Perm())
	}
	if a.keeper == nil {
		t.Fatal("dev mode keys are not kept in the database (no rotation)")
	}
	if abs, _ := filepath.Abs(path); cfg.Signing.KEKFile != abs {
		t.Fatalf("signing.kek_file %q, want the dev KEK %s", cfg.Signing.KEKFile, abs)
	}
	kek, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signer.ParseKEK(string(kek)); err != nil {
		t.Fatalf("the dev KEK: %v", err)
	}
	kid := a.keys.Active().ID
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "signing-key.pem")); err == nil {
		t.Fatal("dev mode wrote a plaintext signing key file")
	}
	// A restart on the same data directory.
	a.close()
	again, err := loadConfig("", true)
	if err != nil {
		t.Fatal(err)
	}
	b, err := build(t.Context(), again, newLoggerFor(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	if after, _ := os.ReadFile(path); string(after) != string(kek) {
		t.Fatal("the restart made a new dev KEK")
	}
	if b.keys.Active().ID != kid {
		t.Fatalf("after a restart the dev server signs with %s, want %s", b.keys.Active().ID, kid)
	}
}
