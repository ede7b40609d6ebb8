//go:build !pkcs11

package main

import (
	"strings"
	"testing"

	"github.com/portvakt/portvakt/internal/signer"
)

// TestPKCS11NeedsTheBuildTag: a binary built without the pkcs11 tag that is
// configured for an HSM refuses to start, saying how to build one that
// does not.
func TestPKCS11NeedsTheBuildTag(t *testing.T) {
	t.Setenv(signer.KEKEnv, "")
	t.Setenv("PORTVAKT_SIGNING_PKCS11_PIN", "1234")
	file := writeServerConfig(t, "signing: {pkcs11: {module: /usr/lib/softhsm/libsofthsm2.so, token_label: portvakt}}\n")
	cfg := readConfig(t, file)
	_, err := build(t.Context(), cfg, newLoggerFor(t))
	if err == nil || !strings.Contains(err.Error(), "built without PKCS#11 support: build it with `go build -tags pkcs11`") {
		t.Fatalf("build: %v", err)
	}
	if out := cli(t, exitRefused, "serve", "--config", file); !strings.Contains(out, "-tags pkcs11") || strings.Contains(out, "1234") {
		t.Fatalf("serve: %s", out)
	}
}
