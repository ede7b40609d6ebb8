package deploy

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"

	"github.com/portvakt/portvakt/internal/pgtest"
	"github.com/portvakt/portvakt/internal/signer"
	"github.com/portvakt/portvakt/internal/testserver"
)

type composeService struct {
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	Secrets     []string          `yaml:"secrets"`
}

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Secrets  map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
}

var secretsDirRE = regexp.MustCompile(`^\$\{PORTVAKT_COMPOSE_SECRETS:-\./secrets\}/`)

// composeStack is docker-compose.yml with the secrets secrets.sh wrote.
type composeStack struct {
	composeFile
	dir        string            // what secrets.sh wrote into
	secretFile map[string]string // secret name -> file
}

// newComposeStack reads docker-compose.yml and runs secrets.sh into a
// temporary directory; every secret the compose file names must be there.
func newComposeStack(t *testing.T) *composeStack {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("secrets.sh needs openssl")
		}
		t.Skip("SKIPPING: secrets.sh needs openssl")
	}
	s := &composeStack{dir: t.TempDir(), secretFile: map[string]string{}}
	readYAML(t, "compose/docker-compose.yml", &s.composeFile)
	if out, err := exec.Command("sh", "compose/secrets.sh", s.dir).CombinedOutput(); err != nil {
		t.Fatalf("secrets.sh: %v\n%s", err, out)
	}
	for name, sec := range s.Secrets {
		if !secretsDirRE.MatchString(sec.File) {
			t.Errorf("secret %s: %s is not in the secrets directory", name, sec.File)
			continue
		}
		f := filepath.Join(s.dir, secretsDirRE.ReplaceAllString(sec.File, ""))
		if _, err := os.Stat(f); err != nil {
			t.Errorf("secret %s: secrets.sh did not write it: %v", name, err)
		}
		s.secretFile[name] = f
	}
	return s
}

// files maps the container paths of a service's secrets and bind mounts to
// the files here.
func (s *composeStack) files(svc composeService) map[string]string {
	files := map[string]string{}
	for _, name := range svc.Secrets {
		files["/run/secrets/"+name] = s.secretFile[name]
	}
	for _, v := range svc.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && strings.HasPrefix(parts[0], "./") {
			files[parts[1]] = filepath.Join("compose", parts[0])
		}
	}
	return files
}

// configFile is the file a service's --config names, as a path here.
func configFile(t *testing.T, args []string, files map[string]string) string {
	t.Helper()
	i := slices.Index(args, "--config")
	if i < 0 || i+1 >= len(args) || files[args[i+1]] == "" {
		t.Fatalf("%v: no --config file that a volume mounts", args)
	}
	return files[args[i+1]]
}

// TestComposeStack runs secrets.sh, then loads the compose stack's config
// as each of its portvakt containers would, with the environment, the
// volumes and the secrets docker-compose.yml gives that container.
func TestComposeStack(t *testing.T) {
	stack := newComposeStack(t)
	pw, err := os.ReadFile(filepath.Join(stack.dir, "postgres-password"))
	if err != nil {
		t.Fatal(err)
	}
	var issuers, keys []string
	for _, name := range []string{"migrate", "portvakt-a", "portvakt-b"} {
		t.Run("ok/"+name, func(t *testing.T) {
			svc, ok := stack.Services[name]
			if !ok {
				t.Fatalf("no service %s", name)
			}
			files := stack.files(svc)
			cfg := loadAs(t, configFile(t, svc.Command, files), svc.Environment, files)

			// The DSN names no password: the driver finds the one
			// PostgreSQL was given in the pgpass secret.
			dsn := strings.Replace(cfg.Database.DSN, "passfile=/run/secrets/pgpass", "passfile="+files["/run/secrets/pgpass"], 1)
			if dsn == cfg.Database.DSN {
				t.Fatalf("the DSN %q does not read the pgpass secret", cfg.Database.DSN)
			}
			pc, err := pgx.ParseConfig(dsn)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Database.Driver != "postgres" || pc.Password != strings.TrimSpace(string(pw)) {
				t.Errorf("driver %s: the password from pgpass is not PostgreSQL's", cfg.Database.Driver)
			}
			if _, ok := stack.Services[pc.Host]; !ok {
				t.Errorf("the DSN's host %s is no service", pc.Host)
			}
			issuers = append(issuers, cfg.Issuer)
			keys = append(keys, cfg.Signing.KeyFile)
		})
	}
	slices.Sort(issuers)
	slices.Sort(keys)
	if len(issuers) != 3 || len(slices.Compact(issuers)) != 1 || len(slices.Compact(keys)) != 1 {
		t.Errorf("the replicas must share one issuer and one signing key: %v %v", issuers, keys)
	}
}

// TestComposeConfigServesTheAdmin runs the server as the compose stack's
// portvakt-a runs it (its config, environment and secrets.sh's files; on
// loopback ports and the test PostgreSQL instead of the compose network),
// and gets a token as the declared platform admin with the certificate
// secrets.sh issued: what docs/deploy.md tells a newcomer to do first.
func TestComposeConfigServesTheAdmin(t *testing.T) {
	dsn := pgtest.FreshSchema(t, pgtest.DSN(t))
	stack := newComposeStack(t)
	svc := stack.Services["portvakt-a"]
	files := stack.files(svc)

	// The config with the container paths replaced by the files here.
	var cfg map[string]any
	readYAML(t, configFile(t, svc.Command, files), &cfg)
	cfg = replaceStrings(cfg, files).(map[string]any)
	issuer, _ := cfg["issuer"].(string)
	var clientID string
	if cs, ok := cfg["records"].(map[string]any)["clients"].([]any); ok && len(cs) > 0 {
		clientID, _ = cs[0].(map[string]any)["client_id"].(string)
	}
	if issuer == "" || clientID == "" {
		t.Fatalf("no issuer or no declared admin client in the compose config")
	}
	b, err := json.Marshal(cfg) // JSON is YAML
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "portvakt.yaml")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}

	pub, ops := freeAddr(t), freeAddr(t)
	env := map[string]string{}
	for k, v := range svc.Environment {
		env[k] = v
	}
	env["PORTVAKT_LISTEN"], env["PORTVAKT_OPS_LISTEN"], env["PORTVAKT_DATABASE_DSN"] = pub, ops, dsn
	args := slices.Clone(svc.Command)
	args[slices.Index(args, "--config")+1] = file
	logs := run(t, testserver.Binary(t), args, env, "http://"+ops+"/readyz")

	// The admin's grant: the certificate chain in x5c, signed with its key.
	certPEM, err := os.ReadFile(filepath.Join(stack.dir, "admin-cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(stack.dir, "admin-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(certPEM)
	key, err := signer.ParsePrivateKeyPEM(keyPEM)
	if block == nil || err != nil {
		t.Fatalf("admin certificate or key: %v", err)
	}
	jti := make([]byte, 16)
	_, _ = rand.Read(jti)
	now := time.Now()
	grant := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": clientID, "aud": issuer, "scope": "portvakt:admin",
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": hex.EncodeToString(jti),
	})
	grant.Header["x5c"] = []string{base64.StdEncoding.EncodeToString(block.Bytes)}
	assertion, err := grant.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.PostForm("http://"+pub+"/token", url.Values{
		"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {assertion},
	})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		Scope       string `json:"scope"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &tok) != nil || tok.Scope != "portvakt:admin" {
		t.Fatalf("token: %s %s\n%s", resp.Status, body, logs.String())
	}

	// Signed with the key from the signing-key secret, imported as the
	// first key kept (sealed under the KEK) in the database.
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var stored int
	if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM signing_keys WHERE state = 'CURRENT'").Scan(&stored); err != nil || stored != 1 {
		t.Errorf("the signing keys are not kept in the database: %d CURRENT, %v", stored, err)
	}
	sk, err := os.ReadFile(files["/run/secrets/signing-key"])
	if err != nil {
		t.Fatal(err)
	}
	priv, err := signer.ParsePrivateKeyPEM(sk)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jwt.Parse(tok.AccessToken, func(*jwt.Token) (any, error) { return priv.Public(), nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(issuer)); err != nil {
		t.Errorf("the token does not verify with the signing-key secret: %v", err)
	}
}

// replaceStrings returns v with every string that is a key of m replaced by
// its value, in maps and lists at any depth.
func replaceStrings(v any, m map[string]string) any {
	switch x := v.(type) {
	case string:
		if r, ok := m[x]; ok {
			return r
		}
	case map[string]any:
		for k, e := range x {
			x[k] = replaceStrings(e, m)
		}
	case []any:
		for i, e := range x {
			x[i] = replaceStrings(e, m)
		}
	}
	return v
}

// freeAddr is a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// run starts bin with args and exactly env as its PORTVAKT_* environment,
// waits (at most 30 s) until ready answers 200, and stops it (SIGTERM, then
// kill) when the test ends. It returns the process's output so far, for
// failure messages.
func run(t *testing.T, bin string, args []string, env map[string]string, ready string) *syncWriter {
	t.Helper()
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PORTVAKT_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	w := &syncWriter{}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-done:
			t.Fatalf("portvakt exited: %v\n%s", err, w.String())
		default:
		}
		if resp, err := hc.Get(ready); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return w
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready after 30s\n%s", w.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// syncWriter is a process's output, written by its pipes' goroutines and
// read by the test.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
