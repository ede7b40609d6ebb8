//go:build !pkcs11

package hsm_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/portvakt/portvakt/internal/hsm"
)

// TestConnectWithoutTag: a binary built without the pkcs11 tag refuses a
// PKCS#11 config, saying how to build one that does not.
func TestConnectWithoutTag(t *testing.T) {
	if hsm.Built {
		t.Fatal("built with pkcs11 support without the tag")
	}
	_, err := hsm.Connect(hsm.Config{Module: "/usr/lib/softhsm/libsofthsm2.so", TokenLabel: "t", PIN: "1"})
	if !errors.Is(err, hsm.ErrNotBuilt) || !strings.Contains(err.Error(), "-tags pkcs11") {
		t.Fatalf("err = %v, want ErrNotBuilt naming -tags pkcs11", err)
	}
}
