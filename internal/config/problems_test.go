package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// base is a valid file the cases add to or break.
const base = `issuer: https://auth.example.no/
platform: {org: "310000019"}
trust: {roots: [root.pem]}
`

// TestConfigProblems pins the exact text a newcomer sees for each kind of
// mistake, from Load (parse, validate and files in one list).
func TestConfigProblems(t *testing.T) {
	withKEK(t)
	for _, tc := range []struct {
		name string
		yaml string
		env  map[string]string
		want string // the problems after the first line, one per line
	}{
		{
			name: "fail/config/unknown-key-suggests-nearest",
			yaml: base + "isuer: https://x/\n",
			want: `line 4: isuer: unknown key; did you mean issuer?`,
		},
		{
			name: "fail/config/unknown-nested-key-suggests-nearest",
			yaml: base + "signing:\n  keyfile: k.pem\n",
			want: `line 5: signing.keyfile: unknown key; did you mean signing.key_file?`,
		},
		{
			name: "fail/config/unknown-key-at-the-wrong-level",
			yaml: base + "pprof: true\n",
			want: `line 4: pprof: unknown key; did you mean ops.pprof?`,
		},
		{
			name: "fail/config/unknown-key-far-from-any",
			yaml: base + "ops:\n  zzzzzzzzzz: 1\n",
			want: `line 5: ops.zzzzzzzzzz: unknown key (known keys here: listen, pprof)`,
		},
		{
			name: "fail/config/unknown-key-in-a-record",
			yaml: base + "records:\n  clients:\n    - {client_idd: x}\n",
			want: "line 6: records.clients[0].client_idd: unknown key; did you mean records.clients[0].client_id?\n" +
				"records.clients[0].client_id: \"\" must be a UUID\n" +
				"records.clients[0].client_orgno: \"\" is not a valid organisation number (9 digits, mod-11)\n" +
				"records.clients[0].description: is required",
		},
		{
			name: "fail/config/duration-without-unit",
			yaml: base + "token:\n  default_lifetime: 120\n",
			want: `line 5: token.default_lifetime: 120 has no unit: write 120s for seconds (units: ms, s, m, h)`,
		},
		{
			name: "fail/config/duration-without-unit-quoted",
			yaml: base + "server:\n  request_timeout: \"5\"\n",
			want: `line 5: server.request_timeout: 5 has no unit: write 5s for seconds (units: ms, s, m, h)`,
		},
		{
			name: "fail/config/duration-from-env-without-unit",
			yaml: base,
			env:  map[string]string{"PORTVAKT_AUDIT_PURGE_INTERVAL": "60"},
			want: `audit.purge_interval (PORTVAKT_AUDIT_PURGE_INTERVAL): 60 has no unit: write 60s for seconds (units: ms, s, m, h)`,
		},
		{
			name: "fail/config/not-a-duration",
			yaml: base + "rules: {poll_interval: soon}\n",
			want: `line 4: rules.poll_interval: "soon" is not a duration: write it like 500ms, 10s or 2h`,
		},
		{
			name: "fail/config/type-int",
			yaml: base + "audit:\n  purge_batch: lots\n",
			want: `line 5: audit.purge_batch: must be a whole number, got "lots"`,
		},
		{
			name: "fail/config/type-string",
			yaml: base + "listen: [a, b]\n",
			want: `line 4: listen: must be a string, got a list`,
		},
		{
			name: "fail/config/type-map",
			yaml: base + "token: 5\n",
			want: `line 4: token: must be a map of keys (clock_skew, default_lifetime), got the number 5`,
		},
		{
			name: "fail/config/type-bool",
			yaml: base + "ops: {pprof: sometimes}\n",
			want: `line 4: ops.pprof: must be true or false, got "sometimes"`,
		},
		{
			name: "fail/config/type-list",
			yaml: base + "rate_limit: {clients: 5}\n",
			want: `line 4: rate_limit.clients: must be a list, got the number 5`,
		},
		{
			name: "fail/config/parse-and-validate-listed-together",
			yaml: "issuer: https://auth.example.no\nplatform: {org: \"310000019\"}\ntrust: {roots: [root.pem]}\nlog: {formatt: json, level: loud}\n",
			want: "line 4: log.formatt: unknown key; did you mean log.format?\n" +
				"line 1: issuer: must end with '/' so that endpoint paths append to it, got \"https://auth.example.no\"\n" +
				"line 4: log.level: must be debug, info, warn or error, got \"loud\"",
		},
		{
			name: "fail/config/bad-value-not-also-reported-as-missing",
			yaml: "issuer: https://auth.example.no/\nplatform: {org: [310000019]}\ntrust: {roots: [root.pem]}\n",
			want: `line 2: platform.org: must be a string, got a list`,
		},
		{
			name: "fail/config/every-missing-trust-file",
			yaml: "issuer: https://auth.example.no/\nplatform: {org: \"310000019\"}\n" +
				"trust:\n  roots: [root.pem, gone-1.pem]\n  intermediates: [gone-2.pem]\n" +
				"  revocation: {enabled: true, crl_files: [gone-3.crl]}\n",
			want: "line 4: trust.roots[1]: {dir}/gone-1.pem does not exist\n" +
				"line 5: trust.intermediates[0]: {dir}/gone-2.pem does not exist\n" +
				"line 6: trust.revocation.crl_files[0]: {dir}/gone-3.crl does not exist",
		},
		{
			name: "fail/config/missing-published-signing-key",
			yaml: base + "signing:\n  publish_key_files:\n    - next.pem\n",
			want: "line 6: signing.publish_key_files[0]: {dir}/next.pem does not exist",
		},
		{
			name: "fail/config/yaml-syntax-names-the-line-of-the-problem",
			yaml: base + "ops:\n  listen: 127.0.0.1:8081\n pprof: true\n",
			want: "line 6, column 2: YAML: did not find expected key (while parsing a block mapping that starts at line 1)",
		},
		{
			name: "fail/config/yaml-unterminated-quote",
			yaml: base + "log:\n  level: \"info\n  format: json\n",
			want: "line 7, column 1: YAML: found unexpected end of stream (while scanning a quoted scalar that starts at line 5)",
		},
		{
			name: "fail/config/yaml-tab-indent",
			yaml: base + "log:\n\tlevel: info\n",
			want: "line 5, column 1: YAML: found character that cannot start any token",
		},
		{
			name: "fail/config/key-set-twice",
			yaml: base + "log: {level: info}\nlog: {level: debug}\n",
			want: "line 5: log: is set twice (first at line 4)",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "root.pem"), []byte("a file the check only stats"), 0o600); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(dir, "portvakt.yaml")
			if err := os.WriteFile(file, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(file, false)
			if err == nil {
				t.Fatal("accepted")
			}
			got := err.Error()
			_, got, _ = strings.Cut(got, "\n") // "invalid configuration (file):" or "config: file:"
			want := strings.ReplaceAll(tc.want, "{dir}", dir)
			if got != want {
				t.Fatalf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// TestProblemsAreTyped: callers can tell a file that is not YAML from a
// key that is wrong, and read the key and line.
func TestProblemsAreTyped(t *testing.T) {
	_, err := Parse([]byte("a: b: c\n"), "", false)
	var se *SyntaxError
	if !errors.As(err, &se) || se.Line != 1 {
		t.Fatalf("syntax error %#v", err)
	}
	c, err := Parse([]byte(base+"\nisuer: x\n"), "", false)
	var p *Problem
	if !errors.As(err, &p) || p.Key != "isuer" || p.Line != 5 || c == nil || c.Issuer != "https://auth.example.no/" {
		t.Fatalf("problem %#v, config %v", err, c)
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"issuer", "isuer", 1}, {"listen", "lsiten", 2}, {"abc", "", 3}, {"kitten", "sitting", 3}} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
