package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit codes scripts can tell apart.
const (
	exitOK      = 0
	exitRefused = 1 // the server refused, or the work failed
	exitUsage   = 2 // the command line is wrong: nothing was sent
)

// run runs the command line args and returns its exit code. A usage error
// is printed once, with the command's usage line.
func run(args []string, stdout, stderr io.Writer) int {
	root := rootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteC()
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "portvakt:", err)
	var u usageError
	if errors.As(err, &u) {
		line := cmd.UseLine()
		if cmd.HasSubCommands() {
			line = cmd.CommandPath() + " COMMAND [flags]"
		}
		fmt.Fprintf(stderr, "usage: %s\n", line)
		return exitUsage
	}
	return exitRefused
}

// usageError is a wrong command line: an unknown flag or command, a wrong
// number of arguments, a missing or conflicting flag.
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

func usage(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "portvakt",
		Short:         "A Maskinporten-style machine-to-machine OAuth2 authorization server",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       buildStamp.String(),
	}
	root.SetVersionTemplate("portvakt {{.Version}}\n")
	root.SetUsageFunc(usageFunc)
	root.SetHelpFunc(helpFunc)
	root.AddCommand(serveCmd(), migrateCmd(), tokenCmd(), adminCmd(), keysCmd(), versionCmd())
	markUsageErrors(root)
	return root
}

// markUsageErrors makes every flag and argument error of cmd and its
// subcommands a usageError.
func markUsageErrors(cmd *cobra.Command) {
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	if args := cmd.Args; args != nil {
		cmd.Args = func(c *cobra.Command, a []string) error {
			if err := args(c, a); err != nil {
				return usageError{err}
			}
			return nil
		}
	}
	if cmd.HasSubCommands() && cmd.Run == nil && cmd.RunE == nil {
		// A group without a command of its own shows its help; an unknown
		// subcommand is a usage error, not the help with success.
		cmd.Args = cobra.ArbitraryArgs
		cmd.RunE = func(c *cobra.Command, a []string) error {
			if len(a) > 0 {
				return usage("unknown command %q for %q", a[0], c.CommandPath())
			}
			return c.Help()
		}
	}
	for _, c := range cmd.Commands() {
		markUsageErrors(c)
	}
}
