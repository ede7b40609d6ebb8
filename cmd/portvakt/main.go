package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := rootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "portvakt:", err)
		os.Exit(1)
	}
}

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "portvakt",
		Short:         "A Maskinporten-style machine-to-machine OAuth2 authorization server",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       buildStamp.String(),
	}
	root.SetVersionTemplate("portvakt {{.Version}}\n")
	root.AddCommand(serveCmd(), migrateCmd(), tokenCmd(), adminCmd(), versionCmd())
	return root
}
