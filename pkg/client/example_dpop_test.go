package client_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"log"

	"github.com/portvakt/portvakt/pkg/client"
)

// One option binds the tokens to a key the program holds (DPoP, RFC 9449):
// a leaked token is then worthless without the key. The *http.Client sends
// every request with "Authorization: DPoP" and a fresh proof.
func ExampleDPoP() {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, _ := client.KeySigner(key, "my-key-1")
	ts, err := client.NewTokenSource(context.Background(), client.Config{
		Issuer:   "https://auth.example.no/",
		ClientID: "0b1ed1ac-4e3a-4c83-9f4b-0c1a1d2e3f40",
		Scopes:   []string{"acme:invoices.read"},
		Signer:   signer,
		DPoP:     &client.DPoP{}, // a P-256 key made for this client; or DPoP{Key: k}
	})
	if err != nil {
		log.Fatal(err)
	}
	hc := ts.HTTPClient()
	_ = hc // hc.Get("https://api.example.no/invoices")
}
