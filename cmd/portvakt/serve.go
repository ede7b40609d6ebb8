package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/portvakt/portvakt/internal/devmode"
	"github.com/portvakt/portvakt/internal/store/sqlstore"
)

func serveCmd() *cobra.Command {
	var file string
	var dev bool
	cmd := &cobra.Command{
		Use: "serve",
		Example: `  portvakt serve --dev
  portvakt serve --config /etc/portvakt/portvakt.yaml
  PORTVAKT_DATABASE_DSN=postgres://portvakt@db/portvakt portvakt serve --config portvakt.yaml`,
		Short: "Run the authorization server",
		Long: `Run the authorization server.

With --dev it needs nothing: embedded SQLite, a generated dev PKI and signing
key in ./.portvakt-dev, demo orgs, scopes and clients, and it prints
ready-to-paste token commands.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(file, dev)
			if err != nil {
				return err
			}
			log := newLogger(cfg)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			a, err := build(ctx, cfg, log)
			if err != nil {
				return err
			}
			defer a.close()
			publicLn, opsLn, err := listen(cfg.Listen, cfg.Ops.Listen)
			if err != nil {
				return err
			}
			log.Info("portvakt serving", "issuer", cfg.Issuer, "listen", publicLn.Addr().String(),
				"ops", opsLn.Addr().String(), "database", cfg.Database.Driver, "version", version)
			if dev {
				fmt.Fprintf(cmd.OutOrStdout(), "\nWeb console (dev login, pick a demo organisation): %sconsole/\n", cfg.Issuer)
				fmt.Fprintln(cmd.OutOrStdout(), "\n"+devmode.Commands(os.Args[0], cfg.Issuer, cfg.DataDir))
			}
			return a.run(ctx, publicLn, opsLn)
		},
	}
	cmd.Flags().StringVar(&file, "config", "", "YAML config file (PORTVAKT_* environment variables override it)")
	cmd.Flags().BoolVar(&dev, "dev", false, "run with a generated dev PKI, demo records and embedded SQLite")
	return cmd
}

// listen opens the public and the ops listener. An address that cannot be
// bound is named by its listener and key: "address already in use" alone does
// not say which of the two ports is taken.
func listen(public, ops string) (publicLn, opsLn net.Listener, err error) {
	publicLn, err = net.Listen("tcp", public)
	if err != nil {
		return nil, nil, fmt.Errorf("public listener (listen: %s): %w", public, err)
	}
	opsLn, err = net.Listen("tcp", ops)
	if err != nil {
		publicLn.Close()
		return nil, nil, fmt.Errorf("ops listener (ops.listen: %s): %w", ops, err)
	}
	return publicLn, opsLn, nil
}

func migrateCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use: "migrate",
		Example: `  portvakt migrate status --config portvakt.yaml
  portvakt migrate up --config portvakt.yaml`,
		Short: "Run or inspect database migrations",
	}
	cmd.PersistentFlags().StringVar(&file, "config", "", "YAML config file")
	up := &cobra.Command{
		Use:     "up",
		Example: `  portvakt migrate up --config portvakt.yaml`,
		Short:   "Apply every pending migration (safe to run from several replicas at once)",
		Args:    cobra.NoArgs,
		RunE: withStore(&file, func(cmd *cobra.Command, db *sqlstore.Store) error {
			if err := db.Migrate(cmd.Context()); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "migrations applied")
			return nil
		}),
	}
	status := &cobra.Command{
		Use:     "status",
		Example: `  portvakt migrate status --config portvakt.yaml`,
		Short:   "Show which migrations are applied",
		Args:    cobra.NoArgs,
		RunE: withStore(&file, func(cmd *cobra.Command, db *sqlstore.Store) error {
			states, err := db.MigrationStatus(cmd.Context())
			if err != nil {
				return err
			}
			for _, s := range states {
				state := "pending"
				if s.Applied {
					state = "applied " + s.AppliedAt.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%5d  %-40s %s\n", s.Version, s.Source, state)
			}
			return nil
		}),
	}
	cmd.AddCommand(up, status)
	return cmd
}

// withStore runs fn with the store the config file names (no migration, no
// schema check: migrate is what brings the schema up to date).
func withStore(file *string, fn func(*cobra.Command, *sqlstore.Store) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		cfg, err := loadConfig(*file, false)
		if err != nil {
			return err
		}
		db, err := openStore(cmd.Context(), cfg, nil)
		if err != nil {
			return err
		}
		defer db.Close()
		return fn(cmd, db)
	}
}
