package config

import (
	"strings"
	"testing"
	"time"
)

func TestRateLimitDefaults(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		dev  bool
		on   bool
	}{
		{"ok/on-by-default", "", false, true},
		{"ok/off-by-default-in-dev", "", true, false},
		{"ok/on-in-dev-when-asked", "rate_limit: {enabled: true}\n", true, true},
		{"ok/off-when-asked", "rate_limit: {enabled: false}\n", false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml), "", tc.dev)
			if err != nil {
				t.Fatal(err)
			}
			if c.RateLimit.On() != tc.on {
				t.Errorf("On() = %v, want %v", c.RateLimit.On(), tc.on)
			}
			r := c.RateLimit
			if r.Client != (RateSpec{20, 40}) || r.Org != (RateSpec{100, 200}) || r.Address != (RateSpec{10, 20}) ||
				r.MaxAddresses != 100000 || r.SyncInterval != 200*time.Millisecond || c.Server.MaxConnections != 4096 {
				t.Errorf("defaults: %+v, max_connections %d", r, c.Server.MaxConnections)
			}
		})
	}
	t.Run("ok/env-switches-off", func(t *testing.T) {
		t.Setenv("PORTVAKT_RATE_LIMIT_ENABLED", "false")
		c, err := Parse(nil, "", false)
		if err != nil {
			t.Fatal(err)
		}
		if c.RateLimit.On() {
			t.Error("PORTVAKT_RATE_LIMIT_ENABLED=false left the limits on")
		}
	})
	t.Run("ok/override-inherits", func(t *testing.T) {
		c, err := Parse([]byte(`
rate_limit:
  client: {per_second: 5}
  clients:
    - {client_id: a}
    - {client_id: b, per_second: 50}
    - {client_id: c, per_second: 50, burst: 7}
`), "", false)
		if err != nil {
			t.Fatal(err)
		}
		got := c.RateLimit.Clients
		want := []RateOverride{{"a", 5, 10}, {"b", 50, 100}, {"c", 50, 7}}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("clients[%d] = %+v, want %+v", i, got[i], want[i])
			}
		}
		if c.RateLimit.Client != (RateSpec{5, 10}) {
			t.Errorf("client = %+v", c.RateLimit.Client)
		}
	})
}

func TestRateLimitValidateReportsEveryProblem(t *testing.T) {
	c, err := Parse([]byte(`
issuer: https://auth.example.no/
platform: {org: "310000019"}
trust: {roots: [x.pem]}
server: {max_connections: -1}
rate_limit:
  client: {per_second: -1, burst: -2}
  org: {per_second: 2000000}
  address: {burst: -1}
  max_addresses: -5
  sync_interval: 10ms
  clients:
    - {per_second: 1}
    - {client_id: x, burst: -3}
    - {client_id: x}
`), "", false)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, key := range []string{"server.max_connections:", "rate_limit.client.per_second:", "rate_limit.client.burst:",
		"rate_limit.org.per_second:", "rate_limit.address.burst:", "rate_limit.max_addresses:", "rate_limit.sync_interval:",
		"rate_limit.clients[0].client_id:", "rate_limit.clients[1].burst:", "rate_limit.clients[2].client_id:"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("missing problem for %s in:\n%v", key, err)
		}
	}
}
