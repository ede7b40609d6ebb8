package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

func TestStamp(t *testing.T) {
	info := func(bi *debug.BuildInfo) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) { return bi, bi != nil }
	}
	vcs := func(version string, kv ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{Main: debug.Module{Path: "github.com/portvakt/portvakt", Version: version}}
		for i := 0; i+1 < len(kv); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return bi
	}
	clone := vcs("v0.0.0-20261202050000-0123456789ab+dirty",
		"vcs", "git", "vcs.revision", "0123456789abcdef0123456789abcdef01234567",
		"vcs.time", "2026-12-02T05:00:00Z", "vcs.modified", "true")
	for _, tc := range []struct {
		name             string
		ver, commit, day string
		info             *debug.BuildInfo
		want             string
	}{
		{"ok/ldflags", "v1.2.0", "fedcba9876543210", "2026-12-01T10:00:00Z", clone,
			"v1.2.0 (commit fedcba987654, built 2026-12-01T10:00:00Z)"},
		{"ok/ldflags-version-only", "v1.2.0", "", "", vcs("(devel)"), "v1.2.0"},
		{"ok/go-install-at-version", "", "", "", vcs("v1.3.1"), "v1.3.1"},
		{"ok/go-build-in-a-clone", "", "", "", clone,
			"v0.0.0-20261202050000-0123456789ab+dirty (commit 0123456789ab, modified, built 2026-12-02T05:00:00Z)"},
		{"ok/go-build-without-module-version", "", "", "", vcs("(devel)", "vcs.revision", "0123456789ab", "vcs.time", "2026-12-02T05:00:00Z", "vcs.modified", "false"),
			"devel (commit 0123456789ab, built 2026-12-02T05:00:00Z)"},
		{"ok/no-build-information", "", "", "", nil, "devel"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := stamp(tc.ver, tc.commit, tc.day, info(tc.info)).String(); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestVersionOfBuiltBinaries builds the binary as a release does (-ldflags
// -X) and as `go build` in a clone does (no flags: Go's own build
// information), and runs `version` and `--version` on each.
func TestVersionOfBuiltBinaries(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary twice")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH")
	}
	build := func(t *testing.T, args ...string) string {
		t.Helper()
		bin := filepath.Join(t.TempDir(), "portvakt")
		cmd := exec.Command(goTool, append(append([]string{"build", "-o", bin}, args...), ".")...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		return bin
	}
	run := func(t *testing.T, bin string, args ...string) string {
		t.Helper()
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", bin, args, err, out)
		}
		return string(out)
	}
	check := func(t *testing.T, bin, want string) {
		t.Helper()
		for _, args := range [][]string{{"version"}, {"--version"}} {
			if got := run(t, bin, args...); got != want {
				t.Errorf("portvakt %s printed %q, want %q", args[0], got, want)
			}
		}
	}

	t.Run("ok/ldflags", func(t *testing.T) {
		bin := build(t, "-ldflags", "-X main.version=v9.8.7 -X main.commit=0123456789abcdef0123 -X main.date=2026-01-02T03:04:05Z")
		check(t, bin, "portvakt v9.8.7 (commit 0123456789ab, built 2026-01-02T03:04:05Z)\n")
	})
	t.Run("ok/build-information", func(t *testing.T) {
		// -buildvcs=auto: stamp the commit when this is a git checkout Go
		// recognises (GOFLAGS may say false); what Go stamped, the binary says.
		bin := build(t, "-buildvcs=auto")
		out, err := exec.Command(goTool, "version", "-m", bin).Output()
		if err != nil {
			t.Fatal(err)
		}
		bi := &debug.BuildInfo{}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			switch {
			case len(f) >= 3 && f[0] == "mod":
				bi.Main.Version = f[2]
			case len(f) >= 2 && f[0] == "build":
				if k, v, ok := strings.Cut(f[1], "="); ok {
					bi.Settings = append(bi.Settings, debug.BuildSetting{Key: k, Value: v})
				}
			}
		}
		want := stamp("", "", "", func() (*debug.BuildInfo, bool) { return bi, true }).String()
		t.Logf("go build in this checkout: portvakt %s", want)
		check(t, bin, "portvakt "+want+"\n")
	})
}
