package exchange

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portvakt/portvakt/internal/entcert"
	"github.com/portvakt/portvakt/internal/protocol"
	"github.com/portvakt/portvakt/internal/rules"
	"github.com/portvakt/portvakt/internal/store"
)

// clientKey finds the client named by iss and the key its assertion must
// verify with: a registered key by kid for a client with keys, the enterprise
// certificate in x5c for a client without.
func (e *Exchanger) clientKey(ctx context.Context, snap *rules.Snapshot, t *jwt.Token, now time.Time) (store.Client, string, any, error) {
	claims, _ := t.Claims.(jwt.MapClaims)
	iss, ok := claims["iss"].(string)
	if !ok || iss == "" {
		return store.Client{}, "", nil, protocol.InvalidGrant("The assertion's iss claim must be your client_id (a string)")
	}
	client, ok := snap.Client(iss)
	if !ok || !client.Active {
		// iss is unverified: what reaches the access log is clipped.
		return store.Client{ClientID: clip(iss, 64)}, "", nil, protocol.InvalidGrant("Unknown or inactive client: iss %q is not the client_id of an active client", clip(iss, 64))
	}
	if len(client.Keys) > 0 {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return client, protocol.AMRPrivateKeyJWT, nil, protocol.InvalidGrant("The client has registered keys: sign the assertion with one of them and name it in the kid header")
		}
		key, err := registeredKey(snap, client, kid, now)
		if err != nil {
			return client, protocol.AMRPrivateKeyJWT, nil, err
		}
		return client, protocol.AMRPrivateKeyJWT, key, nil
	}
	raw, ok := t.Header["x5c"]
	if !ok {
		return client, protocol.AMRCertificate, nil, protocol.InvalidGrant("The client has no registered keys: sign the assertion with your enterprise certificate and send its chain in the x5c header")
	}
	if e.certs == nil {
		return client, protocol.AMRCertificate, nil, protocol.InvalidGrant("This server trusts no certificate authority: certificate (x5c) clients cannot authenticate").WithCause(errors.New("no trust anchors configured"))
	}
	chain, err := entcert.DecodeX5CValue(raw)
	if err != nil {
		return client, protocol.AMRCertificate, nil, err
	}
	cctx, endCert := e.cfg.Observer.Step(ctx, StepVerifyCertificate)
	id, err := e.certs.Verify(cctx, chain)
	endCert(err)
	if err != nil {
		return client, protocol.AMRCertificate, nil, err
	}
	if id.Org != client.ClientOrgno {
		return client, protocol.AMRCertificate, nil, protocol.InvalidGrant("The certificate belongs to organisation %s, but the client is registered to %s", id.Org, client.ClientOrgno)
	}
	return client, protocol.AMRCertificate, id.PublicKey, nil
}

// registeredKey returns the unexpired registered key named kid.
func registeredKey(snap *rules.Snapshot, c store.Client, kid string, now time.Time) (any, error) {
	for _, k := range c.Keys {
		if k.KID != kid {
			continue
		}
		if !now.Before(k.Expires) {
			return nil, protocol.InvalidGrant("The key %q expired on %s: upload a new key", clip(kid, 64), k.Expires.UTC().Format(time.DateOnly))
		}
		key, err := snap.ClientPublicKey(c.ClientID, kid)
		if err != nil {
			return nil, protocol.ServerError(err)
		}
		switch pub := key.(type) {
		case *rsa.PublicKey:
			if pub.N.BitLen() < 2048 {
				return nil, protocol.InvalidGrant("The key %q is an RSA key shorter than 2048 bits", clip(kid, 64))
			}
			return pub, nil
		case *ecdsa.PublicKey:
			if pub.Curve != elliptic.P256() && pub.Curve != elliptic.P384() {
				return nil, protocol.InvalidGrant("The key %q is not on P-256 or P-384", clip(kid, 64))
			}
			return pub, nil
		}
		return nil, protocol.ServerError(fmt.Errorf("client %s key %s: unsupported key type %T", c.ClientID, kid, key))
	}
	return nil, protocol.InvalidGrant("Unknown kid %q: it is not among the client's registered keys", clip(kid, 64))
}

// clip bounds attacker-chosen text echoed in a description or logged: at
// most n bytes, cut at a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
