package testserver

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/config"
	"github.com/portvakt/portvakt/internal/testpki"
	"github.com/portvakt/portvakt/pkg/client"
)

// Options shape a server. The zero value is a SQLite server with the demo
// records and the shared test PKI.
type Options struct {
	// Driver is "sqlite" (default) or "postgres".
	Driver string
	// DSN is the database. Default for SQLite: a file in the data directory.
	// Required for PostgreSQL (see PostgresDSN). Two servers given the same
	// DSN share one database.
	DSN string
	// PKI is the trust anchors, signing key and clients (default SharedPKI).
	PKI *PKI
	// Records, when set, edits the demo records before they are written:
	// append scopes, access rows, delegations or clients, or change them.
	Records func(r *config.Records)
	// Config is merged into the config file at the top level (nested maps
	// merge key by key), for keys Options has no field for, e.g.
	// {"token": {"default_lifetime": "60s"}}.
	Config map[string]any
	// Env are extra environment variables (KEY=value) for the process.
	// PORTVAKT_* variables of the test's own environment are never passed on,
	// so a developer's shell cannot change what a test runs.
	Env []string
	// Replica makes this server a replica of another: same issuer, PKI,
	// records, signing key and (unless DSN says otherwise) database.
	Replica *Server
	// StartTimeout bounds the wait for /readyz (default 30 s).
	StartTimeout time.Duration
	// Args are extra arguments after `serve --config FILE`.
	Args []string
	// TLSClientAuth, when set, makes the public listener serve TLS with a
	// certificate for 127.0.0.1 from the PKI, asking for client
	// certificates as it says (config tls.client_auth: none, request or
	// require); URL, TokenURL and Issuer are then https. HTTPClient trusts
	// the listener.
	TLSClientAuth string
}

// Server is a running portvakt process.
type Server struct {
	// Issuer is the configured issuer: the grant's aud and the tokens' iss.
	// For a replica it is the first server's; use TokenURL to reach this one.
	Issuer string
	// URL is this process's public base URL (with a trailing slash).
	URL string
	// TokenURL is this process's token endpoint.
	TokenURL string
	// OpsURL is the ops listener's base URL (no trailing slash): /healthz,
	// /readyz, /metrics.
	OpsURL string
	// Dir holds the config file, the PKI files and the data directory.
	Dir        string
	ConfigFile string
	DataDir    string
	PKI        *PKI
	// Records are the declared records the server runs with.
	Records config.Records
	// Driver and DSN are the store.
	Driver, DSN string

	opts       Options
	signingKey string // path of the signing key file
	cmd        *exec.Cmd
	logs       *lockedBuffer
	done       chan struct{}
	waitErr    error
	stopOnce   sync.Once
	killed     bool
	stopped    bool // Stop or Kill was called: an exit is expected
}

// Start runs `portvakt serve` and waits until it is ready. It stops the
// process when the test ends and prints its log if the test failed.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	bin := Binary(t)
	s := &Server{opts: o, logs: &lockedBuffer{}}
	if o.Replica != nil {
		r := o.Replica
		s.PKI, s.Issuer, s.Records, s.signingKey = r.PKI, r.Issuer, r.Records, r.signingKey
		if o.Driver == "" {
			o.Driver = r.Driver
		}
		if o.DSN == "" {
			// Replicas share the database (SQLite in WAL mode allows it too).
			o.DSN = r.DSN
		}
	}
	if s.PKI == nil {
		s.PKI = o.PKI
	}
	if s.PKI == nil {
		s.PKI = SharedPKI(t)
	}
	s.Driver, s.DSN = o.Driver, o.DSN
	if s.Driver == "" {
		s.Driver = "sqlite"
	}
	if s.Driver == "postgres" && s.DSN == "" {
		t.Fatal("testserver: Options.DSN is required for postgres (see PostgresDSN)")
	}
	s.Dir = t.TempDir()
	s.DataDir = filepath.Join(s.Dir, "data")
	if s.DSN == "" && s.Driver == "sqlite" {
		s.DSN = filepath.Join(s.DataDir, "portvakt.db")
	}
	if o.Replica == nil {
		recs, err := s.PKI.DemoRecords()
		if err != nil {
			t.Fatalf("testserver: %v", err)
		}
		if o.Records != nil {
			o.Records(&recs)
		}
		s.Records = recs
	}
	if err := s.writePKI(); err != nil {
		t.Fatalf("testserver: %v", err)
	}

	// A free port can be taken between probing it and the server's bind;
	// try again with new ports when that happens.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		pub, ops, err := freePorts()
		if err != nil {
			t.Fatalf("testserver: %v", err)
		}
		scheme := "http"
		if o.TLSClientAuth != "" {
			scheme = "https"
		}
		s.URL = scheme + "://" + pub + "/"
		if o.Replica == nil {
			s.Issuer = s.URL
		}
		s.TokenURL = s.URL + "token"
		s.OpsURL = "http://" + ops
		if err := s.writeConfig(pub, ops); err != nil {
			t.Fatalf("testserver: %v", err)
		}
		lastErr = s.start(t, bin)
		if lastErr == nil {
			return s
		}
		if !strings.Contains(s.logs.String(), "address already in use") {
			break
		}
		s.logs.Reset()
	}
	t.Fatalf("testserver: start: %v\n--- portvakt log ---\n%s", lastErr, s.logs.String())
	return nil
}

func (s *Server) start(t testing.TB, bin string) error {
	t.Helper()
	args := append([]string{"serve", "--config", s.ConfigFile}, s.opts.Args...)
	cmd := exec.Command(bin, args...)
	cmd.Dir = s.Dir
	cmd.Env = append(childEnv(), s.opts.Env...)
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd, s.done, s.stopOnce, s.killed, s.stopped = cmd, make(chan struct{}), sync.Once{}, false, false
	go func() {
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	timeout := s.opts.StartTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	if err := s.waitReady(timeout); err != nil {
		s.kill()
		return err
	}
	t.Cleanup(func() {
		exited := s.Exited()
		s.Stop(t)
		if exited && !s.stopped {
			t.Errorf("testserver: portvakt exited during the test: %v", s.waitErr)
		}
		if t.Failed() {
			t.Logf("--- portvakt log (%s) ---\n%s", s.URL, s.Logs())
		}
	})
	return nil
}

func (s *Server) waitReady(timeout time.Duration) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	var last string
	for {
		select {
		case <-s.done:
			return fmt.Errorf("portvakt exited before it was ready: %v", s.waitErr)
		default:
		}
		resp, err := hc.Get(s.OpsURL + "/readyz")
		if err == nil {
			b := make([]byte, 512)
			n, _ := resp.Body.Read(b)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%s: %s", resp.Status, b[:n])
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %s (last /readyz: %s)", timeout, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop ends the process: SIGTERM, then a kill after 10 s. It reports a
// non-zero exit after SIGTERM (a graceful shutdown exits 0). Idempotent.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.stopped = true
	s.stopOnce.Do(func() {
		select {
		case <-s.done:
			return
		default:
		}
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
			if s.waitErr != nil && !s.killed {
				t.Errorf("testserver: portvakt did not shut down cleanly on SIGTERM: %v", s.waitErr)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("testserver: portvakt did not stop within 10 s of SIGTERM; killing it")
			s.kill()
		}
	})
}

// Kill ends the process at once (SIGKILL), as a crash would.
func (s *Server) Kill() { s.kill() }

func (s *Server) kill() {
	s.killed, s.stopped = true, true
	_ = s.cmd.Process.Kill()
	<-s.done
}

// Exited reports whether the process has ended.
func (s *Server) Exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// PID is the process id (for CPU and memory readings).
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Logs is everything the process wrote to stdout and stderr so far: JSON
// log lines, one access line per request.
func (s *Server) Logs() string { return s.logs.String() }

// LogRecords parses the JSON log lines written so far (other lines are
// skipped).
func (s *Server) LogRecords() []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s.Logs()))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// HTTPClient is an HTTP client that trusts the public listener's TLS
// certificate (see Options.TLSClientAuth) and presents certs.
func (s *Server) HTTPClient(certs ...tls.Certificate) *http.Client {
	roots := x509.NewCertPool()
	roots.AddCert(s.PKI.Root.Cert)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, Certificates: certs, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// ClientConfig is a pkg/client config for c against this process (its own
// token endpoint, the shared issuer as audience).
func (s *Server) ClientConfig(c Client, scopes ...string) client.Config {
	return client.Config{Issuer: s.Issuer, TokenURL: s.TokenURL, ClientID: c.ID, Scopes: scopes, Signer: c.Signer}
}

// TokenSource is a pkg/client TokenSource for c asking for scopes.
func (s *Server) TokenSource(t testing.TB, c Client, scopes ...string) *client.TokenSource {
	t.Helper()
	ts, err := client.NewTokenSource(context.Background(), s.ClientConfig(c, scopes...))
	if err != nil {
		t.Fatalf("testserver: token source: %v", err)
	}
	return ts
}

// Token fetches a fresh token for c (no cache) and fails the test on error.
func (s *Server) Token(t testing.TB, c Client, scopes ...string) *client.Response {
	t.Helper()
	resp, err := s.TokenSource(t, c, scopes...).Fetch(t.Context())
	if err != nil {
		t.Fatalf("testserver: token for %s %v: %v", c.Name, scopes, err)
	}
	return resp
}

func (s *Server) writePKI() error {
	dir := filepath.Join(s.Dir, "pki")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	files := map[string][]byte{
		"root.pem":         testpki.CertPEM(s.PKI.Root.Cert),
		"intermediate.pem": testpki.CertPEM(s.PKI.Intermediate.Cert),
	}
	if s.opts.TLSClientAuth != "" {
		c, err := s.PKI.Intermediate.TLSServer(time.Now(), "127.0.0.1")
		if err != nil {
			return err
		}
		var chain []byte
		for _, der := range c.Certificate {
			chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
		}
		k, err := testpki.KeyPEM(c.PrivateKey.(crypto.Signer))
		if err != nil {
			return err
		}
		files["tls-cert.pem"], files["tls-key.pem"] = chain, k
	}
	if s.signingKey == "" {
		k, err := testpki.KeyPEM(s.PKI.SigningKey)
		if err != nil {
			return err
		}
		files["signing-key.pem"] = k
		s.signingKey = filepath.Join(dir, "signing-key.pem")
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) writeConfig(pub, ops string) error {
	cfg := map[string]any{
		"issuer":   s.Issuer,
		"listen":   pub,
		"ops":      map[string]any{"listen": ops},
		"data_dir": s.DataDir,
		"database": map[string]any{"driver": s.Driver, "dsn": s.DSN},
		"platform": map[string]any{"org": PlatformOrg},
		"trust": map[string]any{
			"roots":         []string{filepath.Join(s.Dir, "pki", "root.pem")},
			"intermediates": []string{filepath.Join(s.Dir, "pki", "intermediate.pem")},
		},
		"signing": map[string]any{"key_file": s.signingKey},
		"log":     map[string]any{"format": "json", "level": "info"},
		"records": mapOf(reflect.ValueOf(s.Records)),
		// Load and interoperability tests send far more than a client's
		// default rate; rate-limit tests switch the limits on in
		// Options.Config.
		"rate_limit": map[string]any{"enabled": false},
	}
	if s.opts.TLSClientAuth != "" {
		cfg["tls"] = map[string]any{
			"cert_file": filepath.Join(s.Dir, "pki", "tls-cert.pem"), "key_file": filepath.Join(s.Dir, "pki", "tls-key.pem"),
			"client_auth": s.opts.TLSClientAuth,
		}
	}
	merge(cfg, s.opts.Config)
	// JSON is YAML: no YAML encoder needed, and nothing is lost.
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	s.ConfigFile = filepath.Join(s.Dir, "portvakt.yaml")
	return os.WriteFile(s.ConfigFile, b, 0o600)
}

// mapOf turns a config struct into the map its mapstructure tags describe,
// leaving out zero values.
func mapOf(v reflect.Value) any {
	switch v.Kind() {
	case reflect.Struct:
		m := map[string]any{}
		for i := 0; i < v.NumField(); i++ {
			tag := v.Type().Field(i).Tag.Get("mapstructure")
			if tag == "" || tag == "-" || v.Field(i).IsZero() {
				continue
			}
			m[tag] = mapOf(v.Field(i))
		}
		return m
	case reflect.Slice:
		if v.Type() == reflect.TypeOf(json.RawMessage(nil)) {
			return json.RawMessage(v.Bytes())
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = mapOf(v.Index(i))
		}
		return out
	}
	return v.Interface()
}

func merge(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				merge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

func childEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PORTVAKT_") {
			out = append(out, kv)
		}
	}
	return out
}

// freePorts picks two free loopback ports.
func freePorts() (string, string, error) {
	var addrs []string
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", "", err
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs[0], addrs[1], nil
}

// PostgresDSN is the PostgreSQL to test against: $PORTVAKT_TEST_POSTGRES_DSN,
// or the DSN that scripts/pg.sh wrote to .pgtest/dsn. The test is skipped
// when there is none.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	if dsn := os.Getenv("PORTVAKT_TEST_POSTGRES_DSN"); dsn != "" {
		return dsn
	}
	if root, err := ModuleRoot(); err == nil {
		if b, err := os.ReadFile(filepath.Join(root, ".pgtest", "dsn")); err == nil {
			if dsn := strings.TrimSpace(string(b)); dsn != "" {
				return dsn
			}
		}
	}
	t.Skip("no PostgreSQL: set PORTVAKT_TEST_POSTGRES_DSN or run scripts/pg.sh start")
	return ""
}

// lockedBuffer is a bytes.Buffer safe for the process's writers and the
// test's readers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *lockedBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
}
