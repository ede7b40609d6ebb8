package server

import (
	"container/list"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// ConnCap caps a listener's open connections (docs/protocol.md). At the cap, a new
// connection makes room by closing the oldest idle keep-alive connection,
// or else the oldest connection that has not sent a byte of a request yet
// (as nginx reuses idle keep-alive connections); it is refused (closed at
// once) only when every open connection is busy with a request. So a flood
// of idle connections cannot keep a fresh request from being answered,
// and the process never holds more than Max connections' file
// descriptors. When the cap is hit it logs, at most once a second.
//
// Use it through CapConnections, which wires both halves: the listener
// that counts and evicts, and the http.Server's ConnState hook that tells
// idle connections from busy ones.
type ConnCap struct {
	Max int
	Log *slog.Logger
	Now func() time.Time

	mu      sync.Mutex
	open    int
	idle    list.List // *capConn, idle keep-alive, oldest first
	fresh   list.List // *capConn, accepted, no request byte yet, oldest first
	lastLog time.Time
	evicted int // since the last log line
	refused int
}

// CapConnections caps srv's connections on ln at max (max < 1: no cap) and
// returns the listener to serve. It sets srv.ConnState (keeping a hook set
// before).
func CapConnections(srv *http.Server, ln net.Listener, max int, log *slog.Logger) net.Listener {
	if max < 1 {
		return ln
	}
	c := &ConnCap{Max: max, Log: log}
	prev := srv.ConnState
	srv.ConnState = func(nc net.Conn, st http.ConnState) {
		c.ConnState(nc, st)
		if prev != nil {
			prev(nc, st)
		}
	}
	return c.Listener(ln)
}

// Listener wraps ln: every accepted connection is counted.
func (c *ConnCap) Listener(ln net.Listener) net.Listener {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return &capListener{Listener: ln, cap: c}
}

// Open is the number of connections counted as open.
func (c *ConnCap) Open() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open
}

type capListener struct {
	net.Listener
	cap *ConnCap
}

func (l *capListener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if cc := l.cap.admit(nc); cc != nil {
			return cc, nil
		}
		nc.Close()
	}
}

// capConn is a counted connection.
type capConn struct {
	net.Conn
	cap    *ConnCap
	in     *list.List // the list holding elem, nil when busy
	elem   *list.Element
	closed bool // guarded by cap.mu
	once   sync.Once
}

func (cc *capConn) Close() error {
	err := cc.Conn.Close()
	cc.once.Do(func() { cc.cap.release(cc) })
	return err
}

// admit counts nc, making room when at the cap; nil when every connection
// is busy.
func (c *ConnCap) admit(nc net.Conn) *capConn {
	c.mu.Lock()
	var victim *capConn
	atCap := c.open >= c.Max
	if atCap {
		for _, l := range []*list.List{&c.idle, &c.fresh} {
			if e := l.Front(); e != nil {
				victim = e.Value.(*capConn)
				c.unlist(victim)
				break
			}
		}
		if victim != nil {
			c.evicted++
		} else {
			c.refused++
		}
	}
	var cc *capConn
	if !atCap || victim != nil {
		c.open++ // the victim's release takes it back below the cap
		cc = &capConn{Conn: nc, cap: c}
		c.list(cc, &c.fresh)
	}
	var logArgs []any
	if now := c.Now(); atCap && (c.lastLog.IsZero() || now.Sub(c.lastLog) >= time.Second) {
		c.lastLog = now
		logArgs = []any{"max", c.Max, "open", c.open, "closed_idle", c.evicted, "refused", c.refused}
		c.evicted, c.refused = 0, 0
	}
	c.mu.Unlock()
	if victim != nil {
		victim.Close()
	}
	if logArgs != nil {
		c.Log.Warn("connection cap reached: closing idle connections to make room", logArgs...)
	}
	return cc
}

func (c *ConnCap) release(cc *capConn) {
	c.mu.Lock()
	c.unlist(cc)
	cc.closed = true
	c.open--
	c.mu.Unlock()
}

// ConnState follows the http.Server's view of each connection: idle ones
// may be evicted, busy ones not.
func (c *ConnCap) ConnState(nc net.Conn, st http.ConnState) {
	if tc, ok := nc.(interface{ NetConn() net.Conn }); ok {
		nc = tc.NetConn() // a TLS connection over a counted one
	}
	cc, ok := nc.(*capConn)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc.closed {
		return
	}
	switch st {
	case http.StateIdle:
		c.unlist(cc)
		c.list(cc, &c.idle)
	case http.StateActive, http.StateHijacked, http.StateClosed:
		c.unlist(cc)
	}
}

// list and unlist move cc; the caller holds c.mu.
func (c *ConnCap) list(cc *capConn, l *list.List) {
	cc.in, cc.elem = l, l.PushBack(cc)
}

func (c *ConnCap) unlist(cc *capConn) {
	if cc.in != nil {
		cc.in.Remove(cc.elem)
		cc.in, cc.elem = nil, nil
	}
}
