package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/portvakt/portvakt/internal/store"
)

// A webhook's events, and an attempt's error, go on a line of their own
// under its row.
var (
	webhookCols  = []string{"id", "active", "url", "+events"}
	deliveryCols = []string{"time", "event", "attempt", "status", "state", "+error"}
)

func (a *adminCLI) webhooksCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "webhooks",
		Short: "Where your organisation's events are pushed",
		Long: `A webhook receives every event that concerns your organisation (or those its
events list) as a Security Event Token (RFC 8417) in a POST (RFC 8935), signed
with the server's key: verify it with the server's /jwk. Its URL is https, or
http on a loopback address for a receiver on the same machine. An organisation
has at most 10 active webhooks. Needs portvakt:webhooks.write.

Events:` + wrapList(store.EventNames, "  ", tableWidth) + `.`,
		Example: `  portvakt admin webhooks create --url https://hooks.example.no/portvakt $CREDS
  portvakt admin webhooks list $CREDS
  portvakt admin webhooks get <id> $CREDS    # with the latest delivery attempts`,
	}
	cmd.AddCommand(a.webhookCreateCmd(), a.webhookListCmd(), a.webhookGetCmd(), a.webhookUpdateCmd(), a.webhookDeleteCmd())
	return cmd
}

func webhookPath(id string) string { return "/webhooks/" + url.PathEscape(id) }

const eventFlagHelp = "an event to receive (repeat, or comma-separated; none = every event)"

func (a *adminCLI) webhookCreateCmd() *cobra.Command {
	var hookURL string
	var events []string
	var inactive bool
	cmd := &cobra.Command{
		Use:   "create --url URL",
		Short: "Register a webhook for your organisation",
		Example: `  portvakt admin webhooks create --url https://hooks.example.no/portvakt $CREDS
  portvakt admin webhooks create --url http://127.0.0.1:9000/events --event access.requested,access.withdrawn $CREDS
  portvakt admin webhooks create --url https://hooks.example.no/later --inactive $CREDS`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "url"); err != nil {
				return err
			}
			body := map[string]any{"url": hookURL, "events": nonNilStrings(events), "active": !inactive}
			out, err := a.call(cmd, []string{scWebhooks}, "POST", "/webhooks", body)
			if err != nil {
				return err
			}
			return a.showWebhooks(cmd, out)
		},
	}
	cmd.Flags().StringVar(&hookURL, "url", "", "where to push the events: https, or http on loopback (required)")
	cmd.Flags().StringSliceVar(&events, "event", nil, eventFlagHelp)
	cmd.Flags().BoolVar(&inactive, "inactive", false, "register it deactivated (nothing is pushed until it is activated)")
	return cmd
}

func (a *adminCLI) webhookListCmd() *cobra.Command {
	var inactive bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List your organisation's webhooks",
		Example: `  portvakt admin webhooks list $CREDS
  portvakt admin webhooks list --inactive --json $CREDS`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := a.call(cmd, []string{scWebhooks}, "GET", withInactive("/webhooks", inactive), nil)
			if err != nil {
				return err
			}
			return a.showWebhooks(cmd, out)
		},
	}
	cmd.Flags().BoolVar(&inactive, "inactive", false, "include deactivated webhooks")
	return cmd
}

func (a *adminCLI) webhookGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get ID",
		Short: "Show a webhook and its latest delivery attempts",
		Long: `Show a webhook and its latest delivery attempts, newest first: the event, the
receiver's HTTP status, what went wrong, and the delivery's state after the
attempt (pending: it is tried again, with a growing pause, for up to 24 hours;
delivered; failed: given up).`,
		Example: `  portvakt admin webhooks get 0d1f6c2e-6a43-4d5e-9f7e-2b8f51c2a9f0 $CREDS
  portvakt admin webhooks get 0d1f6c2e-6a43-4d5e-9f7e-2b8f51c2a9f0 --json $CREDS   # all fields`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out, err := a.call(cmd, []string{scWebhooks}, "GET", webhookPath(args[0]), nil)
			if err != nil {
				return err
			}
			if a.raw() {
				return a.show(cmd, out)
			}
			var view struct {
				Deliveries []map[string]any `json:"deliveries"`
			}
			if err := json.Unmarshal(out, &view); err != nil {
				return err
			}
			if err := a.showWebhooks(cmd, out); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if len(view.Deliveries) == 0 {
				fmt.Fprintln(w, "\nno delivery attempts yet")
				return nil
			}
			for _, d := range view.Deliveries {
				if d["status"] == float64(0) {
					delete(d, "status") // no answer came back
				}
			}
			rows, err := json.Marshal(view.Deliveries)
			if err != nil {
				return err
			}
			fmt.Fprintln(w, "\nlatest delivery attempts, newest first:")
			return a.show(cmd, rows, deliveryCols...)
		},
	}
}

func (a *adminCLI) webhookUpdateCmd() *cobra.Command {
	var hookURL string
	var events []string
	var allEvents, activate, deactivate bool
	cmd := &cobra.Command{
		Use:   "update ID",
		Short: "Change a webhook: the flags given replace those fields",
		Example: `  portvakt admin webhooks update <id> --url https://hooks.example.no/v2 $CREDS
  portvakt admin webhooks update <id> --event access.requested --event access.withdrawn $CREDS
  portvakt admin webhooks update <id> --all-events --activate $CREDS`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			changes := 0
			for _, f := range []string{"url", "event", "all-events", "activate", "deactivate"} {
				if cmd.Flags().Changed(f) {
					changes++
				}
			}
			switch {
			case changes == 0:
				return usage("nothing to change: give --url, --event, --all-events, --activate or --deactivate")
			case activate && deactivate:
				return usage("give --activate or --deactivate, not both")
			case allEvents && cmd.Flags().Changed("event"):
				return usage("give --event or --all-events, not both")
			}
			path := webhookPath(args[0])
			m, err := a.record(cmd, []string{scWebhooks}, path)
			if err != nil {
				return err
			}
			delete(m, "deliveries")
			if cmd.Flags().Changed("url") {
				m["url"] = hookURL
			}
			if cmd.Flags().Changed("event") {
				m["events"] = nonNilStrings(events)
			}
			if allEvents {
				m["events"] = []string{}
			}
			if activate || deactivate {
				m["active"] = activate
			}
			out, err := a.call(cmd, []string{scWebhooks}, "PUT", path, m)
			if err != nil {
				return err
			}
			return a.showWebhooks(cmd, out)
		},
	}
	cmd.Flags().StringVar(&hookURL, "url", "", "where to push the events")
	cmd.Flags().StringSliceVar(&events, "event", nil, "an event to receive, replacing the list (repeat, or comma-separated)")
	cmd.Flags().BoolVar(&allEvents, "all-events", false, "receive every event (empties the list)")
	cmd.Flags().BoolVar(&activate, "activate", false, "push events to it again")
	cmd.Flags().BoolVar(&deactivate, "deactivate", false, "stop pushing events to it (as delete)")
	return cmd
}

func (a *adminCLI) webhookDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Deactivate a webhook (update --activate brings it back)",
		Example: `  portvakt admin webhooks delete 0d1f6c2e-6a43-4d5e-9f7e-2b8f51c2a9f0 $CREDS
  portvakt admin webhooks list --inactive $CREDS`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := a.call(cmd, []string{scWebhooks}, "DELETE", webhookPath(args[0]), nil); err != nil {
				return err
			}
			// The webhook as the deactivation left it.
			out, err := a.call(cmd, []string{scWebhooks}, "GET", webhookPath(args[0]), nil)
			if err != nil {
				return err
			}
			return a.showWebhooks(cmd, out)
		},
	}
}

// showWebhooks prints one webhook or a list; a webhook that lists no events
// receives every one.
func (a *adminCLI) showWebhooks(cmd *cobra.Command, body []byte) error {
	if a.raw() {
		return a.show(cmd, body)
	}
	rows, err := recordsOf(body)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if ev, _ := r["events"].([]any); len(ev) == 0 {
			r["events"] = "all"
		}
	}
	b, err := json.Marshal(rows)
	if err != nil {
		return err
	}
	return a.show(cmd, b, webhookCols...)
}

// wrapList writes items comma-separated on lines of at most width columns,
// each starting with a newline and indent.
func wrapList(items []string, indent string, width int) string {
	var b strings.Builder
	line := ""
	for i, it := range items {
		if i < len(items)-1 {
			it += ","
		}
		if line != "" && len(line)+1+len(it) > width {
			b.WriteString("\n" + line)
			line = ""
		}
		if line == "" {
			line = indent + it
		} else {
			line += " " + it
		}
	}
	if line != "" {
		b.WriteString("\n" + line)
	}
	return b.String()
}
