package client

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// DecodeToken splits a JWS compact token and decodes its header and claims
// for display. It does NOT verify the signature or any claim: never base a
// decision on its result (resource servers use package resource).
func DecodeToken(token string) (header, claims map[string]any, err error) {
	parts := strings.Split(strings.TrimSpace(token), ".")
	if len(parts) != 3 {
		return nil, nil, errors.New("client: token is not a JWS in compact form (three dot-separated parts)")
	}
	if header, err = decodeSegment(parts[0]); err != nil {
		return nil, nil, fmt.Errorf("client: token header: %w", err)
	}
	if claims, err = decodeSegment(parts[1]); err != nil {
		return nil, nil, fmt.Errorf("client: token claims: %w", err)
	}
	return header, claims, nil
}

func decodeSegment(s string) (map[string]any, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, err
	}
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber() // keep iat/exp as integers when printed
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}
