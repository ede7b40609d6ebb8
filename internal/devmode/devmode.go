package devmode

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/portvakt/portvakt/internal/devpki"
	"github.com/portvakt/portvakt/internal/signer"
)

// The demo orgs (synthetic numbers, valid under mod-11) and clients that
// configs/dev.yaml declares.
const (
	PlatformOrg = "310000019"
	ProviderOrg = "310000027"
	ConsumerOrg = "310000035"
	VendorOrg   = "310000043"

	ConsumerCertClient = "6f1c2a4e-0000-4000-8000-000000000001"
	ConsumerKIDClient  = "6f1c2a4e-0000-4000-8000-000000000002"
	VendorCertClient   = "6f1c2a4e-0000-4000-8000-000000000003"
	ProviderCertClient = "6f1c2a4e-0000-4000-8000-000000000004"
	AdminCertClient    = "6f1c2a4e-0000-4000-8000-000000000005"

	// P12Password protects the demo .p12 files. It is a demo, not a secret.
	P12Password = "portvakt-dev"
	// KID names the demo kid client's key.
	KID = "dev-key-1"
)

// Identity is one demo org's certificate files.
type Identity struct {
	Name, Org, Dir string
	Style          devpki.Style
}

// Identities are the demo orgs' certificates, by file folder name.
var Identities = []Identity{
	{Name: "Demo Platform AS", Org: PlatformOrg, Dir: "platform", Style: devpki.SEID2},
	{Name: "Demo Provider AS", Org: ProviderOrg, Dir: "provider", Style: devpki.SEID2},
	{Name: "Demo Consumer AS", Org: ConsumerOrg, Dir: "consumer", Style: devpki.SEID1},
	{Name: "Demo Consumer AS", Org: ConsumerOrg, Dir: "consumer-seid2", Style: devpki.SEID2},
	{Name: "Demo Vendor AS", Org: VendorOrg, Dir: "vendor", Style: devpki.SEID2},
}

// Prepare makes the dev PKI and kid-client key under dataDir/pki unless they
// exist. Paths in configs/dev.yaml are relative to dataDir.
func Prepare(dataDir string) error { return PrepareAt(dataDir, time.Now()) }

// PrepareAt is Prepare with the certificates made at now.
func PrepareAt(dataDir string, now time.Time) error {
	dir := filepath.Join(dataDir, "pki")
	if _, err := os.Stat(filepath.Join(dir, "root.pem")); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	pki, err := devpki.New("Portvakt Dev", now)
	if err != nil {
		return err
	}
	for _, id := range Identities {
		cred, err := pki.Issue(devpki.Enterprise{Org: id.Org, Name: id.Name, Style: id.Style}, now)
		if err != nil {
			return err
		}
		d := filepath.Join(dir, id.Dir)
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
		keyPEM, err := devpki.KeyPEM(cred.Key)
		if err != nil {
			return err
		}
		p12, err := cred.PKCS12(P12Password)
		if err != nil {
			return err
		}
		files := map[string][]byte{
			"cert.pem":  devpki.CertPEM(cred.Cert),
			"chain.pem": devpki.CertPEM(cred.Chain...),
			"key.pem":   keyPEM,
			"cert.p12":  p12,
		}
		for name, b := range files {
			if err := os.WriteFile(filepath.Join(d, name), b, 0o600); err != nil {
				return err
			}
		}
	}
	kidKey, err := devpki.NewKey()
	if err != nil {
		return err
	}
	kidPEM, err := devpki.KeyPEM(kidKey)
	if err != nil {
		return err
	}
	jwks, err := json.MarshalIndent(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: kidKey.Public(), KeyID: KID, Algorithm: "RS256", Use: "sig"}}}, "", "  ")
	if err != nil {
		return err
	}
	// The root goes last: its presence marks a complete PKI.
	for name, b := range map[string][]byte{
		"kid-client.key.pem":   kidPEM,
		"kid-client.jwks.json": jwks,
		"intermediate.pem":     devpki.CertPEM(pki.Issuing.Cert),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, "root.pem"), devpki.CertPEM(pki.Root.Cert), 0o600)
}

// Commands are the ready-to-paste token commands printed at start-up.
func Commands(prog, issuer, dataDir string) string {
	if prog == "" || strings.Contains(prog, "go-build") {
		prog = "go run ./cmd/portvakt"
	}
	pki := filepath.Join(dataDir, "pki")
	var b strings.Builder
	fmt.Fprintf(&b, "Demo tokens (dev PKI and keys in %s):\n\n", pki)
	fmt.Fprintf(&b, "  # consumer %s, enterprise certificate (x5c), direct:\n", ConsumerOrg)
	fmt.Fprintf(&b, "  %s token --issuer %s --client-id %s --cert %s --key %s --scope \"demo:read demo:write\" --decode\n\n",
		prog, issuer, ConsumerCertClient, filepath.Join(pki, "consumer", "chain.pem"), filepath.Join(pki, "consumer", "key.pem"))
	fmt.Fprintf(&b, "  # consumer %s, registered key (kid):\n", ConsumerOrg)
	fmt.Fprintf(&b, "  %s token --issuer %s --client-id %s --key %s --kid %s --scope demo:read --decode\n\n",
		prog, issuer, ConsumerKIDClient, filepath.Join(pki, "kid-client.key.pem"), KID)
	fmt.Fprintf(&b, "  # vendor %s acting for consumer %s (delegated), PKCS#12:\n", VendorOrg, ConsumerOrg)
	fmt.Fprintf(&b, "  PORTVAKT_P12_PASSWORD=%s %s token --issuer %s --client-id %s --cert %s --scope demo:read --consumer-org %s --decode\n",
		P12Password, prog, issuer, VendorCertClient, filepath.Join(pki, "vendor", "cert.p12"), ConsumerOrg)
	fmt.Fprintf(&b, "\nThe self-service API from the shell (admin --help lists every command; the README walks through it):\n\n")
	fmt.Fprintf(&b, "  # platform admin %s: the prefixes and who owns them\n", PlatformOrg)
	fmt.Fprintf(&b, "  %s admin prefixes list --issuer %s --client-id %s --cert %s --key %s\n\n",
		prog, issuer, AdminCertClient, filepath.Join(pki, "platform", "chain.pem"), filepath.Join(pki, "platform", "key.pem"))
	fmt.Fprintf(&b, "  # provider %s: its scopes, and who asks for them\n", ProviderOrg)
	fmt.Fprintf(&b, "  %s admin scopes list --issuer %s --client-id %s --cert %s --key %s\n",
		prog, issuer, ProviderCertClient, filepath.Join(pki, "provider", "chain.pem"), filepath.Join(pki, "provider", "key.pem"))
	fmt.Fprintf(&b, "  %s admin access inbox --issuer %s --client-id %s --cert %s --key %s\n\n",
		prog, issuer, ProviderCertClient, filepath.Join(pki, "provider", "chain.pem"), filepath.Join(pki, "provider", "key.pem"))
	fmt.Fprintf(&b, "  # the platform admin onboards the consumer %s and the vendor %s with a self-service client each\n", ConsumerOrg, VendorOrg)
	fmt.Fprintf(&b, "  %s admin clients create --org %s --name consumer-admin --description \"consumer self-service\" --scope %s --issuer %s --client-id %s --cert %s --key %s\n",
		prog, ConsumerOrg, "portvakt:clients.read,portvakt:clients.write,portvakt:delegations.write,portvakt:scopes.read,portvakt:audit.read,portvakt:access.request",
		issuer, AdminCertClient, filepath.Join(pki, "platform", "chain.pem"), filepath.Join(pki, "platform", "key.pem"))
	fmt.Fprintf(&b, "  %s admin clients create --org %s --name vendor-admin --description \"vendor self-service\" --scope %s --issuer %s --client-id %s --cert %s --key %s\n",
		prog, VendorOrg, "portvakt:clients.read,portvakt:clients.write,portvakt:scopes.read",
		issuer, AdminCertClient, filepath.Join(pki, "platform", "chain.pem"), filepath.Join(pki, "platform", "key.pem"))
	return b.String()
}

// KEKFile names the dev mode's own key-encryption key in the data
// directory.
const KEKFile = "signing-kek"

// KEK returns the absolute path of the dev mode's key-encryption key in
// dataDir, making it (32 random bytes, base64, mode 0600) when it does not
// exist yet: the dev mode's signing keys live in its database and rotate,
// as in production, and survive a restart.
func KEK(dataDir string) (string, error) {
	path, err := filepath.Abs(filepath.Join(dataDir, KEKFile))
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", err
	}
	key := make([]byte, signer.KEKSize)
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return path, nil // another dev process made it first
	}
	if err != nil {
		return "", err
	}
	_, err = f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return "", err
	}
	return path, nil
}
