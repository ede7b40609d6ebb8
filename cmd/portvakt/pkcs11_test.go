//go:build pkcs11

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portvakt/portvakt/internal/devmode"
	"github.com/portvakt/portvakt/internal/hsm/hsmtest"
	"github.com/portvakt/portvakt/internal/signer"
	"github.com/portvakt/portvakt/pkg/resource"
)

// TestServeWithPKCS11: a server configured with signing.pkcs11 (SoftHSM2)
// keeps its keys in the token: no dev KEK is made, the store holds
// references only, tokens fetched over HTTP verify through /jwk, and
// `keys rotate` makes the next key in the token, where the server's own
// session finds it. (A wrong PIN: internal/hsm, with no session open.)
func TestServeWithPKCS11(t *testing.T) {
	h := hsmtest.Config(t)
	t.Setenv(signer.KEKEnv, "")
	t.Setenv("PORTVAKT_SIGNING_PKCS11_MODULE", h.Module)
	t.Setenv("PORTVAKT_SIGNING_PKCS11_TOKEN_LABEL", h.TokenLabel)
	t.Setenv("PORTVAKT_SIGNING_PKCS11_PIN", h.PIN)
	t.Setenv("PORTVAKT_SIGNING_PKCS11_KEY_LABEL", h.KeyLabel)
	cfg, a := startDev(t, newLoggerFor(t))
	if _, err := os.Stat(filepath.Join(cfg.DataDir, devmode.KEKFile)); err == nil {
		t.Fatal("with an HSM the dev mode made a KEK")
	}
	if a.keeper == nil || a.token == nil {
		t.Fatal("the keys are not kept in the HSM")
	}
	keys, err := a.db.ListSigningKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || !signer.IsReference(keys[0].PrivateSealed) || !strings.Contains(string(keys[0].PrivateSealed), "object="+h.KeyLabel) {
		t.Fatalf("stored keys %+v: want one reference into the token", keys)
	}
	tok, err := fetch(t, devClient(t, cfg, devmode.ConsumerCertClient, []string{"demo:read"}, ""))
	if err != nil {
		t.Fatal(err)
	}
	ks, err := resource.NewRemoteKeySet(t.Context(), resource.RemoteKeySetConfig{JWKSURL: cfg.Issuer + "jwk"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := resource.NewVerifier(t.Context(), resource.VerifierConfig{Issuer: cfg.Issuer, KeySet: ks})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(t.Context(), tok.AccessToken); err != nil {
		t.Fatalf("a token signed in the HSM does not verify through /jwk: %v", err)
	}

	// keys rotate, on the same database, makes the next key in the token.
	file := filepath.Join(t.TempDir(), "keys.yaml")
	yaml := "issuer: " + cfg.Issuer + "\nplatform: {org: \"" + cfg.Platform.Org + "\"}\ntrust: {roots: [" + cfg.Path(cfg.Trust.Roots[0]) + "]}\n" +
		"database: {dsn: " + cfg.Database.DSN + "}\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := cli(t, exitOK, "keys", "rotate", "--config", file); !strings.Contains(out, "is NEXT") {
		t.Fatalf("keys rotate: %s", out)
	}
	keys, err = a.db.ListSigningKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("after keys rotate: %+v", keys)
	}
	if keys[1].State != "NEXT" || !signer.IsReference(keys[1].PrivateSealed) {
		t.Fatalf("after keys rotate: %+v", keys[1])
	}
	if _, err := a.token.Open(keys[1].KID, keys[1].PrivateSealed); err != nil {
		t.Fatalf("the server's session does not find the key keys rotate made: %v", err)
	}
}
