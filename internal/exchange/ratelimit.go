package exchange

import (
	"fmt"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portvakt/portvakt/internal/protocol"
	"github.com/portvakt/portvakt/internal/ratelimit"
	"github.com/portvakt/portvakt/internal/rules"
)

// limit counts the request against the rate limits (docs/protocol.md). It runs in
// the key callback: the assertion is decoded, but no key, certificate or
// signature has been touched, so a request over the limit costs a map
// lookup. A known, active client (by the unverified iss) is counted against
// its own bucket and its organisation's; anything else against the source
// address.
func (e *Exchanger) limit(snap *rules.Snapshot, t *jwt.Token, remoteAddr string, res *Result) error {
	if e.cfg.Limits == nil {
		return nil
	}
	claims, _ := t.Claims.(jwt.MapClaims)
	iss, _ := claims["iss"].(string)
	if c, ok := snap.Client(iss); ok && c.Active {
		res.ClientID = c.ClientID
		v := e.cfg.Limits.AllowClient(c.ClientID, c.ClientOrgno)
		switch v.Kind {
		case "":
			return nil
		case ratelimit.KindOrg:
			return protocol.RateLimited(v.RetryAfter,
				"The rate limit of the client's organisation %s was exceeded: wait as long as Retry-After says before the next token request", c.ClientOrgno).
				WithCause(fmt.Errorf("rate limit: organisation %s", c.ClientOrgno))
		}
		return protocol.RateLimited(v.RetryAfter,
			"The client's rate limit was exceeded: wait as long as Retry-After says before the next token request, and reuse tokens until they expire").
			WithCause(fmt.Errorf("rate limit: client %s", c.ClientID))
	}
	v := e.cfg.Limits.AllowAddress(remoteAddr)
	if v.Allowed() {
		return nil
	}
	return protocol.RateLimited(v.RetryAfter,
		"The rate limit for token requests without a known client (iss) from this address was exceeded: wait as long as Retry-After says").
		WithCause(fmt.Errorf("rate limit: address %s", ratelimit.AddressKey(remoteAddr)))
}
