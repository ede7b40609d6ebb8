package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/portvakt/portvakt/internal/devmode"
	"github.com/portvakt/portvakt/pkg/client"
)

// clientSpec is one client of the mix, as the --mix JSON file gives it.
// Signing material is a PEM certificate (leaf or chain) with its key, a
// PKCS#12 file, or a PEM key with a kid.
type clientSpec struct {
	Name        string   `json:"name"`
	ClientID    string   `json:"client_id"`
	Cert        string   `json:"cert,omitempty"`
	Key         string   `json:"key,omitempty"`
	KID         string   `json:"kid,omitempty"`
	P12         string   `json:"p12,omitempty"`
	P12Password string   `json:"p12_password,omitempty"`
	Scopes      []string `json:"scopes"`
	Resources   []string `json:"resources,omitempty"`
	ConsumerOrg string   `json:"consumer_org,omitempty"`
	// Weight is the client's share of the requests (default 1).
	Weight int `json:"weight,omitempty"`
}

type mixFile struct {
	Clients []clientSpec `json:"clients"`
}

// devMix is the dev mode's demo: a certificate client and a kid client of the
// consumer asking directly, and the vendor asking for the consumer by
// delegation (PKCS#12), 2:2:1.
func devMix(dir string) []clientSpec {
	pki := filepath.Join(dir, "pki")
	return []clientSpec{
		{Name: "cert-direct", ClientID: devmode.ConsumerCertClient, Cert: filepath.Join(pki, "consumer", "chain.pem"),
			Key: filepath.Join(pki, "consumer", "key.pem"), Scopes: []string{"demo:read", "demo:write"}, Weight: 2},
		{Name: "kid-direct", ClientID: devmode.ConsumerKIDClient, Key: filepath.Join(pki, "kid-client.key.pem"),
			KID: devmode.KID, Scopes: []string{"demo:read"}, Weight: 2},
		{Name: "cert-delegated", ClientID: devmode.VendorCertClient, P12: filepath.Join(pki, "vendor", "cert.p12"),
			P12Password: devmode.P12Password, Scopes: []string{"demo:read"}, ConsumerOrg: devmode.ConsumerOrg, Weight: 1},
	}
}

func readMix(path string) ([]clientSpec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m mixFile
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(m.Clients) == 0 {
		return nil, fmt.Errorf("%s: no clients", path)
	}
	// Relative paths are relative to the mix file.
	dir := filepath.Dir(path)
	for i := range m.Clients {
		c := &m.Clients[i]
		for _, p := range []*string{&c.Cert, &c.Key, &c.P12} {
			if *p != "" && !filepath.IsAbs(*p) {
				*p = filepath.Join(dir, *p)
			}
		}
	}
	return m.Clients, nil
}

// signer loads the spec's signing material.
func (c clientSpec) signer() (client.Signer, error) {
	switch {
	case c.KID != "":
		b, err := os.ReadFile(c.Key)
		if err != nil {
			return client.Signer{}, err
		}
		k, err := client.LoadPrivateKeyPEM(b)
		if err != nil {
			return client.Signer{}, fmt.Errorf("%s: %w", c.Key, err)
		}
		return client.KeySigner(k, c.KID)
	case c.P12 != "":
		b, err := os.ReadFile(c.P12)
		if err != nil {
			return client.Signer{}, err
		}
		k, chain, err := client.LoadPKCS12(b, c.P12Password)
		if err != nil {
			return client.Signer{}, fmt.Errorf("%s: %w", c.P12, err)
		}
		return client.CertificateSigner(k, chain)
	case c.Cert != "" && c.Key != "":
		cb, err := os.ReadFile(c.Cert)
		if err != nil {
			return client.Signer{}, err
		}
		kb, err := os.ReadFile(c.Key)
		if err != nil {
			return client.Signer{}, err
		}
		k, chain, err := client.LoadPEM(cb, kb)
		if err != nil {
			return client.Signer{}, err
		}
		return client.CertificateSigner(k, chain)
	}
	return client.Signer{}, errors.New("give cert+key, p12, or key+kid")
}

// source is a client of the mix ready to sign assertions.
type source struct {
	spec clientSpec
	ts   *client.TokenSource
}

func sources(ctx context.Context, issuer, tokenURL string, specs []clientSpec) ([]source, error) {
	var out []source
	for i, sp := range specs {
		if sp.Name == "" {
			sp.Name = fmt.Sprintf("client-%d", i)
		}
		if sp.Weight == 0 {
			sp.Weight = 1
		}
		if sp.Weight < 0 {
			return nil, fmt.Errorf("%s: negative weight", sp.Name)
		}
		s, err := sp.signer()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", sp.Name, err)
		}
		ts, err := client.NewTokenSource(ctx, client.Config{
			Issuer: issuer, TokenURL: tokenURL, ClientID: sp.ClientID, Scopes: sp.Scopes,
			Resources: sp.Resources, ConsumerOrg: sp.ConsumerOrg, Signer: s,
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", sp.Name, err)
		}
		out = append(out, source{spec: sp, ts: ts})
	}
	return out, nil
}
