package scaleout_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/pgtest"
)

// cluster is a throwaway PostgreSQL server of the test's own, started with
// the binaries scripts/pg.sh uses, on a loopback port, so a test can stop
// it without disturbing the shared server of the other tests.
type cluster struct {
	bindir, dir, port string
	opts              []string
	// DSN is the postgres database as the superuser.
	DSN string
}

// pgBindir finds initdb and pg_ctl as scripts/pg.sh does.
func pgBindir() (string, bool) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if _, err := exec.LookPath("initdb"); err == nil {
			if r, err := filepath.EvalSymlinks(p); err == nil {
				return filepath.Dir(r), true
			}
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, true
		}
	}
	return "", false
}

// startCluster initdbs and starts a cluster; it is stopped (immediately)
// and removed when the test ends. opts are extra `-c name=value` settings.
func startCluster(t *testing.T, opts ...string) *cluster {
	t.Helper()
	bindir, ok := pgBindir()
	if !ok {
		pgtest.Unavailable(t, "initdb/pg_ctl not found (scripts/pg.sh start installs PostgreSQL)")
	}
	dir, err := os.MkdirTemp("", "portvakt-scaleout-pg-")
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{bindir: bindir, dir: dir, opts: opts}
	t.Cleanup(func() {
		c.pgctl(context.Background(), "-m", "immediate", "-w", "-t", "30", "stop")
		os.RemoveAll(dir)
	})
	if os.Geteuid() == 0 {
		// postgres refuses to run as root: the cluster belongs to the
		// postgres user (scripts/pg.sh creates it).
		u, err := user.Lookup("postgres")
		if err != nil {
			pgtest.Unavailable(t, "running as root without a postgres user (run scripts/pg.sh start once)")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if out, err := c.run(ctx, "initdb", "-D", c.data(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, c.port, _ = net.SplitHostPort(ln.Addr().String())
	ln.Close()
	c.DSN = "postgres://postgres@127.0.0.1:" + c.port + "/postgres?sslmode=disable"
	c.start(t)
	return c
}

func (c *cluster) data() string { return filepath.Join(c.dir, "data") }

func (c *cluster) run(ctx context.Context, tool string, args ...string) (string, error) {
	bin := filepath.Join(c.bindir, tool)
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", bin}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, bin, args...)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (c *cluster) pgctl(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return c.run(ctx, "pg_ctl", append([]string{"-D", c.data()}, args...)...)
}

// start starts (or restarts) the server on the same port and data.
func (c *cluster) start(t *testing.T) {
	t.Helper()
	o := "-c listen_addresses=127.0.0.1 -p " + c.port + " -k " + c.dir +
		" -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
	for _, s := range c.opts {
		o += " -c " + s
	}
	if out, err := c.pgctl(t.Context(), "-l", filepath.Join(c.dir, "server.log"), "-o", o, "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
		t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
}

// kill stops the server at once, as a crash would (no shutdown checkpoint,
// clients cut off).
func (c *cluster) kill(t *testing.T) {
	t.Helper()
	if out, err := c.pgctl(t.Context(), "-m", "immediate", "-w", "-t", "30", "stop"); err != nil {
		t.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
}

func (c *cluster) String() string { return fmt.Sprintf("cluster %s on 127.0.0.1:%s", c.dir, c.port) }
