package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func TestExampleConfigParsesAndDocumentsEveryKey(t *testing.T) {
	b, err := os.ReadFile("../../configs/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(b, t.TempDir(), false)
	if err != nil {
		t.Fatalf("example.yaml does not parse: %v", err)
	}
	// Files (trust anchors) are read at start-up, not by Validate.
	if err := c.Validate(); err != nil {
		t.Fatalf("example.yaml does not validate: %v", err)
	}
}

func TestDevConfigValidates(t *testing.T) {
	b, err := os.ReadFile("../../configs/dev.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(b, t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	c.Records.Clients[1].JWKSFile = "" // the dev PKI is generated at start-up
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Issuer != "http://127.0.0.1:8080/" || c.DataDir != ".portvakt-dev" || c.Log.Format != "text" {
		t.Fatalf("dev defaults: %+v", c)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c, err := Parse([]byte(`
issuer: http://auth.example.no/path
listen: nope
platform: {org: "123456789"}
database: {driver: mysql}
signing: {algorithm: HS256, rotation: {interval: 1m, pre_publish: 1m}}
token: {clock_skew: 5m}
rules: {poll_interval: 5s}
log: {format: xml}
trust: {revocation: {grace: 720h}}
records:
  prefixes: [{prefix: "Bad!", owner_org: "1"}]
  clients: [{client_id: not-a-uuid, client_orgno: "310000035"}]
`), "", false)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, key := range []string{"issuer:", "listen:", "platform.org:", "database.driver:", "signing.algorithm:",
		"signing.rotation.pre_publish:", "signing.rotation.interval:",
		"token.clock_skew:", "rules.poll_interval:", "log.format:", "trust.roots:", "trust.revocation.grace:", "records.prefixes[0].prefix:",
		"records.prefixes[0].owner_org:", "records.clients[0].client_id:", "records.clients[0].description:"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("missing problem for %s in:\n%v", key, err)
		}
	}
}

func TestUnknownKeyIsAnError(t *testing.T) {
	if _, err := Parse([]byte("isuer: https://x/\n"), "", false); err == nil {
		t.Fatal("a misspelt key was accepted")
	}
}

func TestEnvironmentOverridesFile(t *testing.T) {
	t.Setenv("PORTVAKT_DATABASE_DSN", "postgres://u@127.0.0.1/db")
	t.Setenv("PORTVAKT_DATABASE_DRIVER", "postgres")
	t.Setenv("PORTVAKT_PLATFORM_ORG", "310000019")
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte("issuer: https://auth.example.no/\nplatform: {org: \"310000027\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Read(p, false)
	if err != nil {
		t.Fatal(err)
	}
	if c.Database.Driver != "postgres" || c.Database.DSN != "postgres://u@127.0.0.1/db" || c.Platform.Org != "310000019" {
		t.Fatalf("env not applied: %+v", c.Database)
	}
}

// TestConfigurationDocCoversEveryKey keeps docs/configuration.md in step with
// the code: every key example.yaml sets, and every key of Config, has a row.
func TestConfigurationDocCoversEveryKey(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("../../configs/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	lines, _, err := yamlSyntax(example)
	if err != nil {
		t.Fatal(err)
	}
	index := regexp.MustCompile(`\[\d+\]`)
	keys := map[string]bool{}
	for k := range lines {
		if !strings.HasSuffix(k, "]") {
			keys[index.ReplaceAllString(k, "[]")] = true
		}
	}
	var walk func(t reflect.Type, path string)
	walk = func(t reflect.Type, path string) {
		for name, ft := range fields(t) {
			key := join(path, name)
			switch {
			case ft.Kind() == reflect.Struct:
				walk(ft, key)
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
				walk(ft.Elem(), key+"[]")
			default:
				keys[key] = true
			}
		}
	}
	walk(reflect.TypeOf(Config{}), "")
	for k := range keys {
		isSection := false
		for other := range keys {
			if strings.HasPrefix(other, k+".") || strings.HasPrefix(other, k+"[].") {
				isSection = true
				break
			}
		}
		if !isSection && !strings.Contains(string(doc), "`"+k+"`") {
			t.Errorf("docs/configuration.md has no row for `%s`", k)
		}
	}
}
