package testserver

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// BinaryEnv names a prebuilt portvakt binary to use instead of building one
// (CI can build once for every test package).
const BinaryEnv = "PORTVAKT_TEST_BINARY"

var build struct {
	once sync.Once
	dir  string // temporary directory holding the binary
	path string
	err  error
}

// Binary returns the path of a portvakt binary built from this module's
// source (CGO_ENABLED=0), building it on the first call of the test process.
func Binary(t testing.TB) string {
	t.Helper()
	root, err := ModuleRoot()
	if err != nil {
		t.Fatalf("testserver: %v", err)
	}
	// go test caches a package's result keyed on the files the test opened
	// or stat'ed; the server's source is read by `go build`, a child, so
	// stat it here to make a change to the server rerun the tests.
	statSources(root)
	if p := os.Getenv(BinaryEnv); p != "" {
		return p
	}
	build.once.Do(func() {
		build.dir, build.err = os.MkdirTemp("", "portvakt-testserver-")
		if build.err != nil {
			return
		}
		build.path = filepath.Join(build.dir, "portvakt")
		cmd := exec.Command(goTool(), "build", "-o", build.path, "./cmd/portvakt")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			build.err = fmt.Errorf("go build ./cmd/portvakt: %v\n%s", err, out.String())
		}
	})
	if build.err != nil {
		t.Fatalf("testserver: %v", build.err)
	}
	return build.path
}

// Main runs the tests and then removes the binary that Binary built. Use it
// from TestMain so no binary is left in the temporary directory:
//
//	func TestMain(m *testing.M) { os.Exit(testserver.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	if build.dir != "" {
		_ = os.RemoveAll(build.dir)
	}
	return code
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if root := os.Getenv("GOROOT"); root != "" {
		return filepath.Join(root, "bin", "go")
	}
	return "go"
}

const modulePath = "github.com/portvakt/portvakt"

// ModuleRoot finds the directory of this module's go.mod, walking up from
// the working directory (a test runs in its package's directory).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module "+modulePath+"\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("module root of " + modulePath + " not found above the working directory")
		}
		dir = parent
	}
}

var statOnce sync.Once

// statSources stats every source file the server build reads (Go files,
// go.mod, go.sum, embedded configs), once per process.
func statSources(root string) {
	statOnce.Do(func() {
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.IsDir() {
				name := d.Name()
				if p != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
					return filepath.SkipDir
				}
				return nil
			}
			switch filepath.Ext(p) {
			case ".go", ".yaml", ".sql", ".json":
			default:
				if name := d.Name(); name != "go.mod" && name != "go.sum" {
					return nil
				}
			}
			if strings.HasSuffix(p, "_test.go") {
				return nil
			}
			_, _ = os.Stat(p)
			return nil
		})
	})
}
