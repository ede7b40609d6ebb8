package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/portvakt/portvakt/internal/pgtest"
	"github.com/portvakt/portvakt/internal/testpki"
)

// accessStory is the orgs of an access-request story and their admin
// signing flags.
type accessStory struct {
	*cliEnv
	provider, consumer, other string
	prov, cons, oth           []string
}

// newAccessStory onboards a provider owning the prefix acme, a consumer
// that asks for access and registers webhooks, and another org that owns
// the prefix other.
func newAccessStory(t *testing.T, e *cliEnv) *accessStory {
	t.Helper()
	s := &accessStory{cliEnv: e, provider: org(2), consumer: org(3), other: org(4)}
	admin := e.certCreds(org(1), cliPlatformClient)
	e.mustCLI(with(admin, "admin", "prefixes", "set", "acme", s.provider)...)
	e.mustCLI(with(admin, "admin", "prefixes", "set", "other", s.other)...)
	onboard := func(o, scopes string) []string {
		id := e.clientID(e.mustCLI(with(admin, "admin", "clients", "create", "--json", "--org", o, "--name", "admin",
			"--description", "self-service", "--scope", scopes)...))
		return e.certCreds(o, id)
	}
	s.prov = onboard(s.provider, "portvakt:scopes.read,portvakt:scopes.write")
	s.cons = onboard(s.consumer, "portvakt:access.request,portvakt:scopes.read,portvakt:clients.write,portvakt:webhooks.write")
	s.oth = onboard(s.other, "portvakt:scopes.read,portvakt:scopes.write,portvakt:access.request,portvakt:webhooks.write")
	return s
}

func with(creds []string, args ...string) []string {
	return append(append([]string{}, args...), creds...)
}

// wantLines checks that out has every want, and that each line fits 80
// columns.
func wantLines(t *testing.T, what, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("%s: no %q in\n%s", what, w, out)
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if n := utf8.RuneCountInString(l); n > tableWidth {
			t.Errorf("%s: a line of %d columns:\n%s", what, n, l)
		}
	}
}

func wantErr(t *testing.T, what string, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error", what)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: %q lacks %q", what, err, w)
		}
	}
}

// TestAdminAccessRequests is the access-request story from the shell, on
// SQLite and PostgreSQL: the consumer asks, the provider reads its inbox
// and denies with a reason, the consumer asks again, the provider approves,
// the consumer's token works; an open request is withdrawn.
func TestAdminAccessRequests(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			dsn := ""
			if backend == "postgres" {
				dsn = pgtest.FreshSchema(t, pgtest.DSN(t))
			}
			accessRequestStory(t, newAccessStory(t, startServerOn(t, dsn)))
		})
	}
}

func accessRequestStory(t *testing.T, s *accessStory) {
	prov, cons, oth := s.prov, s.cons, s.oth
	s.mustCLI(with(prov, "admin", "scopes", "create", "acme:reports", "--description", "Monthly reports")...)
	s.mustCLI(with(prov, "admin", "scopes", "create", "acme:extra", "--description", "Extras")...)

	// The consumer asks, with a reason longer than a table shows.
	long := "monthly reporting to the board " + strings.Repeat("and to the auditors ", 10) + "END"
	out := s.mustCLI(with(cons, "admin", "access", "request", "acme:reports", "--reason", long)...)
	wantLines(t, "request", out, "acme:reports", s.provider, "REQUESTED", "monthly reporting", "...")
	_, err := s.cli(with(cons, "admin", "access", "request", "acme:reports")...)
	wantErr(t, "request twice", err, "409")

	// The provider sees it in its inbox, with the whole reason in JSON;
	// the other org's inbox does not show it.
	out = s.mustCLI(with(prov, "admin", "access", "inbox")...)
	wantLines(t, "inbox", out, "CONSUMER", "acme:reports", s.consumer, "REQUESTED", "monthly reporting")
	var rows []struct{ Scope, Consumer_orgno, State, Reason string }
	out = s.mustCLI(with(prov, "admin", "access", "inbox", "--scope", "acme:reports", "--json")...)
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 1 || rows[0].Reason != long || rows[0].Consumer_orgno != s.consumer {
		t.Fatalf("inbox --json: %v %s", err, out)
	}
	if out := s.mustCLI(with(oth, "admin", "access", "inbox")...); strings.Contains(out, s.consumer) {
		t.Errorf("another org's inbox shows the request:\n%s", out)
	}
	_, err = s.cli(with(oth, "admin", "access", "deny", s.consumer, "--scope", "acme:reports")...)
	wantErr(t, "another org denies", err, "404")

	// Denied, with a reason the consumer reads.
	out = s.mustCLI(with(prov, "admin", "access", "deny", s.consumer, "--scope", "acme:reports", "--reason", "needs a data processing agreement")...)
	wantLines(t, "deny", out, "DENIED", s.consumer, "acme:reports", "needs a data processing agreement")
	out = s.mustCLI(with(cons, "admin", "access", "mine", "--state", "denied,REQUESTED")...)
	wantLines(t, "mine after deny", out, "OWNER", "acme:reports", "DENIED", "needs a data processing agreement")
	if out := s.mustCLI(with(prov, "admin", "access", "inbox")...); strings.Contains(out, s.consumer) {
		t.Errorf("inbox after deny:\n%s", out)
	}
	// Only APPROVED lets the consumer's clients list the scope.
	_, err = s.cli(with(cons, "admin", "clients", "create", "--description", "reports", "--scope", "acme:reports")...)
	wantErr(t, "client before approval", err, "400", "acme:reports")

	// Asked again, approved.
	s.mustCLI(with(cons, "admin", "access", "request", "acme:reports", "--reason", "DPA signed")...)
	out = s.mustCLI(with(prov, "admin", "access", "approve", s.consumer, "--scope", "acme:reports", "--reason", "contract 14")...)
	wantLines(t, "approve", out, "APPROVED", s.consumer, "contract 14")
	if out := s.mustCLI(with(prov, "admin", "access", "list", "acme:reports")...); !strings.Contains(out, s.consumer) {
		t.Errorf("allow-list after approve:\n%s", out)
	}
	id := s.clientID(s.mustCLI(with(cons, "admin", "clients", "create", "--json", "--name", "reports",
		"--description", "fetches the reports", "--scope", "acme:reports")...))
	tok := with(s.certCreds(s.consumer, id), "token", "--scope", "acme:reports")
	if out := s.mustCLI(tok...); !strings.Contains(out, "access_token") {
		t.Fatalf("token after approval: %s", out)
	}

	// An approved row has no open request to withdraw: 409, unchanged.
	_, err = s.cli(with(cons, "admin", "access", "withdraw", "acme:reports")...)
	wantErr(t, "withdraw approved", err, "409")
	if out := s.mustCLI(tok...); !strings.Contains(out, "access_token") {
		t.Fatalf("token after a refused withdraw: %s", out)
	}
	// An open request is withdrawn; the inbox shows it only when asked.
	s.mustCLI(with(cons, "admin", "access", "request", "acme:extra")...)
	if out := s.mustCLI(with(prov, "admin", "access", "inbox")...); !strings.Contains(out, "acme:extra") {
		t.Errorf("inbox before withdraw:\n%s", out)
	}
	wantLines(t, "withdraw", s.mustCLI(with(cons, "admin", "access", "withdraw", "acme:extra")...), "acme:extra", "WITHDRAWN")
	if out := s.mustCLI(with(prov, "admin", "access", "inbox")...); strings.Contains(out, "acme:extra") {
		t.Errorf("inbox after withdraw:\n%s", out)
	}
	out = s.mustCLI(with(prov, "admin", "access", "inbox", "--state", "WITHDRAWN")...)
	wantLines(t, "inbox --state WITHDRAWN", out, "acme:extra", "WITHDRAWN", s.consumer)
}

// TestAdminAccessFlags: required flags and bad values are refused before
// any request, each naming its flag.
func TestAdminAccessFlags(t *testing.T) {
	// No server: a request would fail with a connection error instead.
	creds := []string{"--issuer", "http://127.0.0.1:1/", "--client-id", "x", "--key", "k", "--kid", "k"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"fail/approve-without-scope", []string{"access", "approve", "310000035"}, "--scope is required"},
		{"fail/deny-without-scope", []string{"access", "deny", "310000035", "--reason", "no"}, "--scope is required"},
		{"fail/approve-empty-scope", []string{"access", "approve", "310000035", "--scope", ""}, "--scope is required"},
		{"fail/approve-without-org", []string{"access", "approve", "--scope", "acme:api"}, "accepts 1 arg"},
		{"fail/request-without-scope", []string{"access", "request"}, "accepts 1 arg"},
		{"fail/webhook-without-url", []string{"webhooks", "create", "--event", "access.requested"}, "--url is required"},
		{"fail/webhook-update-nothing", []string{"webhooks", "update", "id-1"}, "nothing to change"},
		{"fail/webhook-update-both", []string{"webhooks", "update", "id-1", "--activate", "--deactivate"}, "not both"},
		{"fail/webhook-events-and-all", []string{"webhooks", "update", "id-1", "--event", "access.denied", "--all-events"}, "not both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := adminCmd()
			var out bytes.Buffer
			cmd.SetOut(&out)
			cmd.SetErr(&out)
			cmd.SetArgs(append(tc.args, creds...))
			err := cmd.ExecuteContext(t.Context())
			wantErr(t, tc.name, err, tc.want)
		})
	}
}

// TestAdminWebhooks registers, lists, reads, changes and deactivates
// webhooks from the shell; another org never sees them.
func TestAdminWebhooks(t *testing.T) {
	s := newAccessStory(t, startServer(t))
	cons, oth := s.cons, s.oth
	var hook struct {
		ID     string   `json:"id"`
		Org    string   `json:"org"`
		URL    string   `json:"url"`
		Events []string `json:"events"`
		Active bool     `json:"active"`
	}
	out := s.mustCLI(with(cons, "admin", "webhooks", "create", "--json", "--url", "http://127.0.0.1:9/portvakt",
		"--event", "access.approved,access.denied", "--event", "access.withdrawn")...)
	if err := json.Unmarshal([]byte(out), &hook); err != nil || hook.ID == "" || hook.Org != s.consumer || !hook.Active ||
		strings.Join(hook.Events, " ") != "access.approved access.denied access.withdrawn" {
		t.Fatalf("create: %v %s", err, out)
	}
	out = s.mustCLI(with(cons, "admin", "webhooks", "create", "--url", "https://hooks.example.no/"+strings.Repeat("long/", 20))...)
	wantLines(t, "create, every event", out, "events: all", "https://hooks.example.no/long", "...", "true")
	_, err := s.cli(with(cons, "admin", "webhooks", "create", "--url", "http://hooks.example.no/plain")...)
	wantErr(t, "http off loopback", err, "400", "url")
	_, err = s.cli(with(cons, "admin", "webhooks", "create", "--url", "https://hooks.example.no/", "--event", "nope.never")...)
	wantErr(t, "unknown event", err, "400", "events")

	out = s.mustCLI(with(cons, "admin", "webhooks", "list")...)
	wantLines(t, "list", out, "ID", "URL", "events: access.approved, access.denied", hook.ID, "http://127.0.0.1:9/portvakt", "access.approved", "events: all")
	out = s.mustCLI(with(cons, "admin", "webhooks", "get", hook.ID)...)
	wantLines(t, "get", out, hook.ID, "http://127.0.0.1:9/portvakt", "deliver")
	if out := s.mustCLI(with(cons, "admin", "webhooks", "get", "--json", hook.ID)...); !strings.Contains(out, `"deliveries"`) {
		t.Errorf("get --json: %s", out)
	}

	// update replaces only the fields given.
	out = s.mustCLI(with(cons, "admin", "webhooks", "update", hook.ID, "--json", "--url", "http://127.0.0.1:9/v2")...)
	if err := json.Unmarshal([]byte(out), &hook); err != nil || hook.URL != "http://127.0.0.1:9/v2" || len(hook.Events) != 3 || !hook.Active {
		t.Fatalf("update --url: %v %s", err, out)
	}
	out = s.mustCLI(with(cons, "admin", "webhooks", "update", hook.ID, "--json", "--all-events")...)
	if err := json.Unmarshal([]byte(out), &hook); err != nil || len(hook.Events) != 0 || hook.URL != "http://127.0.0.1:9/v2" {
		t.Fatalf("update --all-events: %v %s", err, out)
	}
	out = s.mustCLI(with(cons, "admin", "webhooks", "update", hook.ID, "--json", "--event", "access.requested", "--deactivate")...)
	if err := json.Unmarshal([]byte(out), &hook); err != nil || strings.Join(hook.Events, ",") != "access.requested" || hook.Active {
		t.Fatalf("update --event --deactivate: %v %s", err, out)
	}
	if out := s.mustCLI(with(cons, "admin", "webhooks", "list")...); strings.Contains(out, hook.ID) {
		t.Errorf("list shows a deactivated webhook:\n%s", out)
	}
	s.mustCLI(with(cons, "admin", "webhooks", "update", hook.ID, "--activate")...)

	// Another org sees none of it.
	if out := s.mustCLI(with(oth, "admin", "webhooks", "list", "--inactive")...); strings.Contains(out, hook.ID) {
		t.Errorf("another org lists the webhook:\n%s", out)
	}
	for _, args := range [][]string{{"get", hook.ID}, {"update", hook.ID, "--activate"}, {"delete", hook.ID}} {
		_, err := s.cli(with(oth, append([]string{"admin", "webhooks"}, args...)...)...)
		wantErr(t, "another org: "+args[0], err, "404")
	}

	// delete deactivates and prints the webhook as it left it; --inactive
	// shows it again.
	if out := s.mustCLI(with(cons, "admin", "webhooks", "delete", hook.ID)...); !strings.Contains(out, hook.ID) || !strings.Contains(out, "false") {
		t.Errorf("delete: %q", out)
	}
	if out := s.mustCLI(with(cons, "admin", "webhooks", "list")...); strings.Contains(out, hook.ID) {
		t.Errorf("list after delete:\n%s", out)
	}
	out = s.mustCLI(with(cons, "admin", "webhooks", "list", "--inactive")...)
	wantLines(t, "list --inactive", out, hook.ID, "false")
}

// TestAdminWebhookDeliveries: `webhooks get` prints the latest delivery
// attempts as a table that fits 80 columns, with no status when no answer
// came back; --json prints them whole.
func TestAdminWebhookDeliveries(t *testing.T) {
	longErr := "dial tcp 127.0.0.1:9: connect: connection refused " + strings.Repeat("x", 300)
	view := map[string]any{
		"id": "0d1f6c2e-6a43-4d5e-9f7e-2b8f51c2a9f0", "org": "310000035", "url": "http://127.0.0.1:9/portvakt",
		"events": []string{}, "active": true, "created": "2026-12-02T06:00:00.123456789Z", "last_updated": "2026-12-02T06:00:00Z",
		"deliveries": []map[string]any{
			{"webhook_id": "0d1f6c2e-6a43-4d5e-9f7e-2b8f51c2a9f0", "event_id": 2, "event_jti": "j2", "event": "client.keys.expiring",
				"attempt": 4, "time": "2026-12-02T06:10:00.5Z", "status": 202, "state": "delivered"},
			{"webhook_id": "0d1f6c2e-6a43-4d5e-9f7e-2b8f51c2a9f0", "event_id": 2, "event_jti": "j2", "event": "client.keys.expiring",
				"attempt": 3, "time": "2026-12-02T06:05:00.5Z", "error": longErr, "state": "pending", "next_attempt": "2026-12-02T06:10:00Z"},
		},
	}
	creds := apiStandIn(t, "/api/v1/webhooks/0d1f6c2e-6a43-4d5e-9f7e-2b8f51c2a9f0", view)
	for _, tc := range []struct {
		name     string
		json     bool
		want     []string
		wantNone []string
	}{
		{"ok/table", false, []string{"events: all", "ATTEMPT", "2026-12-02T06:10:00Z", "client.keys.expiring", "202", "delivered",
			"pending", "connection refused", "..."}, []string{strings.Repeat("x", 40), ".5Z", " 0 "}},
		{"ok/json", true, []string{longErr, "next_attempt"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := adminCmd()
			var out bytes.Buffer
			cmd.SetOut(&out)
			cmd.SetErr(&out)
			args := append([]string{"webhooks", "get", "0d1f6c2e-6a43-4d5e-9f7e-2b8f51c2a9f0"}, creds...)
			if tc.json {
				args = append(args, "--json")
			}
			cmd.SetArgs(args)
			if err := cmd.ExecuteContext(t.Context()); err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			got := out.String()
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("no %q in\n%s", w, got)
				}
			}
			for _, w := range tc.wantNone {
				if strings.Contains(got, w) {
					t.Errorf("%q in\n%s", w, got)
				}
			}
			if !tc.json {
				wantLines(t, tc.name, got)
			}
		})
	}
}

// TestAdminExamples: every admin command has examples, and every example
// of a `portvakt admin` command names a command of its own subtree that
// exists, with flags it has and the arguments it takes.
func TestAdminExamples(t *testing.T) {
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Name() != "help" && sub.Name() != "completion" {
				walk(sub)
			}
		}
		t.Run("ok/"+strings.ReplaceAll(c.CommandPath(), " ", "-"), func(t *testing.T) {
			if strings.TrimSpace(c.Example) == "" {
				t.Fatalf("%s has no examples", c.CommandPath())
			}
			// Examples show the command, and may show a sibling that
			// follows it (delete, then list --inactive).
			own, family := c.CommandPath()+" ", c.CommandPath()+" "
			if c.HasParent() && c.Parent().Name() != "admin" {
				family = c.Parent().CommandPath() + " "
			}
			mine := 0
			for _, ex := range exampleCommands(c.Example) {
				n++
				line := strings.Join(ex, " ") + " "
				if strings.HasPrefix(line, own) {
					mine++
				}
				if !strings.HasPrefix(line, family) {
					t.Errorf("%s: the example %q is not of this command", c.CommandPath(), line)
					continue
				}
				root := rootCmd() // fresh flags for every example
				found, rest, err := root.Find(ex[1:])
				if err != nil {
					t.Errorf("%q: %v", strings.Join(ex, " "), err)
					continue
				}
				if err := found.ParseFlags(rest); err != nil {
					t.Errorf("%q: %v", strings.Join(ex, " "), err)
					continue
				}
				if found.Args != nil && found.Runnable() {
					if err := found.Args(found, found.Flags().Args()); err != nil {
						t.Errorf("%q: %v", strings.Join(ex, " "), err)
					}
				}
			}
			if mine == 0 {
				t.Errorf("%s: no example runs it", c.CommandPath())
			}
		})
	}
	walk(adminCmdIn(t))
	if n < 40 {
		t.Errorf("only %d examples checked", n)
	}
}

// adminCmdIn is the admin command as the root command holds it (so that
// its CommandPath starts with "portvakt").
func adminCmdIn(t *testing.T) *cobra.Command {
	t.Helper()
	c, _, err := rootCmd().Find([]string{"admin"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// exampleCommands splits an Example into the words of each `portvakt admin`
// command in it: lines joined at a trailing backslash, comments, $CREDS and
// pipes dropped, double and single quotes honoured.
func exampleCommands(example string) [][]string {
	var out [][]string
	joined := strings.ReplaceAll(example, "\\\n", " ")
	for _, line := range strings.Split(joined, "\n") {
		line = strings.TrimSpace(line)
		if i := strings.Index(line, " #"); i >= 0 {
			line = line[:i]
		}
		if !strings.HasPrefix(line, "portvakt admin") {
			continue
		}
		var words []string
		var cur strings.Builder
		var quote rune
		inWord := false
		for _, r := range line + " " {
			switch {
			case quote != 0 && r == quote:
				quote = 0
			case quote != 0:
				cur.WriteRune(r)
			case r == '"' || r == '\'':
				quote, inWord = r, true
			case r == ' ':
				if inWord && cur.String() != "$CREDS" {
					words = append(words, cur.String())
				}
				cur.Reset()
				inWord = false
			default:
				cur.WriteRune(r)
				inWord = true
			}
		}
		out = append(out, words)
	}
	return out
}

// apiStandIn serves answer at path (GET) to the token "t", which its token
// endpoint hands out for any grant: the CLI's output is then checked for
// records the real server cannot be made to hold (a delivery's error, an
// event from the console). It returns the admin flags that reach it.
func apiStandIn(t *testing.T, path string, answer any) []string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/token" && r.Method == http.MethodPost:
			w.Write([]byte(`{"access_token":"t","token_type":"Bearer","expires_in":60}`))
		case r.URL.Path == path && r.Header.Get("Authorization") == "Bearer t":
			json.NewEncoder(w).Encode(answer)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	keyFile := ecKeyFile(t, filepath.Join(t.TempDir(), "admin.key"))
	return []string{"--issuer", srv.URL + "/", "--token-url", srv.URL + "/token", "--client-id", "c", "--key", keyFile, "--kid", "k"}
}

// ecKeyFile writes a new P-256 private key to file (PEM, 0600) and returns
// the file.
func ecKeyFile(t *testing.T, file string) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := testpki.KeyPEM(k)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, kp, 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}
