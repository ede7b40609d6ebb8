package records

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/portvakt/portvakt/internal/store"
)

// MaxWebhookURL is the longest webhook URL, in bytes.
const MaxWebhookURL = 2048

// ValidateWebhook checks what an org may set on its webhook: url
// (CheckWebhookURL) and events (each one of store.EventNames, at most once;
// empty means every event). The id, the org and the timestamps are the
// caller's.
func ValidateWebhook(w store.Webhook) []FieldError {
	errs := CheckWebhookURL("url", w.URL)
	return append(errs, checkEventNames("events", w.Events)...)
}

// CheckWebhookURL checks a webhook URL: an absolute https URL, or http to a
// loopback host (localhost, 127.0.0.0/8, ::1) for receivers on the same
// machine; at most MaxWebhookURL bytes, no user information (credentials in
// a URL end up in logs), no fragment (never sent), no whitespace or control
// characters; not a link-local, multicast or unspecified IP address. The
// delivery worker checks it again before every delivery, and also where
// the host resolves to.
func CheckWebhookURL(field, raw string) []FieldError {
	if raw == "" {
		return fieldError(field, "is required")
	}
	if len(raw) > MaxWebhookURL {
		return fieldError(field, "is longer than %d bytes", MaxWebhookURL)
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c <= ' ' || c == 0x7f {
			return fieldError(field, "holds a space or a control character (byte %d)", i+1)
		}
	}
	if strings.Contains(raw, "#") {
		return fieldError(field, "must not have a fragment (#...)")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fieldError(field, "is not a URL")
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return fieldError(field, "must be an https URL (or http to a loopback address)")
	case u.Opaque != "" || u.Host == "":
		return fieldError(field, "must be an absolute URL with a host")
	case u.User != nil:
		return fieldError(field, "must not hold user information (user:password@)")
	case u.Hostname() == "":
		return fieldError(field, "must be an absolute URL with a host")
	case u.Scheme == "http" && !LoopbackHost(u.Hostname()):
		return fieldError(field, "must be https; http is only for a loopback host (localhost, 127.0.0.1, [::1])")
	}
	if ip := net.ParseIP(u.Hostname()); ip != nil && (ip.IsUnspecified() || ip.IsLinkLocalUnicast() || ip.IsMulticast()) {
		return fieldError(field, "must not be a link-local, multicast or unspecified address")
	}
	return nil
}

// LoopbackHost reports whether host names the local machine by itself:
// "localhost" or a loopback IP literal. It does not resolve names.
func LoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkEventNames: each known name at most once, so the list is bounded by
// the number of names (checked first).
func checkEventNames(field string, names []string) []FieldError {
	if len(names) > len(store.EventNames) {
		return fieldError(field, "lists %d events; there are %d, each listed at most once", len(names), len(store.EventNames))
	}
	var errs []FieldError
	for i, n := range names {
		f := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case !slices.Contains(store.EventNames, n):
			errs = append(errs, fieldError(f, "is not an event; the events are %s", strings.Join(store.EventNames, ", "))...)
		case slices.Index(names, n) < i:
			errs = append(errs, fieldError(f, "%s is listed twice", n)...)
		}
	}
	return errs
}
