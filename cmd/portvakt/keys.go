package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/portvakt/portvakt/internal/config"
	"github.com/portvakt/portvakt/internal/signer"
	"github.com/portvakt/portvakt/internal/store"
	"github.com/portvakt/portvakt/internal/store/sqlstore"
)

// keysCmd shows and drives the signing keys kept in the database (with a
// KEK or an HSM). The running servers follow within rules.poll_interval.
func keysCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Show and rotate the signing keys kept in the database (needs the key-encryption key or the HSM)",
	}
	cmd.PersistentFlags().StringVar(&file, "config", "", "YAML config file")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the signing keys and their states",
		Args:  cobra.NoArgs,
		RunE: withKeys(&file, func(cmd *cobra.Command, k keysEnv) error {
			keys, err := k.db.ListSigningKeys(cmd.Context())
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "KID\tALG\tSTATE\tPUBLISHED\tACTIVATED\tRETIRED\tREMOVE AFTER")
			for _, s := range keys {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.KID, s.Alg, s.State, when(s.PublishedAt),
					when(s.ActivatedAt), when(s.RetiredAt), when(s.RemoveAfter))
			}
			return w.Flush()
		}),
	}
	var now bool
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Make the next key now (it signs after signing.rotation.pre_publish); --now: it signs at once and the current key is withdrawn at once",
		Long: "rotate publishes a new NEXT key now; the schedule activates it after signing.rotation.pre_publish.\n" +
			"rotate --now is for a compromised key: a new key signs at once, and the CURRENT key is retired and\n" +
			"leaves /jwk at once, so the tokens it signed stop verifying at any verifier that refreshes its JWKS.",
		Args: cobra.NoArgs,
		RunE: withKeys(&file, func(cmd *cobra.Command, k keysEnv) error {
			step := k.policy.Rotate
			if now {
				step = k.policy.RotateNow
			}
			c, err := step(k.keys, k.now, signer.Generator(k.cfg.Signing.Algorithm, k.vault))
			if err != nil {
				return err
			}
			if err := k.db.ChangeSigningKeys(cmd.Context(), c); err != nil {
				return err
			}
			for _, n := range c.Create {
				fmt.Fprintf(cmd.OutOrStdout(), "key %s is %s\n", n.KID, n.State)
			}
			for _, u := range c.Update {
				fmt.Fprintf(cmd.OutOrStdout(), "key %s is %s\n", u.Key.KID, u.Key.State)
			}
			return nil
		}),
	}
	rotate.Flags().BoolVar(&now, "now", false, "activate the new key at once and withdraw the current one (a compromised key)")
	retire := &cobra.Command{
		Use:   "retire KID",
		Short: "Withdraw a NEXT or RETIRED key from /jwk now (the CURRENT key: rotate --now)",
		Args:  cobra.ExactArgs(1),
		RunE: withKeys(&file, func(cmd *cobra.Command, k keysEnv) error {
			c, err := k.policy.Retire(k.keys, cmd.Flags().Arg(0), k.now)
			if err != nil {
				return err
			}
			if err := k.db.ChangeSigningKeys(cmd.Context(), c); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "key %s withdrawn\n", cmd.Flags().Arg(0))
			return nil
		}),
	}
	kek := &cobra.Command{
		Use:   "kek",
		Short: "Print a new key-encryption key (32 random bytes, base64) for PORTVAKT_SIGNING_KEK or signing.kek_file",
		Long: "kek prints a new random key-encryption key. Keep it as a secret (PORTVAKT_SIGNING_KEK from a\n" +
			"Secret, or a file of mode 0600 named by signing.kek_file); every replica needs the same one, and\n" +
			"without it the signing keys in the database cannot be opened.",
		Example: "  portvakt keys kek > /etc/portvakt/signing-kek && chmod 600 /etc/portvakt/signing-kek",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b := make([]byte, signer.KEKSize)
			if _, err := rand.Read(b); err != nil {
				return err
			}
			_, err := fmt.Fprintln(cmd.OutOrStdout(), base64.StdEncoding.EncodeToString(b))
			return err
		},
	}
	cmd.AddCommand(list, rotate, retire, kek)
	return cmd
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// keysEnv is what a keys subcommand works with.
type keysEnv struct {
	cfg    *config.Config
	db     *sqlstore.Store
	vault  signer.Vault
	policy signer.Policy
	keys   []store.SigningKey
	now    time.Time
}

// withKeys opens the store, checks its schema, and checks that the KEK
// opens the CURRENT key, so that a key sealed under a wrong KEK never
// reaches the store.
func withKeys(file *string, fn func(*cobra.Command, keysEnv) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		cfg, err := loadConfig(*file, false)
		if err != nil {
			return err
		}
		vault, _, token, err := keyVault(cfg)
		if err != nil {
			return err
		}
		if vault == nil {
			return fmt.Errorf("no key-encryption key: set %s or signing.kek_file, or signing.pkcs11 (without one the signing key is signing.key_file and does not rotate)", signer.KEKEnv)
		}
		if token != nil {
			defer token.Close()
		}
		ctx := cmd.Context()
		db, err := openStore(ctx, cfg, nil)
		if err != nil {
			return err
		}
		defer db.Close()
		if err := db.SchemaCheck(ctx); err != nil {
			return err
		}
		keys, err := db.ListSigningKeys(ctx)
		if err != nil {
			return err
		}
		now := time.Now()
		if len(keys) > 0 {
			if _, err := signer.SetFromStore(keys, vault, now); err != nil && !errors.Is(err, signer.ErrNoCurrentKey) {
				return err
			}
		}
		return fn(cmd, keysEnv{cfg: cfg, db: db, vault: vault, policy: rotationPolicy(cfg), keys: keys, now: now})
	}
}
