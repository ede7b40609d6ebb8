package resource_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/portvakt/portvakt/pkg/resource"
)

// Protecting a handler takes one line: RequireScope(v, scope)(handler).
func Example() {
	issuer, mintToken, stop := fakeIssuer()
	defer stop()

	v, err := resource.NewVerifier(context.Background(), resource.VerifierConfig{Issuer: issuer})
	if err != nil {
		log.Fatal(err)
	}
	invoices := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := resource.FromContext(r.Context())
		fmt.Fprintf(w, "invoices of %s", c.ConsumerOrg)
	})

	mux := http.NewServeMux()
	mux.Handle("GET /invoices", resource.RequireScope(v, "acme:invoices.read")(invoices))

	api := httptest.NewServer(mux)
	defer api.Close()
	for _, scope := range []string{"acme:invoices.read", "acme:other"} {
		req, _ := http.NewRequest(http.MethodGet, api.URL+"/invoices", nil)
		req.Header.Set("Authorization", "Bearer "+mintToken(scope))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			fmt.Println(resp.StatusCode, string(body))
		} else {
			fmt.Println(resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
	// Output:
	// 200 invoices of 910000000
	// 403 Bearer error="insufficient_scope", error_description="the token lacks a required scope", scope="acme:invoices.read"
}

// fakeIssuer stands in for portvakt: metadata, a JWKS, and a function that
// mints access tokens the way portvakt does.
func fakeIssuer() (issuer string, mintToken func(scope string) string, stop func()) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	issuer = srv.URL + "/"
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": issuer, "jwks_uri": issuer + "jwk"})
	})
	mux.HandleFunc("GET /jwk", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	})
	mintToken = func(scope string) string {
		now := time.Now()
		t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
			"iss": issuer, "client_id": "c1", "scope": scope, "aud": "unspecified",
			"consumer": map[string]string{"authority": "iso6523-actorid-upis", "ID": "0192:910000000"},
			"iat":      now.Unix(), "exp": now.Add(2 * time.Minute).Unix(), "jti": "j1",
		})
		t.Header["typ"], t.Header["kid"] = "at+jwt", "k1"
		s, _ := t.SignedString(key)
		return s
	}
	return issuer, mintToken, srv.Close
}

// Keys already in memory need no discovery and no fetching: a StaticKeySet.
// NoLeeway asks for exact time checks; leaving Leeway and NoLeeway unset
// keeps the 5 s default.
func ExampleNewStaticKeySet() {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keys, err := resource.NewStaticKeySet(resource.PublicKey{KID: "k1", Alg: "ES256", Key: key.Public()})
	if err != nil {
		log.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	v, err := resource.NewVerifier(context.Background(), resource.VerifierConfig{
		Issuer: "https://auth.example.no/", KeySet: keys, NoLeeway: true,
		Now: func() time.Time { return now },
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, exp := range []time.Time{now.Add(time.Second), now} {
		t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
			"iss": "https://auth.example.no/", "client_id": "c1", "iat": now.Unix(), "exp": exp.Unix(),
			"consumer": map[string]string{"authority": "iso6523-actorid-upis", "ID": "0192:910000000"},
		})
		t.Header["typ"], t.Header["kid"] = "at+jwt", "k1"
		token, _ := t.SignedString(key)
		c, err := v.Verify(context.Background(), token)
		if err != nil {
			fmt.Println("refused:", errors.Is(err, resource.ErrTokenExpired))
			continue
		}
		fmt.Println("accepted for", c.ConsumerOrg)
	}
	// Output:
	// accepted for 910000000
	// refused: true
}
