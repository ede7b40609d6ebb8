package hsmtest

import (
	"os"
	"testing"

	"github.com/portvakt/portvakt/internal/hsm"
)

// The variables scripts/softhsm.sh env prints.
const (
	EnvModule = "PORTVAKT_TEST_PKCS11_MODULE"
	EnvToken  = "PORTVAKT_TEST_PKCS11_TOKEN"
	EnvPIN    = "PORTVAKT_TEST_PKCS11_PIN"
)

// Config is the test token's config, with a key label of the test's own so
// that tests sharing the token do not see each other's keys. Without the
// token the test skips, and under CI (CI set) it fails: there every
// PKCS#11 test must run.
func Config(t testing.TB) hsm.Config {
	t.Helper()
	module, token, pin := os.Getenv(EnvModule), os.Getenv(EnvToken), os.Getenv(EnvPIN)
	if module == "" || token == "" || pin == "" || os.Getenv("SOFTHSM2_CONF") == "" {
		why := "no SoftHSM2 token: run scripts/softhsm.sh start && eval \"$(scripts/softhsm.sh env)\""
		if os.Getenv("CI") != "" {
			t.Fatal(why)
		}
		t.Skip("SKIPPING PKCS#11 TESTS: " + why)
	}
	return hsm.Config{Module: module, TokenLabel: token, PIN: pin, KeyLabel: "t-" + t.Name()}
}
