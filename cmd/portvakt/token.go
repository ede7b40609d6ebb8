package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/portvakt/portvakt/pkg/client"
	"github.com/portvakt/portvakt/pkg/dpop"
)

// signingFlags are the grant-signing options shared by `token` and `admin`.
type signingFlags struct {
	issuer, tokenURL, clientID string
	cert, key, kid             string
}

func (f *signingFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.issuer, "issuer", os.Getenv("PORTVAKT_ISSUER"), "the server's issuer URL, e.g. https://auth.example.no/ (env PORTVAKT_ISSUER)")
	cmd.Flags().StringVar(&f.tokenURL, "token-url", "", "token endpoint (default: discovered from the issuer's metadata)")
	cmd.Flags().StringVar(&f.clientID, "client-id", os.Getenv("PORTVAKT_CLIENT_ID"), "client_id (env PORTVAKT_CLIENT_ID)")
	cmd.Flags().StringVar(&f.cert, "cert", "", "enterprise certificate: PEM (leaf or chain, with --key) or PKCS#12 .p12 (password from PORTVAKT_P12_PASSWORD or a prompt)")
	cmd.Flags().StringVar(&f.key, "key", "", "PEM private key: of the certificate, or with --kid of a registered key")
	cmd.Flags().StringVar(&f.kid, "kid", "", "kid of the registered key (sign with --key, no certificate)")
}

// signer builds the grant signer from the flags.
func (f *signingFlags) signer(stderr io.Writer) (client.Signer, error) {
	switch {
	case f.kid != "":
		if f.key == "" {
			return client.Signer{}, errors.New("--kid needs --key (the registered key's private key)")
		}
		b, err := os.ReadFile(f.key)
		if err != nil {
			return client.Signer{}, err
		}
		k, err := client.LoadPrivateKeyPEM(b)
		if err != nil {
			return client.Signer{}, fmt.Errorf("%s: %w", f.key, err)
		}
		return client.KeySigner(k, f.kid)
	case f.cert != "":
		b, err := os.ReadFile(f.cert)
		if err != nil {
			return client.Signer{}, err
		}
		if strings.HasSuffix(strings.ToLower(f.cert), ".p12") || strings.HasSuffix(strings.ToLower(f.cert), ".pfx") {
			pw, err := p12Password(stderr)
			if err != nil {
				return client.Signer{}, err
			}
			k, chain, err := client.LoadPKCS12(b, pw)
			if err != nil {
				return client.Signer{}, fmt.Errorf("%s: %w", f.cert, err)
			}
			return client.CertificateSigner(k, chain)
		}
		if f.key == "" {
			return client.Signer{}, errors.New("a PEM --cert needs --key")
		}
		kb, err := os.ReadFile(f.key)
		if err != nil {
			return client.Signer{}, err
		}
		k, chain, err := client.LoadPEM(b, kb)
		if err != nil {
			return client.Signer{}, err
		}
		return client.CertificateSigner(k, chain)
	}
	return client.Signer{}, errors.New("give --cert (enterprise certificate) or --key with --kid (registered key)")
}

func p12Password(stderr io.Writer) (string, error) {
	if pw, ok := os.LookupEnv("PORTVAKT_P12_PASSWORD"); ok {
		return pw, nil
	}
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && line == "" {
			return "", errors.New("PKCS#12 password: set PORTVAKT_P12_PASSWORD or type it on standard input")
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	fmt.Fprint(stderr, "PKCS#12 password: ")
	b, err := term.ReadPassword(int(os.Stdin.Fd()))
	fmt.Fprintln(stderr)
	return string(b), err
}

// check refuses missing and conflicting signing flags, naming them, before
// any file is read or any request made.
func (f *signingFlags) check() error {
	var missing []string
	if f.issuer == "" {
		missing = append(missing, "--issuer (or PORTVAKT_ISSUER)")
	}
	if f.clientID == "" {
		missing = append(missing, "--client-id")
	}
	switch {
	case len(missing) > 0:
		return usage("%s is required", strings.Join(missing, " and "))
	case !strings.HasSuffix(f.issuer, "/"):
		return usage("--issuer %q: add a trailing slash (%s/): the issuer is compared byte for byte", f.issuer, f.issuer)
	case f.cert != "" && f.kid != "":
		return usage("--cert and --kid conflict: sign with an enterprise certificate (--cert) or a registered key (--key with --kid), not both")
	case f.kid != "" && f.key == "":
		return usage("--kid needs --key (the registered key's private key)")
	case f.cert == "" && f.kid == "":
		return usage("give --cert (enterprise certificate) or --key with --kid (registered key)")
	}
	return nil
}

func (f *signingFlags) clientConfig(stderr io.Writer) (client.Config, error) {
	if err := f.check(); err != nil {
		return client.Config{}, err
	}
	s, err := f.signer(stderr)
	if err != nil {
		return client.Config{}, err
	}
	return client.Config{Issuer: f.issuer, TokenURL: f.tokenURL, ClientID: f.clientID, Signer: s}, nil
}

func tokenCmd() *cobra.Command {
	var sf signingFlags
	var scopes, resources []string
	var consumerOrg, pid string
	var decode, assertionOnly bool
	var dpopKey string
	cmd := &cobra.Command{
		Use: "token",
		Example: `  # an enterprise certificate (x5c), PEM chain and key
  portvakt token --issuer https://auth.example.no/ --client-id <client_id> --cert chain.pem --key key.pem --scope acme:api
  # a registered key (kid)
  portvakt token --issuer https://auth.example.no/ --client-id <client_id> --key key.pem --kid key-1 --scope acme:api --decode
  # PKCS#12, the password from the environment
  PORTVAKT_P12_PASSWORD=... portvakt token --issuer https://auth.example.no/ --client-id <client_id> --cert cert.p12 --scope acme:api
  # a DPoP-bound token (RFC 9449): proofs made with dpop.key, which the caller keeps to use the token
  openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt -out dpop.key
  portvakt token --issuer https://auth.example.no/ --client-id <client_id> --key key.pem --kid key-1 --scope acme:api --dpop-key dpop.key`,
		Short: "Fetch an access token as a client (sign a JWT grant and post it)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := sf.clientConfig(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			cfg.Scopes = splitList(scopes)
			cfg.Resources = resources
			cfg.ConsumerOrg = consumerOrg
			cfg.PID = pid
			if dpopKey != "" {
				if cfg.DPoP, err = readDPoPKey(dpopKey); err != nil {
					return usage("--dpop-key: %v", err)
				}
			}
			ts, err := client.NewTokenSource(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if assertionOnly {
				a, err := ts.Assertion(cmd.Context())
				if err != nil {
					return err
				}
				fmt.Fprintln(out, a)
				return nil
			}
			resp, err := ts.Fetch(cmd.Context())
			if err != nil {
				return err
			}
			enc := json.NewEncoder(out)
			enc.SetIndent("", "  ")
			if err := enc.Encode(resp.Raw); err != nil {
				return err
			}
			if decode {
				h, c, err := client.DecodeToken(resp.AccessToken)
				if err != nil {
					return err
				}
				fmt.Fprintln(out, "header:")
				_ = enc.Encode(h)
				fmt.Fprintln(out, "claims:")
				_ = enc.Encode(c)
			}
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().StringSliceVar(&scopes, "scope", nil, "scopes to ask for (space- or comma-separated, or repeat the flag)")
	cmd.Flags().StringArrayVar(&resources, "resource", nil, "RFC 8707 resource (the token's aud); repeat for several")
	cmd.Flags().StringVar(&consumerOrg, "consumer-org", "", "act for this organisation (a delegation to your org)")
	cmd.Flags().StringVar(&pid, "pid", "", "national identity number to put in the token")
	cmd.Flags().BoolVar(&decode, "decode", false, "also print the token's header and claims (not verified)")
	cmd.Flags().BoolVar(&assertionOnly, "assertion", false, "only print a signed grant (for curl), do not post it")
	cmd.Flags().StringVar(&dpopKey, "dpop-key", "", "PEM private key (EC P-256/P-384 or RSA) that makes DPoP proofs: the token is bound to it")
	return cmd
}

// readDPoPKey reads the PEM private key of --dpop-key.
func readDPoPKey(file string) (*client.DPoP, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	k, err := client.LoadPrivateKeyPEM(b)
	if err != nil {
		return nil, err
	}
	dk, err := dpop.NewKey(k)
	if err != nil {
		return nil, err
	}
	return &client.DPoP{Key: dk}, nil
}

func splitList(in []string) []string {
	var out []string
	for _, s := range in {
		out = append(out, strings.Fields(s)...)
	}
	return out
}
