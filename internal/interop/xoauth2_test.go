package interop

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/jwt"

	"github.com/portvakt/portvakt/internal/config"
	"github.com/portvakt/portvakt/internal/testpki"
	"github.com/portvakt/portvakt/internal/testserver"
	"github.com/portvakt/portvakt/pkg/client"
)

// vendorKIDClient is a vendor client with a registered key, so that a generic
// client (which cannot send x5c) can also ask for a delegated grant.
const vendorKIDClient = "6f1c2a4e-0000-4000-8000-0000000000a1"

// TestXOAuth2JWT gets tokens with golang.org/x/oauth2/jwt, a generic RFC 7523
// client: it signs RS256 with the kid in the header, iss = Email, aud =
// Audience, the scopes in a "scope" claim (as Maskinporten expects), no jti
// (the server then keys replay on the assertion's hash), and iat backdated
// by 10 s.
func TestXOAuth2JWT(t *testing.T) {
	vendorKey, err := testpki.RSAKey(2048)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := client.KeySigner(vendorKey, "vendor-key-1")
	if err != nil {
		t.Fatal(err)
	}
	vendor := testserver.Client{Name: "vendor-kid", ID: vendorKIDClient, Org: testserver.VendorOrg,
		Scopes: []string{"demo:read"}, Signer: vs, Key: vendorKey, KID: "vendor-key-1"}
	s := testserver.Start(t, testserver.Options{Records: func(r *config.Records) {
		rec, err := vendor.Record()
		if err != nil {
			t.Fatal(err)
		}
		r.Clients = append(r.Clients, rec)
	}})
	meta := discover(t, t.Context(), s.Issuer)
	v := verifier(t, s)

	conf := func(c testserver.Client, scopes ...string) *jwt.Config {
		t.Helper()
		pemKey, err := testpki.KeyPEM(c.Key)
		if err != nil {
			t.Fatal(err)
		}
		return &jwt.Config{
			Email: c.ID, PrivateKey: pemKey, PrivateKeyID: c.KID, Scopes: scopes,
			TokenURL: meta.TokenEndpoint, Audience: s.Issuer,
			// x/oauth2/jwt backdates iat by 10 s and sets exp = now + Expires:
			// 100 s keeps exp - iat within the server's 120 s.
			Expires: 100 * time.Second,
		}
	}
	ctx := t.Context()
	t.Run("ok/kid", func(t *testing.T) {
		tok, err := conf(s.PKI.ConsumerKID, "demo:read", "demo:open").TokenSource(ctx).Token()
		if err != nil {
			t.Fatalf("x/oauth2/jwt: %v", err)
		}
		if tok.TokenType != "Bearer" || tok.Expiry.IsZero() {
			t.Errorf("token type %q expiry %v", tok.TokenType, tok.Expiry)
		}
		if got := tok.Extra("scope"); got != "demo:read demo:open" {
			t.Errorf("scope %v", got)
		}
		c, err := v.Verify(ctx, tok.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		if c.ClientID != s.PKI.ConsumerKID.ID || c.ClientAMR != "private_key_jwt" || c.ConsumerOrg != testserver.ConsumerOrg {
			t.Errorf("claims %+v", c)
		}
	})
	t.Run("ok/delegated", func(t *testing.T) {
		cf := conf(vendor, "demo:read")
		cf.PrivateClaims = map[string]any{"consumer_org": testserver.ConsumerOrg}
		tok, err := cf.TokenSource(ctx).Token()
		if err != nil {
			t.Fatalf("x/oauth2/jwt: %v", err)
		}
		c, err := v.Verify(ctx, tok.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		if c.ConsumerOrg != testserver.ConsumerOrg || c.SupplierOrg != testserver.VendorOrg || c.DelegationSource != s.Issuer {
			t.Errorf("consumer %s supplier %s source %s", c.ConsumerOrg, c.SupplierOrg, c.DelegationSource)
		}
	})
	t.Run("ok/twice-within-a-second", func(t *testing.T) {
		// Without jti two grants signed in the same second are byte for byte
		// equal: the second is a replay. Different scopes make them differ.
		for _, sc := range []string{"demo:read", "demo:open"} {
			if _, err := conf(s.PKI.ConsumerKID, sc).TokenSource(ctx).Token(); err != nil {
				t.Fatalf("%s: %v", sc, err)
			}
		}
	})
	for _, tc := range []struct {
		name string
		edit func(*jwt.Config)
		code string
	}{
		// The library's default exp is an hour: our server allows 120 s.
		{"fail/default-expiry", func(c *jwt.Config) { c.Expires = 0 }, "invalid_grant"},
		// Without Audience the library sends the token URL as aud.
		{"fail/aud-is-token-url", func(c *jwt.Config) { c.Audience = "" }, "invalid_grant"},
		{"fail/unknown-kid", func(c *jwt.Config) { c.PrivateKeyID = "nope" }, "invalid_grant"},
		{"fail/scope-not-on-client", func(c *jwt.Config) { c.Scopes = []string{"demo:write"} }, "invalid_scope"},
		{"fail/no-scope", func(c *jwt.Config) { c.Scopes = nil }, "invalid_scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cf := conf(s.PKI.ConsumerKID, "demo:read")
			tc.edit(cf)
			_, err := cf.TokenSource(ctx).Token()
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) {
				t.Fatalf("want an OAuth error %s, got %v", tc.code, err)
			}
			// x/oauth2/jwt leaves RetrieveError.ErrorCode empty (only the
			// three-legged flows parse it): read the RFC 6749 body ourselves.
			var body struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			if err := json.Unmarshal(re.Body, &body); err != nil {
				t.Fatalf("error body %q: %v", re.Body, err)
			}
			if re.Response.StatusCode != 400 || body.Error != tc.code || body.Description == "" {
				t.Errorf("got %d %s (%s), want 400 %s with a description", re.Response.StatusCode, body.Error, body.Description, tc.code)
			}
		})
	}
}
