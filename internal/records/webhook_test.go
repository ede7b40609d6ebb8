package records_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/portvakt/portvakt/internal/records"
	"github.com/portvakt/portvakt/internal/store"
)

func TestValidateWebhook(t *testing.T) {
	long := "https://hooks.example.no/" + strings.Repeat("a", records.MaxWebhookURL-len("https://hooks.example.no/"))
	cases := []struct {
		name string
		w    store.Webhook
		want []string
	}{
		{"ok/https", store.Webhook{URL: "https://hooks.example.no/portvakt?x=1"}, nil},
		{"ok/https-port-ip", store.Webhook{URL: "https://192.0.2.7:8443/hook"}, nil},
		{"ok/http-127", store.Webhook{URL: "http://127.0.0.1:9000/hook"}, nil},
		{"ok/http-127-other", store.Webhook{URL: "http://127.3.2.1/hook"}, nil},
		{"ok/http-localhost", store.Webhook{URL: "http://LOCALHOST:9000/"}, nil},
		{"ok/http-ipv6-loopback", store.Webhook{URL: "http://[::1]:9000/hook"}, nil},
		{"ok/url-at-bound", store.Webhook{URL: long}, nil},
		{"ok/events", store.Webhook{URL: "https://h.example.no/", Events: []string{store.EventAccessRequested, store.EventSigningKeyRotated}}, nil},
		{"ok/every-event", store.Webhook{URL: "https://h.example.no/", Events: store.EventNames}, nil},
		{"fail/empty-url", store.Webhook{}, []string{"url"}},
		{"fail/url-too-long", store.Webhook{URL: long + "a"}, []string{"url"}},
		{"fail/http-remote", store.Webhook{URL: "http://hooks.example.no/"}, []string{"url"}},
		{"fail/http-private-ip", store.Webhook{URL: "http://10.0.0.1/"}, []string{"url"}},
		{"fail/http-localhost-lookalike", store.Webhook{URL: "http://localhost.example.no/"}, []string{"url"}},
		{"fail/http-unspecified", store.Webhook{URL: "http://0.0.0.0:9000/"}, []string{"url"}},
		{"fail/https-link-local", store.Webhook{URL: "https://169.254.169.254/latest/meta-data/"}, []string{"url"}},
		{"fail/https-link-local-v6", store.Webhook{URL: "https://[fe80::1]/"}, []string{"url"}},
		{"fail/https-multicast", store.Webhook{URL: "https://224.0.0.1/"}, []string{"url"}},
		{"fail/https-unspecified", store.Webhook{URL: "https://[::]/"}, []string{"url"}},
		{"fail/ftp", store.Webhook{URL: "ftp://hooks.example.no/"}, []string{"url"}},
		{"fail/relative", store.Webhook{URL: "/hook"}, []string{"url"}},
		{"fail/no-host", store.Webhook{URL: "https:///hook"}, []string{"url"}},
		{"fail/opaque", store.Webhook{URL: "https:hooks.example.no"}, []string{"url"}},
		{"fail/userinfo", store.Webhook{URL: "https://user:pw@hooks.example.no/"}, []string{"url"}},
		{"fail/userinfo-name-only", store.Webhook{URL: "https://user@hooks.example.no/"}, []string{"url"}},
		{"fail/fragment", store.Webhook{URL: "https://hooks.example.no/#x"}, []string{"url"}},
		{"fail/empty-fragment", store.Webhook{URL: "https://hooks.example.no/#"}, []string{"url"}},
		{"fail/space", store.Webhook{URL: "https://hooks.example.no/a b"}, []string{"url"}},
		{"fail/newline", store.Webhook{URL: "https://hooks.example.no/\n"}, []string{"url"}},
		{"fail/unknown-event", store.Webhook{URL: "https://h.example.no/", Events: []string{"access.requested", "token.issued"}}, []string{"events[1]"}},
		{"fail/event-twice", store.Webhook{URL: "https://h.example.no/", Events: []string{"access.denied", "access.denied"}}, []string{"events[1]"}},
		{"fail/too-many-events", store.Webhook{URL: "https://h.example.no/", Events: append(slices.Clone(store.EventNames), "x")}, []string{"events"}},
		{"fail/everything", store.Webhook{URL: "http://example.no/", Events: []string{""}}, []string{"url", "events[0]"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			errs := records.ValidateWebhook(c.w)
			if got := fields(errs); !slices.Equal(got, c.want) {
				t.Fatalf("fields %q (%v), want %q", got, errs, c.want)
			}
		})
	}
}
