//go:build !pkcs11

package hsm

import (
	"crypto"

	"github.com/portvakt/portvakt/internal/signer"
)

// Built says whether this binary has PKCS#11 support (the pkcs11 tag).
const Built = false

// Token is a PKCS#11 token; without the pkcs11 tag there is none.
type Token struct{}

// Connect refuses: this binary was built without the pkcs11 tag.
func Connect(Config) (*Token, error) { return nil, ErrNotBuilt }

// Close does nothing.
func (*Token) Close() error { return nil }

// Generate refuses (ErrNotBuilt).
func (*Token) Generate(string) (*signer.Key, []byte, error) { return nil, nil, ErrNotBuilt }

// Open refuses (ErrNotBuilt).
func (*Token) Open(string, []byte) (crypto.Signer, error) { return nil, ErrNotBuilt }
