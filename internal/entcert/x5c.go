package entcert

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/portvakt/portvakt/internal/protocol"
)

// Limits on an x5c header, against abuse: real chains are two or three
// certificates of 1-3 KiB each.
const (
	MaxChainLen = 10
	MaxCertSize = 16 << 10 // bytes of DER
	// maxRawX5C bounds the JSON we look at at all: MaxChainLen base64
	// certificates with room for whitespace. The token endpoint's 64 KiB body
	// limit is tighter still; this keeps DecodeX5C safe on its own.
	maxRawX5C = MaxChainLen*(MaxCertSize/3*4+16) + 1024
)

var strictB64 = base64.StdEncoding.Strict()

func errX5C(cause error) error {
	return protocol.InvalidGrant("The x5c header must be a JSON array of standard base64 DER certificates, leaf first").WithCause(cause)
}

// DecodeX5C turns the JWS header's x5c value (a JSON array of standard
// base64 DER strings, RFC 7515 section 4.1.6) into DER certificates, leaf
// first. A string, null, an empty array, a non-string member, bad base64, more
// than MaxChainLen certificates or one larger than MaxCertSize is an
// invalid_grant error. The certificates are not parsed here.
func DecodeX5C(raw json.RawMessage) ([][]byte, error) {
	if len(raw) > maxRawX5C {
		return nil, protocol.InvalidGrant("The x5c header is too large: send at most %d certificates of at most %d KiB each", MaxChainLen, MaxCertSize>>10).
			WithCause(fmt.Errorf("x5c is %d bytes", len(raw)))
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, errX5C(err)
	}
	return DecodeX5CValue(v)
}

func errCertSize(i int) error {
	return protocol.InvalidGrant("Certificate %d of the x5c header is larger than %d KiB", i, MaxCertSize>>10).
		WithCause(fmt.Errorf("x5c[%d] too large", i))
}

// DecodeX5CValue is DecodeX5C for a header already decoded from JSON (a JWT
// library's header map): the same rules and limits, without encoding the
// value back to JSON first.
func DecodeX5CValue(v any) ([][]byte, error) {
	members, ok := v.([]any)
	if !ok {
		return nil, errX5C(fmt.Errorf("x5c is %T, not an array", v))
	}
	if len(members) == 0 {
		return nil, errX5C(errors.New("x5c is an empty array"))
	}
	if len(members) > MaxChainLen {
		return nil, protocol.InvalidGrant("The x5c header holds %d certificates; at most %d are accepted", len(members), MaxChainLen).
			WithCause(errors.New("x5c chain too long"))
	}
	chain := make([][]byte, 0, len(members))
	for i, m := range members {
		s, ok := m.(string)
		if !ok {
			return nil, errX5C(fmt.Errorf("x5c[%d] is not a string", i))
		}
		der, err := decodeMember(i, s)
		if err != nil {
			return nil, err
		}
		chain = append(chain, der)
	}
	return chain, nil
}

// decodeMember decodes certificate i of an x5c header.
func decodeMember(i int, s string) ([]byte, error) {
	if strictB64.DecodedLen(len(s)) > MaxCertSize+3 {
		return nil, errCertSize(i)
	}
	der, err := strictB64.DecodeString(s)
	if err != nil {
		return nil, protocol.InvalidGrant("Certificate %d of the x5c header is not valid standard base64 (with padding, not base64url)", i).WithCause(err)
	}
	if len(der) == 0 {
		return nil, errX5C(fmt.Errorf("x5c[%d] is empty", i))
	}
	if len(der) > MaxCertSize {
		return nil, errCertSize(i)
	}
	return der, nil
}
