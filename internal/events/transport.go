package events

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/portvakt/portvakt/internal/records"
)

// refusal is a delivery the worker will not make, because of where it
// would go or what the webhook is; permanent when no retry can change that.
type refusal struct {
	reason    string
	permanent bool
}

func (r *refusal) Error() string { return "refused: " + r.reason }

// checkURL is the webhook URL rule (records.CheckWebhookURL), checked again
// before every delivery: the row may predate the rule or have been written
// by hand.
func checkURL(raw string) (*url.URL, error) {
	if errs := records.CheckWebhookURL("url", raw); len(errs) > 0 {
		return nil, &refusal{reason: "the webhook URL " + errs[0].Detail, permanent: true}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, &refusal{reason: "the webhook URL is not a URL", permanent: true}
	}
	return u, nil
}

// transports are the two ways out: https to any routable address, and
// plain http only to loopback addresses. Both are checked where the
// connection is made, after resolution (a name that resolves to a refused
// address is refused, and the address dialled is the one checked). https
// never goes to a link-local address (cloud metadata services live there),
// a multicast or an unspecified one: no receiver is reached that way, and
// a webhook must not become a way to reach them.
type transports struct {
	https, http *http.Client
}

func newTransports(c *Config) transports {
	base := func(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Client {
		return &http.Client{
			Timeout: c.Timeout,
			Transport: &http.Transport{
				// No proxy from the environment: where an event goes is
				// the webhook's URL, checked here, nothing else.
				Proxy:               nil,
				DialContext:         dial,
				TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: c.RootCAs},
				TLSHandshakeTimeout: c.Timeout,
				MaxIdleConns:        c.MaxInFlight,
				MaxIdleConnsPerHost: 2,
				IdleConnTimeout:     c.Poll * 10,
				ForceAttemptHTTP2:   true,
			},
			// A receiver acknowledges with 2xx; a redirect is not an
			// acknowledgement and is not followed.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return transports{
		https: base(func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialChecked(ctx, c, network, addr, routable, "not a routable address")
		}),
		http: base(func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialChecked(ctx, c, network, addr, net.IP.IsLoopback, "not a loopback address")
		}),
	}
}

// routable: an address a receiver may have.
func routable(ip net.IP) bool {
	return !ip.IsUnspecified() && !ip.IsLinkLocalUnicast() && !ip.IsLinkLocalMulticast() &&
		!ip.IsInterfaceLocalMulticast() && !ip.IsMulticast()
}

func (t transports) client(u *url.URL) *http.Client {
	if u.Scheme == "https" {
		return t.https
	}
	return t.http
}

// dialChecked dials addr only when its host is, or resolves only to,
// addresses that pass ok; it dials the address it checked.
func dialChecked(ctx context.Context, c *Config, network, addr string, ok func(net.IP) bool, why string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &refusal{reason: err.Error()}
	}
	var ips []net.IP
	if ip := net.ParseIP(host); ip != nil {
		ips = []net.IP{ip}
	} else if ips, err = c.LookupIP(ctx, host); err != nil {
		return nil, err
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("%s resolves to nothing", host)
	}
	for _, ip := range ips {
		if !ok(ip) {
			return nil, &refusal{reason: fmt.Sprintf("%s resolves to %s, %s", host, ip, why)}
		}
	}
	return c.Dial(ctx, network, net.JoinHostPort(ips[0].String(), port))
}

// describe turns a transport error into the text kept with the attempt,
// without the URL (the webhook's own view shows it already).
func describe(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	s := err.Error()
	if strings.Contains(s, "Client.Timeout") || errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return s
}
