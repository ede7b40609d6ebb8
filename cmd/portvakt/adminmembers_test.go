package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// TestAdminMembers sets, lists, reads and removes members from the shell;
// required flags are refused before any request; a role the client may not
// hold is refused by the token endpoint; the server's refusals (not a
// role, the last members.write holder, another org's member) come back as
// errors naming the status.
func TestAdminMembers(t *testing.T) {
	e := startServer(t)
	admin := e.certCreds(org(1), cliPlatformClient)
	onboard := func(o, scopes string) []string {
		id := e.clientID(e.mustCLI(with(admin, "admin", "clients", "create", "--json", "--org", o, "--name", "admin",
			"--description", "self-service", "--scope", scopes)...))
		return e.certCreds(o, id)
	}
	cons := onboard(org(3), "portvakt:members.write,portvakt:audit.read")
	oth := onboard(org(4), "portvakt:members.write")
	const kari, ola = "kari@example.no", "auth0|ola/1"

	var m struct {
		Org     string   `json:"org"`
		Subject string   `json:"subject"`
		Roles   []string `json:"roles"`
	}
	out := e.mustCLI(with(cons, "admin", "members", "set", "--json", "--subject", kari,
		"--role", "portvakt:members.write", "--role", "portvakt:audit.read")...)
	if err := json.Unmarshal([]byte(out), &m); err != nil || m.Org != org(3) || m.Subject != kari ||
		strings.Join(m.Roles, ",") != "portvakt:members.write,portvakt:audit.read" {
		t.Fatalf("set: %v %s", err, out)
	}
	out = e.mustCLI(with(cons, "admin", "members", "set", "--subject", ola, "--role", "portvakt:audit.read,portvakt:members.write")...)
	wantLines(t, "set, table", out, "SUBJECT", ola, org(3), "roles: portvakt:audit.read, portvakt:members.write")
	out = e.mustCLI(with(cons, "admin", "members", "set", "--subject", ola, "--no-roles", "-o", "yaml")...)
	wantLines(t, "set --no-roles", out, "subject: "+ola, "roles: []")

	out = e.mustCLI(with(cons, "admin", "members", "list")...)
	wantLines(t, "list", out, "SUBJECT", kari, ola, "roles: portvakt:members.write, portvakt:audit.read")
	if out := e.mustCLI(with(cons, "admin", "members", "list", "-q")...); out != ola+"\n"+kari+"\n" {
		t.Errorf("list -q: %q", out)
	}
	out = e.mustCLI(with(cons, "admin", "members", "get", "--subject", kari)...)
	wantLines(t, "get", out, kari, "portvakt:audit.read")

	// Required flags are named before any request.
	for _, args := range [][]string{
		{"get"}, {"remove"}, {"set", "--role", "portvakt:audit.read"},
		{"set", "--subject", kari}, {"set", "--subject", kari, "--role", "portvakt:audit.read", "--no-roles"},
	} {
		_, err := e.cli(append([]string{"admin", "members"}, append(args, "--issuer", "http://127.0.0.1:1/")...)...)
		var u usageError
		if !errors.As(err, &u) {
			t.Errorf("members %v: %v, want a usage error", args, err)
		}
	}

	// The server's refusals.
	_, err := e.cli(with(cons, "admin", "members", "set", "--subject", ola, "--role", "portvakt:clients.write")...)
	wantErr(t, "a role the client may not hold", err, "invalid_scope", "portvakt:clients.write")
	_, err = e.cli(with(cons, "admin", "members", "set", "--subject", ola, "--role", "acme:api")...)
	wantErr(t, "not a role", err, "400", "roles[0]")
	_, err = e.cli(with(cons, "admin", "members", "remove", "--subject", kari)...)
	wantErr(t, "the last members.write holder", err, "409", "portvakt:members.write")
	for _, args := range [][]string{{"get", "--subject", kari}, {"remove", "--subject", kari}} {
		_, err := e.cli(with(oth, append([]string{"admin", "members"}, args...)...)...)
		wantErr(t, "another org: "+args[0], err, "404")
	}
	if out := e.mustCLI(with(oth, "admin", "members", "list")...); strings.Contains(out, kari) {
		t.Errorf("another org lists the consumer's member:\n%s", out)
	}

	out = e.mustCLI(with(cons, "admin", "members", "remove", "--subject", ola)...)
	wantLines(t, "remove", out, "removed: member "+ola)
	if out := e.mustCLI(with(cons, "admin", "members", "list", "-q")...); out != kari+"\n" {
		t.Errorf("list -q after remove: %q", out)
	}
	_, err = e.cli(with(cons, "admin", "members", "get", "--subject", ola)...)
	wantErr(t, "removed member", err, "404")
}

// TestAdminAuditShowsPerson: an audit event of a change made in the web
// console names the person under its row.
func TestAdminAuditShowsPerson(t *testing.T) {
	page := map[string]any{"events": []map[string]any{{
		"id": 7, "time": "2026-12-02T08:00:00Z", "action": "member.create", "actor_org": "310000035",
		"actor_client_id": "", "actor_person": "kari@example.no", "target_kind": "member", "target": "ola@example.no",
		"orgs": []string{"310000035"},
	}}, "next_cursor": ""}
	cmd := adminCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(append([]string{"audit"}, apiStandIn(t, "/api/v1/audit", page)...))
	if err := cmd.ExecuteContext(t.Context()); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	wantLines(t, "audit", out.String(), "member.create", "ola@example.no", "actor_person: kari@example.no")
}
