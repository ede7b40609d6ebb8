package main

import (
	"net/url"
	"strings"

	"github.com/spf13/cobra"
)

// Access rows as each side reads them: a provider's lists name the
// consumer (the owner is the provider itself), a consumer's name the owner.
// The reason goes on a line of its own under its row.
var (
	allowListCols = []string{"scope", "consumer_orgno", "state", "last_updated", "+reason"}
	myAccessCols  = []string{"scope", "owner_orgno", "state", "last_updated", "+reason"}
)

func (a *adminCLI) accessCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "access",
		Short: "Access to scopes: allow-lists, inboxes and requests",
		Long: `A consumer asks a provider for a public scope (request), and may take the
request back while it is open (withdraw). The provider sees the open requests
in its inbox and answers with approve or deny, each with an optional reason
the consumer reads. grant and revoke set a row without a request. Only an
APPROVED row lets the consumer's clients get the scope.`,
		Example: `  # the consumer asks, the provider answers
  portvakt admin access request acme:reports --reason "monthly reporting" $CREDS
  portvakt admin access inbox $CREDS
  portvakt admin access approve 310000035 --scope acme:reports $CREDS`,
	}
	cmd.AddCommand(a.accessRequestCmd(), a.accessWithdrawCmd(), a.accessInboxCmd(),
		a.accessDecideCmd(decideOpts{use: "approve ORG", method: "PUT",
			short: "Approve ORG's request for a scope (the row becomes APPROVED)",
			example: `  portvakt admin access approve 310000035 --scope acme:reports $CREDS
  portvakt admin access approve 310000035 --scope acme:reports --reason "contract 2026-14" $CREDS`}),
		a.accessDecideCmd(decideOpts{use: "deny ORG", method: "DELETE",
			short:   "Deny ORG's request for a scope, or take its access away (DENIED)",
			example: `  portvakt admin access deny 310000035 --scope acme:reports --reason "no agreement yet" $CREDS`}),
		a.accessDecideCmd(decideOpts{use: "grant SCOPE ORG", method: "PUT", positionalScope: true,
			short:   "Let ORG get SCOPE (as approve, with the scope first)",
			example: `  portvakt admin access grant acme:api 310000035 $CREDS`}),
		a.accessDecideCmd(decideOpts{use: "revoke SCOPE ORG", method: "DELETE", positionalScope: true,
			short:   "Remove ORG's access to SCOPE (as deny; the row stays, DENIED)",
			example: `  portvakt admin access revoke acme:api 310000035 --reason "contract ended" $CREDS`}),
		a.accessListCmd(), a.accessMineCmd())
	return cmd
}

// requireFlags refuses a command whose required flags are missing, naming
// each, before any token is fetched.
func requireFlags(cmd *cobra.Command, names ...string) error {
	var missing []string
	for _, n := range names {
		if f := cmd.Flags().Lookup(n); f == nil || f.Value.String() == "" {
			missing = append(missing, "--"+n)
		}
	}
	if len(missing) > 0 {
		return usage("%s is required (see '%s --help')", strings.Join(missing, " and "), cmd.CommandPath())
	}
	return nil
}

// stateQuery sets ?state= to the states given (repeated or comma-separated,
// in any case).
func stateQuery(q url.Values, states []string) {
	var up []string
	for _, s := range splitList(states) {
		up = append(up, strings.ToUpper(strings.TrimSpace(s)))
	}
	if len(up) > 0 {
		q.Set("state", strings.Join(up, ","))
	}
}

func withQuery(path string, q url.Values) string {
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

func (a *adminCLI) accessRequestCmd() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "request SCOPE",
		Short: "Ask SCOPE's owner for access (the row becomes REQUESTED)",
		Long: `Ask for a public, active scope that is not accessible for all ('portvakt admin
scopes all' lists them). The owner sees the request in its inbox with the
reason, and approves or denies it. A denied or withdrawn request may be made
again. Needs portvakt:access.request.`,
		Example: `  portvakt admin access request acme:reports --reason "monthly reporting to the board" $CREDS
  portvakt admin access mine --state REQUESTED,DENIED $CREDS    # what became of it`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out, err := a.call(cmd, []string{scAccessReq}, "POST", "/scopes/access/requests",
				map[string]string{"scope": args[0], "reason": reason})
			if err != nil {
				return err
			}
			return a.show(cmd, out, myAccessCols...)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why your organisation needs the scope (the owner reads it)")
	return cmd
}

func (a *adminCLI) accessWithdrawCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "withdraw SCOPE",
		Short: "Take back your open request for SCOPE (the row becomes WITHDRAWN)",
		Long: `Only an open (REQUESTED) request can be withdrawn; on a row in any other
state the server answers 409 and changes nothing. Needs portvakt:access.request.`,
		Example: `  portvakt admin access withdraw acme:reports $CREDS`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "/scopes/access/requests" + scopeQuery(args[0])
			if _, err := a.call(cmd, []string{scAccessReq}, "DELETE", path, nil); err != nil {
				return err
			}
			out, err := a.call(cmd, []string{scAccessReq}, "GET", path, nil)
			if err != nil {
				return err
			}
			return a.show(cmd, out, myAccessCols...)
		},
	}
}

func (a *adminCLI) accessInboxCmd() *cobra.Command {
	var scope string
	var states []string
	cmd := &cobra.Command{
		Use:   "inbox",
		Short: "Requests for your organisation's scopes that wait for an answer",
		Long: `The access rows of every scope your organisation owns (or of one, with
--scope) in the states asked for: by default the open requests (REQUESTED).
Answer each with 'portvakt admin access approve|deny ORG --scope SCOPE'.`,
		Example: `  portvakt admin access inbox $CREDS
  portvakt admin access inbox --scope acme:reports $CREDS
  portvakt admin access inbox --state DENIED,WITHDRAWN --json $CREDS`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			if scope != "" {
				q.Set("scope", scope)
			}
			stateQuery(q, states)
			out, err := a.call(cmd, []string{scScopesRead}, "GET", withQuery("/scopes/access", q), nil)
			if err != nil {
				return err
			}
			return a.show(cmd, out, allowListCols...)
		},
	}
	cmd.Flags().StringVar(&scope, "scope", "", "only requests for this scope")
	cmd.Flags().StringSliceVar(&states, "state", []string{"REQUESTED"}, "states to list (repeat, or comma-separated): REQUESTED, APPROVED, DENIED, WITHDRAWN")
	return cmd
}

// decideOpts describes one of the provider's answers: approve and grant
// PUT the row (APPROVED), deny and revoke DELETE it (DENIED). approve and
// deny name the organisation first, as the inbox lists it, and the scope
// with --scope; grant and revoke take both as arguments.
type decideOpts struct {
	use, method, short, example string
	positionalScope             bool
}

func (a *adminCLI) accessDecideCmd(o decideOpts) *cobra.Command {
	var scope, reason string
	cmd := &cobra.Command{
		Use:   o.use,
		Short: o.short,
		Long: o.short + `.
Either works with or without an open request: approving gives access, denying
takes it away. The reason, when given, is kept on the row and shown to ORG.
Needs portvakt:scopes.write.`,
		Example: o.example,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			org := args[0]
			if o.positionalScope {
				scope, org = args[0], args[1]
			} else if err := requireFlags(cmd, "scope"); err != nil {
				return err
			}
			var body any
			if reason != "" {
				body = map[string]string{"reason": reason}
			}
			path := "/scopes/access/" + url.PathEscape(org) + scopeQuery(scope)
			out, err := a.call(cmd, []string{scScopesWrite}, o.method, path, body)
			if err != nil {
				return err
			}
			if len(out) == 0 {
				// DELETE answers 204: read the row as it was left.
				if out, err = a.call(cmd, []string{scScopesWrite}, "GET", path, nil); err != nil {
					return err
				}
			}
			return a.show(cmd, out, allowListCols...)
		},
	}
	if o.positionalScope {
		cmd.Args = cobra.ExactArgs(2)
	} else {
		cmd.Flags().StringVar(&scope, "scope", "", "the scope (required)")
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, for ORG to read (optional)")
	return cmd
}

func (a *adminCLI) accessListCmd() *cobra.Command {
	var inactive bool
	var states []string
	cmd := &cobra.Command{
		Use:   "list SCOPE",
		Short: "Who may get SCOPE (its allow-list)",
		Long: `The organisations with access to SCOPE (APPROVED); --inactive adds the rows in
every other state, --state lists only the states given.`,
		Example: `  portvakt admin access list acme:api $CREDS
  portvakt admin access list acme:api --state DENIED $CREDS`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{"scope": {args[0]}}
			if inactive {
				q.Set("inactive", "true")
			}
			stateQuery(q, states)
			out, err := a.call(cmd, []string{scScopesRead}, "GET", withQuery("/scopes/access", q), nil)
			if err != nil {
				return err
			}
			return a.show(cmd, out, allowListCols...)
		},
	}
	cmd.Flags().BoolVar(&inactive, "inactive", false, "include the rows that are not APPROVED")
	cmd.Flags().StringSliceVar(&states, "state", nil, "only these states (repeat, or comma-separated)")
	return cmd
}

func (a *adminCLI) accessMineCmd() *cobra.Command {
	var inactive bool
	var states []string
	cmd := &cobra.Command{
		Use:   "mine",
		Short: "Your organisation's access (with --state: its requests too)",
		Example: `  portvakt admin access mine $CREDS
  portvakt admin access mine --state REQUESTED,DENIED $CREDS`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			if inactive {
				q.Set("inactive", "true")
			}
			stateQuery(q, states)
			out, err := a.call(cmd, []string{scScopesRead}, "GET", withQuery("/scopes/access/all", q), nil)
			if err != nil {
				return err
			}
			return a.show(cmd, out, myAccessCols...)
		},
	}
	cmd.Flags().BoolVar(&inactive, "inactive", false, "include the rows that are not APPROVED")
	cmd.Flags().StringSliceVar(&states, "state", nil, "only these states (repeat, or comma-separated): REQUESTED, APPROVED, DENIED, WITHDRAWN")
	return cmd
}
