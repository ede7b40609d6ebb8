package events

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/portvakt/portvakt/internal/store"
)

// Wire names of a Security Event Token (RFC 8417) and its push delivery
// (RFC 8935).
const (
	// TokenType is the SET's JOSE typ header.
	TokenType = "secevent+jwt"
	// ContentType is the media type of a pushed SET.
	ContentType = "application/secevent+jwt"
	// EventURIPrefix + an event name is the event's key in the events
	// claim.
	EventURIPrefix = "https://portvakt.dev/events/"
)

// Signer signs claims as a compact JWS with the server's current signing
// key, under the JOSE header typ given (and the key's kid and alg).
// *signer.Set provides it as SignType.
type Signer interface {
	SignType(typ string, claims any) (string, error)
}

// SET is the claims of one Security Event Token: one event for one
// webhook.
type SET struct {
	Issuer   string `json:"iss"`
	IssuedAt int64  `json:"iat"`
	// JTI is the event's own unique id (store.Event.JTI): the same for
	// every webhook and every retry, so a receiver drops duplicates by it.
	JTI string `json:"jti"`
	// Audience is the webhook URL.
	Audience string `json:"aud"`
	// TimeOfEvent is when the change happened (RFC 8417 toe); IssuedAt
	// is when this SET was signed.
	TimeOfEvent int64                `json:"toe"`
	Events      map[string]EventBody `json:"events"`
}

// EventBody is the payload of an event in the events claim.
type EventBody struct {
	ActorOrg string `json:"actor_org"`
	// Record is the changed record as the API shows it after the change.
	Record json.RawMessage `json:"record"`
}

// NewSET builds the claims of e's SET for the webhook at aud, issued now.
func NewSET(issuer, aud string, e store.Event, now time.Time) SET {
	rec := e.Record
	if len(rec) == 0 {
		rec = json.RawMessage("null")
	}
	return SET{
		Issuer: issuer, IssuedAt: now.Unix(), JTI: e.JTI, Audience: aud, TimeOfEvent: e.Time.Unix(),
		Events: map[string]EventBody{EventURIPrefix + e.Name: {ActorOrg: e.ActorOrg, Record: rec}},
	}
}

// Sign signs the SET with typ secevent+jwt.
func (s SET) Sign(sg Signer) (string, error) {
	jws, err := sg.SignType(TokenType, s)
	if err != nil {
		return "", fmt.Errorf("events: sign the SET: %w", err)
	}
	return jws, nil
}
