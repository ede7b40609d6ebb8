package main

import (
	"fmt"
	"net/url"
	"slices"

	"github.com/spf13/cobra"

	"github.com/portvakt/portvakt/internal/records"
)

// A member's roles go on a line of their own under its row.
var memberCols = []string{"subject", "org", "last_updated", "+roles"}

const scMembers = records.MembersWrite

func (a *adminCLI) membersCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "members",
		Short: "Who may act for your organisation in the web console, with which roles",
		Long: `A member is a person (their subject: their id at the console's identity
provider) who acts for your organisation in the web console, with roles: the
admin scopes they hold there. You give only roles your own token holds, and
your organisation keeps at least one member with portvakt:members.write once
it has one (so someone can always manage the members). Needs
portvakt:members.write.

Roles:` + wrapList(records.AdminScopes, "  ", tableWidth) + `
  (and portvakt:admin in the platform admin organisation).`,
		Example: `  portvakt admin members set --subject kari@example.no --role portvakt:members.write,portvakt:scopes.read $CREDS
  portvakt admin members list $CREDS
  portvakt admin members remove --subject kari@example.no $CREDS`,
	}
	cmd.AddCommand(a.memberListCmd(), a.memberGetCmd(), a.memberSetCmd(), a.memberRemoveCmd())
	return cmd
}

func memberPath(subject string) string { return "/members/" + url.PathEscape(subject) }

func (a *adminCLI) memberListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List your organisation's members and their roles",
		Example: `  portvakt admin members list $CREDS
  portvakt admin members list -o yaml $CREDS
  portvakt admin members list -q $CREDS    # only the subjects`,
		Args: cobra.NoArgs,
		RunE: a.run([]string{scMembers}, "GET", func([]string) string { return "/members" }, nil, memberCols...),
	}
}

func (a *adminCLI) memberGetCmd() *cobra.Command {
	var subject string
	cmd := &cobra.Command{
		Use:   "get --subject SUBJECT",
		Short: "Show one member and their roles",
		Example: `  portvakt admin members get --subject kari@example.no $CREDS
  portvakt admin members get --subject kari@example.no --json $CREDS`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "subject"); err != nil {
				return err
			}
			out, err := a.call(cmd, []string{scMembers}, "GET", memberPath(subject), nil)
			if err != nil {
				return err
			}
			return a.show(cmd, out, memberCols...)
		},
	}
	cmd.Flags().StringVar(&subject, "subject", "", "the person's id at the console's identity provider (required)")
	return cmd
}

func (a *adminCLI) memberSetCmd() *cobra.Command {
	var subject string
	var roles []string
	var noRoles bool
	cmd := &cobra.Command{
		Use:   "set --subject SUBJECT --role ROLE...",
		Short: "Make a person a member, or replace a member's roles",
		Long: `Make a person a member of your organisation with the roles given, or replace
the roles of a member: the roles given are all the member holds afterwards.
--no-roles keeps the person a member without roles. You give only roles your
client may hold itself: the command's token asks for portvakt:members.write
and each role given.`,
		Example: `  portvakt admin members set --subject kari@example.no --role portvakt:members.write --role portvakt:audit.read $CREDS
  portvakt admin members set --subject "auth0|5f7c8ec7" --role portvakt:scopes.read,portvakt:scopes.write $CREDS
  portvakt admin members set --subject ola@example.no --no-roles $CREDS`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "subject"); err != nil {
				return err
			}
			roles = nonNilStrings(splitList(roles))
			switch {
			case len(roles) == 0 && !noRoles:
				return usage("--role is required: the roles the member holds afterwards (or --no-roles for none; see '%s --help')", cmd.CommandPath())
			case len(roles) > 0 && noRoles:
				return usage("give --role or --no-roles, not both")
			}
			// The token holds the roles given too: nobody gives a role it
			// does not hold, and the server bounds the roles by the token.
			// What is no admin scope is the server's to refuse, by name.
			scopes := []string{scMembers}
			for _, r := range roles {
				if records.IsAdminScope(r) && !slices.Contains(scopes, r) {
					scopes = append(scopes, r)
				}
			}
			out, err := a.call(cmd, scopes, "PUT", memberPath(subject), map[string]any{"roles": roles})
			if err != nil {
				return err
			}
			return a.show(cmd, out, memberCols...)
		},
	}
	cmd.Flags().StringVar(&subject, "subject", "", "the person's id at the console's identity provider (required)")
	cmd.Flags().StringSliceVar(&roles, "role", nil, "a role (admin scope) the member holds (repeat, or comma-separated)")
	cmd.Flags().BoolVar(&noRoles, "no-roles", false, "the member holds no roles")
	return cmd
}

func (a *adminCLI) memberRemoveCmd() *cobra.Command {
	var subject string
	cmd := &cobra.Command{
		Use:   "remove --subject SUBJECT",
		Short: "Remove a member: the person no longer acts for your organisation",
		Example: `  portvakt admin members remove --subject ola@example.no $CREDS
  portvakt admin members list $CREDS`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "subject"); err != nil {
				return err
			}
			if _, err := a.call(cmd, []string{scMembers}, "DELETE", memberPath(subject), nil); err != nil {
				return err
			}
			if !a.quiet {
				fmt.Fprintf(cmd.OutOrStdout(), "removed: member %s\n", subject)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&subject, "subject", "", "the person's id at the console's identity provider (required)")
	return cmd
}
