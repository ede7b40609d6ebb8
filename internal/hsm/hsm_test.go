package hsm_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/portvakt/portvakt/internal/hsm"
	"github.com/portvakt/portvakt/internal/signer"
)

// TestReference: a reference reads back as written, is recognised as one
// by the signer, and anything else is refused before the token is asked.
func TestReference(t *testing.T) {
	r := hsm.Reference{Label: "portvakt signing/1;x", ID: []byte{0, 1, 0xfe, 'a'}}
	s := r.String()
	if !signer.IsReference([]byte(s)) {
		t.Fatalf("%q is not a reference to the signer", s)
	}
	if s != "pkcs11:object=portvakt%20signing%2F1%3Bx;id=%00%01%FE%61;type=private" {
		t.Fatalf("reference %q", s)
	}
	got, err := hsm.ParseReference([]byte(s))
	if err != nil || got.Label != r.Label || !bytes.Equal(got.ID, r.ID) {
		t.Fatalf("ParseReference(%q) = %+v, %v", s, got, err)
	}
	for name, in := range map[string]string{
		"fail/sealed":       "\x8f\x01sealed",
		"fail/no-id":        "pkcs11:object=a;type=private",
		"fail/no-label":     "pkcs11:id=%01;type=private",
		"fail/no-type":      "pkcs11:object=a;id=%01",
		"fail/public":       "pkcs11:object=a;id=%01;type=public",
		"fail/unknown-attr": "pkcs11:object=a;id=%01;type=private;token=x",
		"fail/twice":        "pkcs11:object=a;object=b;id=%01;type=private",
		"fail/bad-escape":   "pkcs11:object=a;id=%zz;type=private",
		"fail/too-long":     "pkcs11:object=" + strings.Repeat("a", 600) + ";id=%01;type=private",
	} {
		t.Run(name, func(t *testing.T) {
			if r, err := hsm.ParseReference([]byte(in)); err == nil {
				t.Fatalf("accepted as %+v", r)
			}
		})
	}
}

// TestConfigValidate names every missing setting at once.
func TestConfigValidate(t *testing.T) {
	slot := 0
	for _, c := range []struct {
		name string
		cfg  hsm.Config
		want []string
	}{
		{"ok/label", hsm.Config{Module: "/m.so", TokenLabel: "t", PIN: "1"}, nil},
		{"ok/slot-0", hsm.Config{Module: "/m.so", Slot: &slot, PIN: "1"}, nil},
		{"fail/empty", hsm.Config{}, []string{"signing.pkcs11.module", "token_label and slot", hsm.PINEnv}},
		{"fail/label-and-slot", hsm.Config{Module: "/m.so", TokenLabel: "t", Slot: &slot, PIN: "1"}, []string{"exactly one of token_label and slot"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate()
			if c.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("valid")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v does not name %q", err, w)
				}
			}
		})
	}
}
