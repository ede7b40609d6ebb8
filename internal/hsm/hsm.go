package hsm

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/portvakt/portvakt/internal/signer"
)

// PINEnv is the environment variable that holds the token's user PIN
// (signing.pkcs11.pin): a secret, never logged.
const PINEnv = "PORTVAKT_SIGNING_PKCS11_PIN"

// DefaultKeyLabel starts the label of every key the server makes in the
// token, unless Config.KeyLabel says otherwise.
const DefaultKeyLabel = "portvakt-signing"

// Config says which token to use. Module and one of TokenLabel and Slot
// are required.
type Config struct {
	// Module is the path of the vendor's PKCS#11 library (.so).
	Module string
	// TokenLabel selects the token by label; Slot by slot number.
	TokenLabel string
	Slot       *int
	// PIN logs in as the token's user.
	PIN string
	// KeyLabel starts the label of the keys made in the token (default
	// DefaultKeyLabel): "<KeyLabel>-<hex id>".
	KeyLabel string
}

// ErrNotBuilt: PKCS#11 is configured, but this binary was built without
// the pkcs11 tag.
var ErrNotBuilt = errors.New("signing.pkcs11 is configured, but this portvakt was built without PKCS#11 support: build it with `go build -tags pkcs11` (cgo), or remove signing.pkcs11")

// ErrWrongPIN: the token refused the PIN.
var ErrWrongPIN = errors.New("the PKCS#11 token refused the PIN: check " + PINEnv + " (signing.pkcs11.pin)")

// ErrNoKey: the token holds no key under a stored reference (another
// token, or the key was deleted from it).
var ErrNoKey = errors.New("the PKCS#11 token holds no such key")

// ErrExtractable: a key in the token could be exported (it is not
// sensitive, is extractable, or once was): the server refuses to sign with
// it.
var ErrExtractable = errors.New("the key in the PKCS#11 token is or was extractable; the server signs only with keys generated in the token as sensitive and never extractable")

// maxReference bounds a stored reference before it is parsed.
const maxReference = 512

// Reference is a key's address in the token: an RFC 7512 PKCS#11 URI of
// its label and id, "pkcs11:object=<label>;id=<%XX bytes>;type=private".
type Reference struct {
	Label string
	ID    []byte
}

// String is the reference as the store keeps it.
func (r Reference) String() string {
	var id strings.Builder
	for _, b := range r.ID {
		fmt.Fprintf(&id, "%%%02X", b)
	}
	return signer.ReferencePrefix + "object=" + pathEscape(r.Label) + ";id=" + id.String() + ";type=private"
}

// pathEscape percent-encodes what RFC 7512 does not allow unescaped in a
// path attribute value.
func pathEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~:[]@!$'()*+,=&", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// ParseReference reads what Reference.String made: a "pkcs11:" URI with an
// object label, a non-empty id and type private, nothing else.
func ParseReference(kept []byte) (Reference, error) {
	if len(kept) > maxReference {
		return Reference{}, fmt.Errorf("hsm: a key reference of %d bytes", len(kept))
	}
	s, ok := strings.CutPrefix(string(kept), signer.ReferencePrefix)
	if !ok {
		return Reference{}, errors.New("hsm: not a pkcs11: key reference")
	}
	var r Reference
	seen := map[string]bool{}
	for attr := range strings.SplitSeq(s, ";") {
		k, v, ok := strings.Cut(attr, "=")
		if !ok || seen[k] {
			return Reference{}, fmt.Errorf("hsm: key reference %q: bad attribute %q", kept, attr)
		}
		seen[k] = true
		val, err := url.PathUnescape(v)
		if err != nil {
			return Reference{}, fmt.Errorf("hsm: key reference %q: %w", kept, err)
		}
		switch k {
		case "object":
			r.Label = val
		case "id":
			r.ID = []byte(val)
		case "type":
			if val != "private" {
				return Reference{}, fmt.Errorf("hsm: key reference %q: type %q, want private", kept, val)
			}
		default:
			return Reference{}, fmt.Errorf("hsm: key reference %q: unknown attribute %q", kept, k)
		}
	}
	if r.Label == "" || len(r.ID) == 0 || !seen["type"] {
		return Reference{}, fmt.Errorf("hsm: key reference %q needs object, id and type=private", kept)
	}
	return r, nil
}

func (c Config) keyLabel() string {
	if c.KeyLabel == "" {
		return DefaultKeyLabel
	}
	return c.KeyLabel
}

// Validate reports every problem of c at once, each naming its config key.
func (c Config) Validate() error {
	var errs []error
	if c.Module == "" {
		errs = append(errs, errors.New("signing.pkcs11.module: the path of the PKCS#11 library is required"))
	}
	if (c.TokenLabel == "") == (c.Slot == nil) {
		errs = append(errs, errors.New("signing.pkcs11: set exactly one of token_label and slot"))
	}
	if c.PIN == "" {
		errs = append(errs, fmt.Errorf("signing.pkcs11.pin: the token's user PIN is required (%s)", PINEnv))
	}
	return errors.Join(errs...)
}
