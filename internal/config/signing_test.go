package config

import (
	"strings"
	"testing"

	"github.com/portvakt/portvakt/internal/signer"
)

// withKEK sets PORTVAKT_SIGNING_KEK for a test whose config has no other
// signing key source (Validate only asks whether one is set).
func withKEK(t *testing.T) {
	t.Helper()
	t.Setenv(signer.KEKEnv, "set")
}

// TestSigningKeySource: outside --dev a server needs a key source (a KEK,
// an HSM or a static key file); without one Validate says exactly what to
// set and how to make a KEK. A PKCS#11 config is checked whole.
func TestSigningKeySource(t *testing.T) {
	const head = "issuer: https://auth.example.no/\nplatform: {org: \"310000019\"}\ntrust: {roots: [root.pem]}\n"
	for _, c := range []struct {
		name string
		yaml string
		env  string // PORTVAKT_SIGNING_KEK
		dev  bool
		want string // the whole error; "" = valid
	}{
		{name: "ok/kek-env", env: "a2Vr"},
		{name: "ok/kek-file", yaml: "signing: {kek_file: kek.b64}\n"},
		{name: "ok/key-file", yaml: "signing: {key_file: key.pem}\n"},
		{name: "ok/pkcs11", yaml: "signing: {pkcs11: {module: /usr/lib/softhsm/libsofthsm2.so, token_label: t, pin: \"1234\"}}\n"},
		{name: "ok/pkcs11-slot-0", yaml: "signing: {pkcs11: {module: /m.so, slot: 0, pin: \"1234\"}}\n"},
		{name: "ok/pkcs11-import-under-kek", env: "a2Vr", yaml: "signing: {key_file: k.pem, pkcs11: {module: /m.so, slot: 0, pin: \"1234\"}}\n"},
		{name: "ok/dev", dev: true},
		{name: "fail/no-source", want: "signing: " + NoKeySource},
		{name: "fail/no-source-empty-section", yaml: "signing: {algorithm: ES256}\n", want: "line 4: signing: " + NoKeySource},
		{name: "fail/pkcs11-incomplete", yaml: "signing: {pkcs11: {token_label: t}}\n",
			want: "signing.pkcs11.module: the path of the PKCS#11 library is required\nsigning.pkcs11.pin: the token's user PIN is required (PORTVAKT_SIGNING_PKCS11_PIN)"},
		{name: "fail/pkcs11-key-file-without-kek", yaml: "signing: {key_file: k.pem, pkcs11: {module: /m.so, token_label: t, pin: \"1\"}}\n",
			want: "line 4: signing.key_file: an HSM makes its own keys: a key file can be imported only under a key-encryption key (PORTVAKT_SIGNING_KEK or signing.kek_file); unset it"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(signer.KEKEnv, c.env)
			t.Setenv("PORTVAKT_SIGNING_PKCS11_PIN", "")
			cfg, err := Parse([]byte(head+c.yaml), t.TempDir(), c.dev)
			if err != nil {
				t.Fatal(err)
			}
			err = cfg.Validate()
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || err.Error() != c.want {
				t.Fatalf("got:\n%v\nwant:\n%s", err, c.want)
			}
		})
	}
	t.Run("ok/pin-from-env", func(t *testing.T) {
		t.Setenv(signer.KEKEnv, "")
		t.Setenv("PORTVAKT_SIGNING_PKCS11_PIN", "from-env")
		cfg, err := Parse([]byte(head+"signing: {pkcs11: {module: /m.so, token_label: t}}\n"), t.TempDir(), false)
		if err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err != nil || cfg.Signing.PKCS11.PIN != "from-env" {
			t.Fatalf("pin %q: %v", cfg.Signing.PKCS11.PIN, err)
		}
		if strings.Contains(NoKeySource, "from-env") {
			t.Fatal("unreachable")
		}
	})
}
