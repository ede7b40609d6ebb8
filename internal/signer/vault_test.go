package signer

import (
	"crypto"
	"errors"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/store"
)

// refVault stands for an HSM: it keeps its keys and hands out references.
type refVault struct{ keys map[string]crypto.Signer }

func (v *refVault) Generate(alg string) (*Key, []byte, error) {
	k, err := Generate(alg)
	if err != nil {
		return nil, nil, err
	}
	v.keys[k.ID] = k.Private
	return k, []byte(ReferencePrefix + "id=" + k.ID), nil
}

func (v *refVault) Open(kid string, kept []byte) (crypto.Signer, error) {
	if s, ok := v.keys[kid]; ok && string(kept) == ReferencePrefix+"id="+kid {
		return s, nil
	}
	return nil, errors.New("no such key in the token")
}

// TestVaults: keys made in an HSM are stored as references (no key
// material), a KEK alone refuses them with a clear error, and Vaults opens
// both the HSM's keys and the ones a KEK sealed before.
func TestVaults(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	kek := newKEK(t)
	hsm := &refVault{keys: map[string]crypto.Signer{}}
	inHSM, err := Generator("ES256", hsm)(store.SigningKeyCurrent, t0)
	if err != nil {
		t.Fatal(err)
	}
	if !IsReference(inHSM.PrivateSealed) {
		t.Fatalf("an HSM key is stored as %q", inHSM.PrivateSealed)
	}
	sealed, err := Generator("ES256", kek)(store.SigningKeyCurrent, t0)
	if err != nil {
		t.Fatal(err)
	}
	if IsReference(sealed.PrivateSealed) {
		t.Fatal("a sealed key looks like a reference")
	}
	both := Vaults(hsm, kek)
	for _, c := range []struct {
		name string
		v    Vault
		rec  store.SigningKey
		want error
	}{
		{"ok/hsm-key-in-hsm", hsm, inHSM, nil},
		{"ok/hsm-key-through-vaults", both, inHSM, nil},
		{"ok/sealed-key-through-vaults", both, sealed, nil},
		{"ok/sealed-key-with-kek", kek, sealed, nil},
		{"fail/hsm-key-with-kek-only", kek, inHSM, ErrKeyInHSM},
		{"fail/sealed-key-without-kek", Vaults(hsm, nil), sealed, ErrSealedKey},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := SetFromStore([]store.SigningKey{c.rec}, c.v, t0)
			if c.want != nil {
				if !errors.Is(err, c.want) {
					t.Fatalf("err = %v, want %v", err, c.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Active().ID != c.rec.KID {
				t.Fatalf("signs with %s, want %s", s.Active().ID, c.rec.KID)
			}
		})
	}
}
