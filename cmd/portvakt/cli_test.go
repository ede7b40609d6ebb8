package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// TestExitCodes: scripts tell a wrong command line (2) from a refusal or a
// failure (1), and a usage error is printed once with its usage line.
func TestExitCodes(t *testing.T) {
	e := startServer(t)
	admin := e.certCreds(org(1), cliPlatformClient)
	stranger := e.certCreds(org(5), "00000000-0000-4000-8000-00000000dead")
	for _, tc := range []struct {
		name  string
		args  []string
		code  int
		usage bool
	}{
		{"ok/version", []string{"version"}, exitOK, false},
		{"ok/admin-help", []string{"admin"}, exitOK, false},
		{"ok/list", with(admin, "admin", "prefixes", "list"), exitOK, false},
		{"fail/usage/unknown-command", []string{"nope"}, exitUsage, true},
		{"fail/usage/unknown-subcommand", []string{"admin", "nope"}, exitUsage, true},
		{"fail/usage/unknown-flag", []string{"admin", "prefixes", "list", "--bogus"}, exitUsage, true},
		{"fail/usage/extra-argument", with(admin, "admin", "prefixes", "list", "extra"), exitUsage, true},
		{"fail/usage/missing-flag", with(admin, "admin", "access", "approve", org(3)), exitUsage, true},
		{"fail/usage/bad-output", with(admin, "admin", "prefixes", "list", "-o", "xml"), exitUsage, true},
		{"fail/usage/json-and-output-disagree", with(admin, "admin", "prefixes", "list", "--json", "-o", "yaml"), exitUsage, true},
		{"fail/refused/unknown-client", with(stranger, "admin", "prefixes", "list"), exitRefused, false},
		{"fail/usage/issuer-without-slash", []string{"token", "--issuer", strings.TrimSuffix(e.issuer, "/"), "--client-id", "c", "--key", "k", "--kid", "1"}, exitUsage, true},
		{"fail/usage/cert-and-kid", []string{"token", "--issuer", e.issuer, "--client-id", "c", "--cert", "c.pem", "--key", "k", "--kid", "1"}, exitUsage, true},
		{"fail/usage/no-client-id", []string{"admin", "prefixes", "list", "--issuer", e.issuer, "--key", "k", "--kid", "1"}, exitUsage, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(tc.args, &out, &errOut)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out.String(), errOut.String())
			}
			msg := errOut.String()
			if n := strings.Count(msg, "portvakt: "); code != exitOK && n != 1 {
				t.Errorf("the error is printed %d times, want once:\n%s", n, msg)
			}
			if got := strings.Contains(msg, "usage: portvakt"); got != tc.usage {
				t.Errorf("usage line shown %v, want %v:\n%s", got, tc.usage, msg)
			}
		})
	}
}

// TestOutputFormats: -o table|json|yaml print the same record, and -q only
// its id, so scripts need no jq.
func TestOutputFormats(t *testing.T) {
	e := startServer(t)
	admin := e.certCreds(org(1), cliPlatformClient)
	e.mustCLI(with(admin, "admin", "prefixes", "set", "acme", org(2))...)
	id := strings.TrimSpace(e.mustCLI(with(admin, "admin", "clients", "create", "-q", "--org", org(3), "--name", "q",
		"--description", "made with -q", "--scope", "portvakt:clients.read")...))
	if !regexp.MustCompile(`^[0-9a-f-]{36}$`).MatchString(id) {
		t.Fatalf("-q printed %q, want only the new client_id", id)
	}
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"ok/table", []string{"-o", "table"}, []string{"PREFIX", "acme"}},
		{"ok/json", []string{"-o", "json"}, []string{`"prefix": "acme"`, `"owner_org": "` + org(2) + `"`}},
		{"ok/json-flag", []string{"--json"}, []string{`"prefix": "acme"`}},
		{"ok/yaml", []string{"-o", "yaml"}, []string{"prefix: acme", "owner_org: \"" + org(2) + "\""}},
		{"ok/quiet", []string{"-q"}, []string{"acme\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := e.mustCLI(with(admin, append([]string{"admin", "prefixes", "list"}, tc.args...)...)...)
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
	if out := e.mustCLI(with(admin, "admin", "prefixes", "list", "-q")...); strings.Contains(out, "PREFIX") || strings.Contains(out, org(2)) {
		t.Errorf("-q printed more than ids:\n%s", out)
	}
	// delete deactivates and prints the record as it left it.
	own := strings.TrimSpace(e.mustCLI(with(admin, "admin", "clients", "create", "-q", "--name", "gone",
		"--description", "to deactivate", "--scope", "portvakt:clients.read")...))
	if out := e.mustCLI(with(admin, "admin", "clients", "delete", own, "-o", "json")...); !strings.Contains(out, `"active": false`) || !strings.Contains(out, own) {
		t.Errorf("delete printed %q, want the deactivated client", out)
	}
}
