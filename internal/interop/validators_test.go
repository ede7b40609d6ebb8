package interop

import (
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/portvakt/portvakt/internal/testserver"
	"github.com/portvakt/portvakt/pkg/client"
)

// tokens are what a provider might receive: direct grants by certificate and
// by kid, and a delegated grant (vendor acting for the consumer).
func tokens(t *testing.T, s *testserver.Server) map[string]string {
	t.Helper()
	p := s.PKI
	out := map[string]string{
		"certificate": s.Token(t, p.ConsumerCert, "demo:read", "demo:write").AccessToken,
		"kid":         s.Token(t, p.ConsumerKID, "demo:read").AccessToken,
	}
	cfg := s.ClientConfig(p.VendorCert, "demo:read")
	cfg.ConsumerOrg = testserver.ConsumerOrg
	ts, err := client.NewTokenSource(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := ts.Fetch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out["delegated"] = resp.AccessToken
	return out
}

// tamper flips a bit in the signature.
func tamper(tok string) string {
	b := []byte(tok)
	i := strings.LastIndexByte(tok, '.') + 5
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// TestGoOIDC verifies our tokens with go-oidc, which knows only the issuer:
// it discovers /.well-known/openid-configuration and fetches jwks_uri.
func TestGoOIDC(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	ctx := t.Context()
	provider, err := oidc.NewProvider(ctx, s.Issuer)
	if err != nil {
		t.Fatalf("oidc discovery: %v", err)
	}
	// Access tokens have no client-id audience (aud is "unspecified" or the
	// resource): a resource server skips that ID-token check.
	v := provider.Verifier(&oidc.Config{SkipClientIDCheck: true})
	toks := tokens(t, s)
	for name, tok := range toks {
		t.Run("ok/"+name, func(t *testing.T) {
			idt, err := v.Verify(ctx, tok)
			if err != nil {
				t.Fatalf("go-oidc rejected our token: %v", err)
			}
			if idt.Issuer != s.Issuer {
				t.Errorf("iss %q", idt.Issuer)
			}
			var c struct {
				Scope     string `json:"scope"`
				ClientAMR string `json:"client_amr"`
				Consumer  struct {
					Authority string `json:"authority"`
					ID        string `json:"ID"`
				} `json:"consumer"`
			}
			if err := idt.Claims(&c); err != nil {
				t.Fatal(err)
			}
			if c.Consumer.ID != "0192:"+testserver.ConsumerOrg || c.Consumer.Authority != "iso6523-actorid-upis" {
				t.Errorf("consumer %+v", c.Consumer)
			}
			if !strings.HasPrefix(c.Scope, "demo:read") {
				t.Errorf("scope %q", c.Scope)
			}
		})
	}
	t.Run("fail/tampered", func(t *testing.T) {
		if _, err := v.Verify(ctx, tamper(toks["kid"])); err == nil {
			t.Fatal("go-oidc accepted a tampered token")
		}
	})
	t.Run("fail/other-issuer", func(t *testing.T) {
		other := oidc.NewVerifier("https://other.example/", oidc.NewRemoteKeySet(ctx, discover(t, ctx, s.Issuer).JWKSURI),
			&oidc.Config{SkipClientIDCheck: true})
		if _, err := other.Verify(ctx, toks["kid"]); err == nil {
			t.Fatal("go-oidc accepted a token for another issuer")
		}
	})
}

// TestJWX verifies our tokens with lestrrat-go/jwx, which shares no code with
// our signer: RFC 8414 metadata, jwk.Fetch of jwks_uri, jwt.Parse with the
// key set (it insists on kid and a key alg in the JWKS) and the issuer.
func TestJWX(t *testing.T) {
	s := testserver.Start(t, testserver.Options{})
	ctx := t.Context()
	meta := discover(t, ctx, s.Issuer)
	set, err := jwk.Fetch(ctx, meta.JWKSURI)
	if err != nil {
		t.Fatalf("jwk.Fetch %s: %v", meta.JWKSURI, err)
	}
	for i := 0; i < set.Len(); i++ {
		k, _ := set.Key(i)
		if _, ok := k.KeyID(); !ok {
			t.Errorf("JWKS key %d without kid", i)
		}
		if _, ok := k.Algorithm(); !ok {
			t.Errorf("JWKS key %d without alg", i)
		}
	}
	toks := tokens(t, s)
	for name, tok := range toks {
		t.Run("ok/"+name, func(t *testing.T) {
			jt, err := jwt.Parse([]byte(tok), jwt.WithKeySet(set), jwt.WithIssuer(s.Issuer), jwt.WithValidate(true))
			if err != nil {
				t.Fatalf("jwx rejected our token: %v", err)
			}
			exp, _ := jt.Expiration()
			iat, _ := jt.IssuedAt()
			if d := exp.Sub(iat); d <= 0 || d > 2*time.Hour {
				t.Errorf("exp - iat = %s", d)
			}
			var consumer, supplier map[string]any
			if err := jt.Get("consumer", &consumer); err != nil {
				t.Fatalf("consumer: %v", err)
			}
			if consumer["ID"] != "0192:"+testserver.ConsumerOrg {
				t.Errorf("consumer %v", consumer)
			}
			err = jt.Get("supplier", &supplier)
			switch {
			case name == "delegated" && (err != nil || supplier["ID"] != "0192:"+testserver.VendorOrg):
				t.Errorf("delegated: supplier %v (%v)", supplier, err)
			case name != "delegated" && err == nil:
				t.Errorf("direct grant has a supplier: %v", supplier)
			}
		})
	}
	t.Run("fail/tampered", func(t *testing.T) {
		if _, err := jwt.Parse([]byte(tamper(toks["kid"])), jwt.WithKeySet(set), jwt.WithIssuer(s.Issuer)); err == nil {
			t.Fatal("jwx accepted a tampered token")
		}
	})
	t.Run("fail/other-issuer", func(t *testing.T) {
		if _, err := jwt.Parse([]byte(toks["kid"]), jwt.WithKeySet(set), jwt.WithIssuer("https://other.example/")); err == nil {
			t.Fatal("jwx accepted a token for another issuer")
		}
	})
	t.Run("fail/audience", func(t *testing.T) {
		// No resource was asked for: aud is "unspecified", and an API that
		// demands its own audience must refuse the token.
		if _, err := jwt.Parse([]byte(toks["kid"]), jwt.WithKeySet(set), jwt.WithAudience("https://api.demo.example/records")); err == nil {
			t.Fatal("jwx accepted a token without the demanded audience")
		}
	})
}
