//go:build pkcs11

package hsm

import (
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"

	"github.com/portvakt/portvakt/internal/signer"
)

// Built says whether this binary has PKCS#11 support (the pkcs11 tag).
const Built = true

// sessionWait bounds the wait for one of the token's sessions.
const sessionWait = 5 * time.Second

// Token is a logged-in PKCS#11 token: a signer.Vault. It is safe for
// concurrent use; Close ends it.
type Token struct {
	ctx   *crypto11.Context
	label string
}

// Connect loads the module, finds the token and logs in. A refused PIN is
// ErrWrongPIN; the PIN is never part of an error.
func Connect(cfg Config) (*Token, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// A signature waits for a free session at most sessionWait, so a
	// token that stops answering fails requests instead of piling them up.
	ctx, err := crypto11.Configure(&crypto11.Config{Path: cfg.Module, TokenLabel: cfg.TokenLabel, SlotNumber: cfg.Slot, Pin: cfg.PIN,
		PoolWaitTimeout: sessionWait})
	if err != nil {
		var p11 pkcs11.Error
		if errors.As(err, &p11) {
			switch p11 {
			case pkcs11.CKR_PIN_INCORRECT, pkcs11.CKR_PIN_INVALID, pkcs11.CKR_PIN_LEN_RANGE, pkcs11.CKR_PIN_EXPIRED, pkcs11.CKR_PIN_LOCKED:
				return nil, fmt.Errorf("%w (%s)", ErrWrongPIN, p11.Error())
			}
		}
		return nil, fmt.Errorf("signing.pkcs11: module %s, token %s: %w", cfg.Module, cfg.token(), err)
	}
	return &Token{ctx: ctx, label: cfg.keyLabel()}, nil
}

func (c Config) token() string {
	if c.Slot != nil {
		return fmt.Sprintf("in slot %d", *c.Slot)
	}
	return fmt.Sprintf("%q", c.TokenLabel)
}

// Close logs out and unloads the module when no other Token uses it.
func (t *Token) Close() error { return t.ctx.Close() }

// Generate makes a key pair for alg in the token (a signer.Vault): private
// half sensitive, never extractable, for signing only; it returns the key
// and its Reference.
func (t *Token) Generate(alg string) (*signer.Key, []byte, error) {
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, nil, err
	}
	ref := Reference{Label: t.label + "-" + hex.EncodeToString(id), ID: id}
	pub, err := crypto11.NewAttributeSetWithIDAndLabel(ref.ID, []byte(ref.Label))
	if err != nil {
		return nil, nil, err
	}
	priv := pub.Copy()
	if err := priv.Set(crypto11.CkaPrivate, true); err != nil {
		return nil, nil, err
	}
	for typ, v := range map[crypto11.AttributeType]bool{
		pkcs11.CKA_SENSITIVE: true, pkcs11.CKA_EXTRACTABLE: false, pkcs11.CKA_SIGN: true,
		pkcs11.CKA_DECRYPT: false, pkcs11.CKA_UNWRAP: false, pkcs11.CKA_DERIVE: false,
	} {
		if err := priv.Set(typ, v); err != nil {
			return nil, nil, err
		}
	}
	var s crypto11.Signer
	switch alg {
	case "RS256":
		if err := pub.Set(pkcs11.CKA_ENCRYPT, false); err != nil {
			return nil, nil, err
		}
		s, err = t.ctx.GenerateRSAKeyPairWithAttributes(pub, priv, 2048)
	case "ES256":
		priv.Unset(pkcs11.CKA_DECRYPT)
		priv.Unset(pkcs11.CKA_UNWRAP)
		s, err = t.ctx.GenerateECDSAKeyPairWithAttributes(pub, priv, elliptic.P256())
	default:
		return nil, nil, fmt.Errorf("hsm: unsupported algorithm %q", alg)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("hsm: generate a %s key in the token: %w", alg, err)
	}
	key, err := t.signerKey(s, alg)
	if err != nil {
		_ = s.Delete()
		return nil, nil, err
	}
	return key, []byte(ref.String()), nil
}

// Open finds the key a stored reference names (a signer.Vault) and checks
// that it never was extractable.
func (t *Token) Open(kid string, kept []byte) (crypto.Signer, error) {
	if !signer.IsReference(kept) {
		return nil, fmt.Errorf("signing key %s: %w", kid, signer.ErrSealedKey)
	}
	ref, err := ParseReference(kept)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", kid, err)
	}
	found, err := t.ctx.FindKeyPairs(ref.ID, []byte(ref.Label))
	switch {
	case err != nil:
		return nil, fmt.Errorf("hsm: signing key %s: %w", kid, err)
	case len(found) == 0:
		return nil, fmt.Errorf("hsm: signing key %s (%s): %w", kid, ref, ErrNoKey)
	case len(found) > 1:
		return nil, fmt.Errorf("hsm: signing key %s: %d key pairs in the token match %s", kid, len(found), ref)
	}
	s := found[0]
	if err := t.protected(s); err != nil {
		return nil, fmt.Errorf("hsm: signing key %s: %w", kid, err)
	}
	return s, nil
}

func (t *Token) signerKey(s crypto11.Signer, alg string) (*signer.Key, error) {
	if err := t.protected(s); err != nil {
		return nil, fmt.Errorf("hsm: %w", err)
	}
	return signer.NewKey(s, alg)
}

// protected checks that the private key is sensitive and not extractable,
// and always was: generated in the token, never exported.
func (t *Token) protected(s crypto11.Signer) error {
	attrs, err := t.ctx.GetAttributes(s, []crypto11.AttributeType{
		pkcs11.CKA_SENSITIVE, pkcs11.CKA_ALWAYS_SENSITIVE, pkcs11.CKA_EXTRACTABLE, pkcs11.CKA_NEVER_EXTRACTABLE,
	})
	if err != nil {
		return fmt.Errorf("read the key's attributes: %w", err)
	}
	want := map[crypto11.AttributeType]bool{
		pkcs11.CKA_SENSITIVE: true, pkcs11.CKA_ALWAYS_SENSITIVE: true, pkcs11.CKA_EXTRACTABLE: false, pkcs11.CKA_NEVER_EXTRACTABLE: true,
	}
	for typ, w := range want {
		a := attrs[typ]
		if a == nil || len(a.Value) != 1 || (a.Value[0] != 0) != w {
			return ErrExtractable
		}
	}
	return nil
}
