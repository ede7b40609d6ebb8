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

// errRefused marks a delivery the worker will not make because of where it
// would go; errPermanent one that no retry can fix. Both wrap the reason.
var (
	errRefused   = errors.New("refused")
	errPermanent = errors.New("permanent")
)

// checkURL is the webhook URL rule (records.CheckWebhookURL), checked again
// before every delivery: the row may predate the rule or have been written
// by hand.
func checkURL(raw string) (*url.URL, error) {
	if errs := records.CheckWebhookURL("url", raw); len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w: webhook %s", errPermanent, errRefused, errs[0].Detail)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w: webhook URL: %v", errPermanent, errRefused, err)
	}
	return u, nil
}

// transports are the two ways out: https to wherever the URL points, and
// plain http only to loopback addresses, checked where the connection is
// made (after resolution: a name that resolves elsewhere is refused, and
// the address dialled is the one checked).
type transports struct {
	https, http *http.Client
}

func newTransports(c *Config) transports {
	dial := c.Dial
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
		https: base(dial),
		http: base(func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialLoopback(ctx, c, network, addr)
		}),
	}
}

func (t transports) client(u *url.URL) *http.Client {
	if u.Scheme == "https" {
		return t.https
	}
	return t.http
}

// dialLoopback dials addr only when its host is, or resolves only to,
// loopback addresses; it dials the address it checked.
func dialLoopback(ctx context.Context, c *Config, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errRefused, err)
	}
	var ips []net.IP
	if ip := net.ParseIP(host); ip != nil {
		ips = []net.IP{ip}
	} else {
		if ips, err = c.LookupIP(ctx, host); err != nil {
			return nil, err
		}
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("%s resolves to nothing", host)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return nil, fmt.Errorf("%w: http to %s, which resolves to %s, not a loopback address", errRefused, host, ip)
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
