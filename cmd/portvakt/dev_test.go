package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/config"
	"github.com/portvakt/portvakt/internal/devmode"
	"github.com/portvakt/portvakt/internal/telemetry"
)

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// shellWords splits a printed command line, honouring double quotes and a
// leading VAR=value environment assignment.
func shellWords(line string) (env map[string]string, args []string) {
	env = map[string]string{}
	var cur strings.Builder
	inQ, have := false, false
	flush := func() {
		if have {
			args = append(args, cur.String())
		}
		cur.Reset()
		have = false
	}
	for _, r := range line {
		switch {
		case r == '"':
			inQ, have = !inQ, true
		case r == ' ' && !inQ:
			flush()
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	flush()
	for len(args) > 0 && strings.Contains(args[0], "=") && !strings.HasPrefix(args[0], "-") {
		k, v, _ := strings.Cut(args[0], "=")
		env[k] = v
		args = args[1:]
	}
	return env, args
}

// TestDevModePrintedCommandsWork starts what `serve --dev` starts and runs
// every token command it prints, as a user pasting them would.
func TestDevModePrintedCommandsWork(t *testing.T) {
	cfg, _ := startDev(t, newLoggerFor(t))
	printed := devmode.Commands("portvakt", cfg.Issuer, cfg.DataDir)
	// run runs each printed command holding what (in the order printed),
	// as a user pasting it would, and returns their outputs.
	run := func(what string) (lines, outs []string) {
		for _, line := range strings.Split(printed, "\n") {
			line = strings.TrimSpace(line)
			if strings.HasPrefix(line, "#") || !strings.Contains(line, what) {
				continue
			}
			env, args := shellWords(line)
			if args[0] != "portvakt" {
				t.Fatalf("printed command does not start with the program: %q", line)
			}
			for k, v := range env {
				t.Setenv(k, v)
			}
			var out bytes.Buffer
			root := rootCmd()
			root.SetOut(&out)
			root.SetErr(&out)
			root.SetArgs(args[1:])
			if err := root.ExecuteContext(t.Context()); err != nil {
				t.Fatalf("%s\n%v\n%s", line, err, out.String())
			}
			lines, outs = append(lines, line), append(outs, out.String())
		}
		return lines, outs
	}
	lines, outs := run("portvakt token")
	for i, text := range outs {
		var resp map[string]any
		if err := json.NewDecoder(strings.NewReader(text)).Decode(&resp); err != nil || resp["access_token"] == nil {
			t.Fatalf("%s: %v %s", lines[i], err, text)
		}
		if !strings.Contains(text, `"typ": "at+jwt"`) {
			t.Fatalf("--decode did not print the header: %s", text)
		}
		if strings.Contains(lines[i], "--consumer-org") && !strings.Contains(text, `"supplier"`) {
			t.Fatalf("delegated token without supplier: %s", text)
		}
	}
	if n := len(lines); n != 3 {
		t.Fatalf("%d token commands printed, want 3:\n%s", n, printed)
	}
	// The admin commands: each must succeed.
	lines, _ = run("portvakt admin")
	n := len(lines)
	if n != 5 {
		t.Fatalf("%d admin commands printed, want 5:\n%s", n, printed)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "pki", "vendor", "cert.p12")); err != nil {
		t.Fatal(err)
	}
}

// startDev starts what `serve --dev` starts, in a temp data directory on
// free loopback ports, and stops it when the test ends.
func startDev(t testing.TB, log *slog.Logger, tune ...func(*telemetry.Config)) (*config.Config, *app) {
	t.Helper()
	dir := t.TempDir()
	listen, ops := freePort(t), freePort(t)
	t.Setenv("PORTVAKT_DATA_DIR", filepath.Join(dir, "dev"))
	t.Setenv("PORTVAKT_LISTEN", listen)
	t.Setenv("PORTVAKT_OPS_LISTEN", ops)
	cfg, err := loadConfig("", true)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Issuer != "http://"+listen+"/" {
		t.Fatalf("dev issuer %q", cfg.Issuer)
	}
	return cfg, startApp(t, cfg, log, tune...)
}

// startApp builds and runs cfg on its listen addresses until the test ends.
func startApp(t testing.TB, cfg *config.Config, log *slog.Logger, tune ...func(*telemetry.Config)) *app {
	t.Helper()
	pl, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	ol, err := net.Listen("tcp", cfg.Ops.Listen)
	if err != nil {
		pl.Close()
		t.Fatal(err)
	}
	a := runApp(t, cfg, log, pl, ol, tune...)
	waitReady(t, "http://"+cfg.Ops.Listen+"/readyz")
	return a
}

// runApp builds cfg and serves it on pub and ops until the test ends.
func runApp(t testing.TB, cfg *config.Config, log *slog.Logger, pub, ops net.Listener, tune ...func(*telemetry.Config)) *app {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := build(ctx, cfg, log, tune...)
	if err != nil {
		cancel()
		pub.Close()
		ops.Close()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.run(ctx, pub, ops) }()
	t.Cleanup(func() {
		cancel()
		<-done
		a.close()
	})
	return a
}

// readConfig reads and validates the config file at path.
func readConfig(t testing.TB, path string) *config.Config {
	t.Helper()
	cfg, err := config.Read(path, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func newLoggerFor(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func waitReady(t testing.TB, url string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never became ready", url)
}
