package exchange

import (
	"encoding/json"

	"math"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portvakt/portvakt/internal/norid"
	"github.com/portvakt/portvakt/internal/protocol"
	"github.com/portvakt/portvakt/internal/store"
)

// grantClaims are the checked claims the decision and the token need.
type grantClaims struct {
	replayKey   string
	scopes      []string
	resources   []string
	consumerOrg string
	pid         string
}

// checkClaims checks the claims in docs/protocol.md's order: aud, times, jti, then
// the formats of scope, resource, consumer_org and pid.
func (e *Exchanger) checkClaims(c jwt.MapClaims, assertion string, client store.Client, now time.Time) (grantClaims, error) {
	var g grantClaims
	if !audIs(c["aud"], e.cfg.Issuer) {
		return g, protocol.InvalidGrant("The assertion's aud must be this server's issuer %s, as a string or a one-element array", e.cfg.Issuer)
	}

	iat, ok, err := numericDate(c, "iat")
	if err != nil {
		return g, err
	}
	if !ok {
		return g, protocol.InvalidGrant("The assertion has no iat claim: set it to the current time")
	}
	exp, ok, err := numericDate(c, "exp")
	if err != nil {
		return g, err
	}
	if !ok {
		return g, protocol.InvalidGrant("The assertion has no exp claim: set it at most 120 seconds after iat")
	}
	skew := e.cfg.ClockSkew
	if iat.After(now.Add(skew)) {
		return g, protocol.InvalidGrant("The assertion's iat is %s in the future: check the client's clock", iat.Sub(now).Round(time.Second))
	}
	if !exp.After(now) {
		return g, protocol.InvalidGrant("The assertion has expired (exp is %s in the past): make a new assertion for each request", now.Sub(exp).Round(time.Second))
	}
	if !exp.After(iat) {
		return g, protocol.InvalidGrant("The assertion's exp must be after its iat")
	}
	if exp.Sub(iat) > MaxAssertionLifetime {
		return g, protocol.InvalidGrant("The assertion is valid for %s: exp - iat must be at most 120 seconds", exp.Sub(iat))
	}
	nbf, ok, err := numericDate(c, "nbf")
	if err != nil {
		return g, err
	}
	if ok && nbf.After(now.Add(skew)) {
		return g, protocol.InvalidGrant("The assertion's nbf is %s in the future: it is not valid yet", nbf.Sub(now).Round(time.Second))
	}

	jti := ""
	if v, ok := c["jti"]; ok {
		s, isStr := v.(string)
		if !isStr || s == "" || len(s) > 255 {
			return g, protocol.InvalidGrant("The assertion's jti must be a non-empty string of at most 255 characters")
		}
		jti = s
	}
	g.replayKey = replayKeyOf(jti, assertion)

	sv, ok := c["scope"]
	if !ok {
		return g, protocol.InvalidScope("The assertion has no scope claim: list the scopes you need, separated by spaces")
	}
	s, isStr := sv.(string)
	if !isStr {
		return g, protocol.InvalidScope("The assertion's scope claim must be a string of space-separated scope names")
	}
	g.scopes = splitScopes(s)
	if len(g.scopes) == 0 {
		return g, protocol.InvalidScope("The assertion's scope claim is empty: list the scopes you need, separated by spaces")
	}

	if rv, ok := c["resource"]; ok {
		g.resources, err = resources(rv)
		if err != nil {
			return g, err
		}
	}

	if cv, ok := c["consumer_org"]; ok {
		s, isStr := cv.(string)
		if !isStr || !norid.ValidOrg(s) {
			return g, protocol.InvalidRequest("The consumer_org claim must be a 9-digit organisation number as a JSON string, valid under the mod-11 check")
		}
		if s == client.ClientOrgno {
			return g, protocol.InvalidRequest("The consumer_org claim names the client's own organisation %s: leave it out for a direct token", s)
		}
		g.consumerOrg = s
	}

	if pv, ok := c["pid"]; ok {
		s, isStr := pv.(string)
		if !isStr || !norid.ValidPID(s) {
			return g, protocol.InvalidRequest("The pid claim must be an 11-digit national identity number as a JSON string, valid under both mod-11 checks")
		}
		g.pid = s
	}
	return g, nil
}

func audIs(v any, issuer string) bool {
	switch a := v.(type) {
	case string:
		return a == issuer
	case []any:
		if len(a) != 1 {
			return false
		}
		s, ok := a[0].(string)
		return ok && s == issuer
	}
	return false
}

// numericDate reads a NumericDate claim (RFC 7519: seconds, fractions
// allowed). ok is false when the claim is absent.
func numericDate(c jwt.MapClaims, name string) (time.Time, bool, error) {
	v, ok := c[name]
	if !ok {
		return time.Time{}, false, nil
	}
	n, isNum := v.(json.Number)
	if !isNum {
		return time.Time{}, false, protocol.InvalidGrant("The assertion's %s claim must be a number of seconds since the epoch", name)
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || f < 0 || f > 1e11 {
		return time.Time{}, false, protocol.InvalidGrant("The assertion's %s claim is not a valid time", name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}

// splitScopes splits on runs of spaces; a repeated name counts once, first
// position kept.
func splitScopes(s string) []string {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' })
	out := fields[:0]
	for _, f := range fields {
		if !contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

func resources(v any) ([]string, error) {
	var list []string
	switch r := v.(type) {
	case string:
		list = []string{r}
	case []any:
		if len(r) == 0 {
			return nil, protocol.InvalidTarget("The resource claim is an empty array: leave it out or name at least one absolute URI")
		}
		for _, x := range r {
			s, ok := x.(string)
			if !ok {
				return nil, protocol.InvalidTarget("The resource claim must be an absolute URI or an array of them")
			}
			list = append(list, s)
		}
	default:
		return nil, protocol.InvalidTarget("The resource claim must be an absolute URI or an array of them")
	}
	if len(list) > 20 {
		return nil, protocol.InvalidTarget("The resource claim names %d resources; at most 20 are accepted", len(list))
	}
	out := make([]string, 0, len(list))
	for _, s := range list {
		if !protocol.ValidResource(s) {
			return nil, protocol.InvalidTarget("The resource %q is not an absolute URI", clip(s, 128))
		}
		if !contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
