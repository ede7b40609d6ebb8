package testserver

import (
	"crypto"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/portvakt/portvakt/internal/config"
	"github.com/portvakt/portvakt/internal/devmode"
	"github.com/portvakt/portvakt/internal/testpki"
	"github.com/portvakt/portvakt/pkg/client"
)

// The demo orgs are those of the dev mode (synthetic, mod-11 valid).
const (
	PlatformOrg = devmode.PlatformOrg
	ProviderOrg = devmode.ProviderOrg
	ConsumerOrg = devmode.ConsumerOrg
	VendorOrg   = devmode.VendorOrg
)

// Client is a declared client with its signing material.
type Client struct {
	Name   string
	ID     string
	Org    string
	Scopes []string
	// Signer signs its grants: x5c for a certificate client, kid otherwise.
	Signer client.Signer
	// Key is the private key; Leaf is set for a certificate client, KID for
	// a key client.
	Key  crypto.Signer
	Leaf *testpki.Leaf
	KID  string
}

// PKI is the trust anchors, the server's signing key and the demo clients'
// signing material. One PKI may serve many servers (replicas share one).
type PKI struct {
	*testpki.PKI
	// SigningKey is the server's token signing key (RSA-2048, RS256).
	SigningKey crypto.Signer

	// The demo clients, as configs/dev.yaml declares them.
	ConsumerCert  Client // consumer, enterprise certificate (SEID 1)
	ConsumerKID   Client // consumer, registered key
	VendorCert    Client // vendor, acts for the consumer by delegation
	ProviderAdmin Client // provider, self-service admin scopes
	PlatformAdmin Client // platform admin
}

// Clients are the demo clients.
func (p *PKI) Clients() []Client {
	return []Client{p.ConsumerCert, p.ConsumerKID, p.VendorCert, p.ProviderAdmin, p.PlatformAdmin}
}

var shared struct {
	once sync.Once
	pki  *PKI
	err  error
}

// SharedPKI is one PKI per test process: the keys are throwaway, and RSA key
// generation is the slowest part of starting a server.
func SharedPKI(t testing.TB) *PKI {
	t.Helper()
	shared.once.Do(func() { shared.pki, shared.err = NewPKI() })
	if shared.err != nil {
		t.Fatalf("testserver: %v", shared.err)
	}
	return shared.pki
}

// NewPKI makes a fresh PKI with the demo clients.
func NewPKI() (*PKI, error) {
	tp, err := testpki.New("Portvakt Test")
	if err != nil {
		return nil, err
	}
	p := &PKI{PKI: tp}
	if p.SigningKey, err = testpki.RSAKey(2048); err != nil {
		return nil, err
	}
	cert := func(name, id, org string, style testpki.Style, scopes ...string) (Client, error) {
		leaf, err := tp.Leaf(testpki.LeafOptions{Org: org, Name: name, Style: style})
		if err != nil {
			return Client{}, err
		}
		s, err := client.CertificateSigner(leaf.Key, leaf.Chain)
		if err != nil {
			return Client{}, err
		}
		return Client{Name: name, ID: id, Org: org, Scopes: scopes, Signer: s, Key: leaf.Key, Leaf: leaf}, nil
	}
	if p.ConsumerCert, err = cert("consumer-certificate", devmode.ConsumerCertClient, ConsumerOrg, testpki.SEID1,
		"demo:read", "demo:write", "demo:open", "demo:records"); err != nil {
		return nil, err
	}
	if p.VendorCert, err = cert("vendor-certificate", devmode.VendorCertClient, VendorOrg, testpki.SEID2, "demo:read"); err != nil {
		return nil, err
	}
	if p.ProviderAdmin, err = cert("provider-admin", devmode.ProviderCertClient, ProviderOrg, testpki.SEID2,
		"portvakt:scopes.read", "portvakt:scopes.write", "portvakt:clients.read", "portvakt:clients.write",
		"portvakt:delegations.write", "portvakt:audit.read"); err != nil {
		return nil, err
	}
	if p.PlatformAdmin, err = cert("platform-admin", devmode.AdminCertClient, PlatformOrg, testpki.SEID2,
		"portvakt:admin", "portvakt:scopes.read", "portvakt:audit.read"); err != nil {
		return nil, err
	}
	kidKey, err := testpki.RSAKey(2048)
	if err != nil {
		return nil, err
	}
	ks, err := client.KeySigner(kidKey, devmode.KID)
	if err != nil {
		return nil, err
	}
	p.ConsumerKID = Client{Name: "consumer-kid", ID: devmode.ConsumerKIDClient, Org: ConsumerOrg,
		Scopes: []string{"demo:read", "demo:open"}, Signer: ks, Key: kidKey, KID: devmode.KID}
	return p, nil
}

// JWK is the public JWK of a key client, for a client record's jwks.
func (c Client) JWK() (json.RawMessage, error) {
	if c.KID == "" {
		return nil, fmt.Errorf("client %s has no kid", c.Name)
	}
	return json.Marshal(jose.JSONWebKey{Key: c.Key.Public(), KeyID: c.KID, Algorithm: c.Signer.Algorithm(), Use: "sig"})
}

// Record is the client's config record.
func (c Client) Record() (config.ClientRecord, error) {
	r := config.ClientRecord{
		ClientID: c.ID, ClientOrgno: c.Org, ClientName: c.Name,
		Description: "testserver client " + c.Name, Scopes: c.Scopes,
	}
	if c.KID != "" {
		k, err := c.JWK()
		if err != nil {
			return r, err
		}
		r.JWKS = []json.RawMessage{k}
	}
	return r, nil
}

// DemoRecords are the records of configs/dev.yaml for the PKI's clients:
// prefix demo owned by the provider; demo:read (delegable), demo:write
// (60 s cap), demo:open (accessible for all) and demo:records (needs a
// resource); the consumer has access to all, and delegates demo:read to the
// vendor.
func (p *PKI) DemoRecords() (config.Records, error) {
	r := config.Records{
		Prefixes: []config.PrefixRecord{{Prefix: "demo", OwnerOrg: ProviderOrg}},
		Scopes: []config.ScopeRecord{
			{Prefix: "demo", Subscope: "read", Description: "Read the demo API", Delegable: true},
			{Prefix: "demo", Subscope: "write", Description: "Write to the demo API", ATMaxAge: 60},
			{Prefix: "demo", Subscope: "open", Description: "Open to every organisation", AccessibleForAll: true},
			{Prefix: "demo", Subscope: "records", Description: "A scope that needs a resource (RFC 8707)",
				RequiresAudience: true, Audiences: []string{"https://api.demo.example/records"}},
		},
		Access: []config.AccessRecord{
			{Scope: "demo:read", ConsumerOrgno: ConsumerOrg},
			{Scope: "demo:write", ConsumerOrgno: ConsumerOrg},
			{Scope: "demo:records", ConsumerOrgno: ConsumerOrg},
		},
		Delegations: []config.DelegationRecord{{Scope: "demo:read", ConsumerOrgno: ConsumerOrg, SupplierOrgno: VendorOrg}},
	}
	for _, c := range p.Clients() {
		rec, err := c.Record()
		if err != nil {
			return r, err
		}
		r.Clients = append(r.Clients, rec)
	}
	return r, nil
}
