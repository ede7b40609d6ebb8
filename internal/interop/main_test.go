package interop

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"testing"

	"github.com/portvakt/portvakt/internal/testserver"
)

func TestMain(m *testing.M) { os.Exit(testserver.Main(m)) }

// metadata is the RFC 8414 document, read the way a generic client reads it.
type metadata struct {
	Issuer        string   `json:"issuer"`
	TokenEndpoint string   `json:"token_endpoint"`
	JWKSURI       string   `json:"jwks_uri"`
	GrantTypes    []string `json:"grant_types_supported"`
}

// discover reads {issuer}.well-known/oauth-authorization-server (the issuer
// path is "/", so RFC 8414's insertion rule gives the same URL).
func discover(t *testing.T, ctx context.Context, issuer string) metadata {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, issuer+".well-known/oauth-authorization-server", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("metadata: %s", resp.Status)
	}
	var m metadata
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	if m.Issuer != issuer {
		t.Fatalf("metadata issuer %q, want %q byte for byte", m.Issuer, issuer)
	}
	return m
}
