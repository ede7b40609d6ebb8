package server_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portvakt/portvakt/internal/server"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// capped serves h on a loopback listener capped at max connections. open
// is the number of connections the http.Server holds open.
func capped(t *testing.T, max int, h http.Handler) (addr string, logs *syncBuffer, open func() int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs = &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	srv := server.NewHTTPServer(ln.Addr().String(), h, server.Settings{
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: time.Minute,
	}, log)
	var n atomic.Int64
	srv.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			n.Add(1)
		case http.StateClosed, http.StateHijacked:
			n.Add(-1)
		}
	}
	capLn := server.CapConnections(srv, ln, max, log)
	go srv.Serve(capLn)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return ln.Addr().String(), logs, n.Load
}

// idleConn makes one request on a new connection and keeps it open (idle
// keep-alive), or with send false only connects.
func idleConn(t *testing.T, addr string, send bool) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if !send {
		return c
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("request on connection: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	c.SetDeadline(time.Time{})
	return c
}

// fresh sends one request on a new connection and returns how long the
// answer took.
func fresh(t *testing.T, addr string) (time.Duration, error) {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	resp, err := hc.Get("http://" + addr + "/")
	if err != nil {
		return time.Since(start), err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return time.Since(start), nil
}

func TestConnectionCap(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	t.Run("ok/flood-of-idle-connections", func(t *testing.T) {
		const max = 64
		addr, logs, open := capped(t, max, ok)
		// Three times the cap in idle keep-alive connections, and as many
		// that never send a byte.
		var first net.Conn
		for i := range 3 * max {
			c := idleConn(t, addr, true)
			if i == 0 {
				first = c
			}
		}
		for range 3 * max {
			idleConn(t, addr, false)
		}
		took, err := fresh(t, addr)
		if err != nil {
			t.Fatalf("fresh request at the cap: %v", err)
		}
		t.Logf("fresh request with %d idle connections over a cap of %d: answered in %v", 6*max, max, took.Round(time.Millisecond))
		if took > 2*time.Second {
			t.Errorf("fresh request took %v, want well under 2s", took)
		}
		if !strings.Contains(logs.String(), "connection cap reached") {
			t.Errorf("no cap log line in:\n%s", logs.String())
		}
		// The server holds no more than the cap (the evicted ones close
		// asynchronously), and the oldest idle connection was closed.
		deadline := time.Now().Add(5 * time.Second)
		for open() > max && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := open(); n > max {
			t.Errorf("the server holds %d connections, want at most the cap %d", n, max)
		}
		first.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := first.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("the oldest idle connection: read %v, want EOF (closed by the server)", err)
		}
		// At most once a second: the whole flood took less than a few.
		if n := strings.Count(logs.String(), "connection cap reached"); n > 5 {
			t.Errorf("%d cap log lines, want at most one a second", n)
		}
	})
	t.Run("fail/every-connection-busy", func(t *testing.T) {
		const max = 8
		release := make(chan struct{})
		var started sync.WaitGroup
		busy := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/busy" {
				started.Done()
				<-release
			}
			io.WriteString(w, "ok")
		})
		addr, logs, _ := capped(t, max, busy)
		started.Add(max)
		var done sync.WaitGroup
		for range max {
			done.Go(func() {
				hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
				if resp, err := hc.Get("http://" + addr + "/busy"); err == nil {
					resp.Body.Close()
				}
			})
		}
		started.Wait()
		if _, err := fresh(t, addr); err == nil {
			t.Error("a request past the cap with every connection busy was served")
		}
		close(release)
		done.Wait()
		// Room again once the busy ones finished.
		deadline := time.Now().Add(5 * time.Second)
		for {
			if _, err := fresh(t, addr); err == nil {
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("no room after the busy connections closed: %v", err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if !strings.Contains(logs.String(), "refused=1") {
			t.Errorf("the cap log line does not count the refusal:\n%s", logs.String())
		}
	})
}
