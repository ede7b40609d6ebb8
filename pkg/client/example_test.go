package client_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"golang.org/x/oauth2"

	"github.com/portvakt/portvakt/pkg/client"
)

// fakeServer stands in for portvakt: metadata and a token endpoint that
// grants whatever the (unchecked) assertion asks for.
func fakeServer() *httptest.Server {
	mux := http.NewServeMux()
	var srv *httptest.Server
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": srv.URL + "/", "token_endpoint": srv.URL + "/token"})
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		_, claims, _ := client.DecodeToken(r.PostFormValue("assertion"))
		if claims["scope"] == "acme:secret" {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"invalid_scope","error_description":"no access to acme:secret"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"eyJ...","token_type":"Bearer","expires_in":120,"scope":%q}`, claims["scope"])
	})
	srv = httptest.NewServer(mux)
	return srv
}

// Getting a token takes three lines once the signing key is loaded.
func Example() {
	srv := fakeServer()
	defer srv.Close()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // in real life: client.LoadPKCS12 or client.LoadPEM
	signer, _ := client.KeySigner(key, "my-key-1")

	ts, _ := client.NewTokenSource(context.Background(), client.Config{Issuer: srv.URL + "/", ClientID: "my-client", Scopes: []string{"acme:read"}, Signer: signer})
	tok, _ := ts.Token()
	fmt.Println(tok.TokenType, tok.Extra("scope"))
	// Output: Bearer acme:read
}

// The three-line path: a Config that names the signing files, and an HTTP
// client that adds a token to every request. internal/interop runs this
// against a real server with each kind of file.
func ExampleConfig_Client() {
	conf := &client.Config{
		Issuer:   "https://auth.example.no/",
		ClientID: "0b1ed1ac-4e3a-4c83-9f4b-0c1a1d2e3f40",
		Scopes:   []string{"acme:invoices.read"},
		// Or CertFile and KeyFile (PEM), or KeyFile and KeyID (a registered key).
		PKCS12File: "virksomhetssertifikat.p12", PKCS12Password: os.Getenv("P12_PASSWORD"),
	}
	resp, err := conf.Client(context.Background()).Get("https://api.example.no/invoices")
	if err != nil {
		log.Fatal(err) // a missing file or a refused grant shows here
	}
	defer resp.Body.Close()
}

// A registered key in a PEM file, and its kid.
func ExampleConfig_TokenSource() {
	srv := fakeServer()
	defer srv.Close()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // in real life: generated once, its public half registered
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	keyFile := filepath.Join(dir, "key.pem")
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)

	conf := &client.Config{Issuer: srv.URL + "/", ClientID: "my-client", Scopes: []string{"acme:read"}, KeyFile: keyFile, KeyID: "my-key-1"}
	tok, err := conf.TokenSource(context.Background()).Token()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.TokenType, tok.Extra("scope"))
	// Output: Bearer acme:read
}

// With an enterprise certificate (virksomhetssertifikat) in a .p12 file, and
// an HTTP client that adds the token to every request.
func ExampleLoadPKCS12() {
	p12, err := os.ReadFile("virksomhetssertifikat.p12")
	if err != nil {
		log.Fatal(err)
	}
	key, chain, err := client.LoadPKCS12(p12, os.Getenv("P12_PASSWORD"))
	if err != nil {
		log.Fatal(err)
	}
	signer, err := client.CertificateSigner(key, chain)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	ts, err := client.NewTokenSource(ctx, client.Config{
		Issuer:   "https://auth.example.no/",
		ClientID: "0b1ed1ac-4e3a-4c83-9f4b-0c1a1d2e3f40",
		Scopes:   []string{"acme:invoices.read"},
		Signer:   signer,
	})
	if err != nil {
		log.Fatal(err)
	}
	// oauth2.Transport rather than oauth2.NewClient: ts caches by itself.
	api := &http.Client{Transport: &oauth2.Transport{Source: ts}}
	resp, err := api.Get("https://api.example.no/invoices")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
}

// A vendor acting for several customers keeps one Client and asks it for a
// source per customer; each source caches its own token.
func ExampleClient_Source() {
	srv := fakeServer()
	defer srv.Close()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, _ := client.KeySigner(key, "my-key-1")
	c, err := client.NewClient(context.Background(), client.Config{Issuer: srv.URL + "/", ClientID: "vendor-client", Signer: signer})
	if err != nil {
		log.Fatal(err)
	}
	for _, customer := range []string{"910000001", "910000002"} {
		ts, err := c.Source([]string{"acme:read"}, nil, customer)
		if err != nil {
			log.Fatal(err)
		}
		tok, err := ts.Token()
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(customer, tok.Extra("scope"))
	}
	// Output:
	// 910000001 acme:read
	// 910000002 acme:read
}

// The token endpoint's refusals are *client.Error.
func ExampleError() {
	srv := fakeServer()
	defer srv.Close()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, _ := client.KeySigner(key, "my-key-1")
	ts, _ := client.NewTokenSource(context.Background(), client.Config{Issuer: srv.URL + "/", ClientID: "my-client", Scopes: []string{"acme:secret"}, Signer: signer})

	_, err := ts.Token()
	var oe *client.Error
	if errors.As(err, &oe) {
		fmt.Println(oe.StatusCode, oe.Code, oe.Description)
	}
	// Output: 400 invalid_scope no access to acme:secret
}
