package store

import (
	"context"
	"time"
)

// The kinds of console session rows.
const (
	// ConsoleSessionPerson is a logged-in person's session.
	ConsoleSessionPerson = "person"
	// ConsoleSessionLogin is a login under way: the OpenID Connect state,
	// nonce and PKCE verifier, until the identity provider sends the
	// person back.
	ConsoleSessionLogin = "login"
)

// ConsoleSession is a web console session, or a login under way, kept
// server-side so that any replica serves it. The browser holds a random id
// in a cookie; the store keeps only its SHA-256 (IDHash), so a copy of the
// table logs no one in.
type ConsoleSession struct {
	IDHash  string
	Kind    string // ConsoleSessionPerson or ConsoleSessionLogin
	Subject string // the person's id at the identity provider
	Org     string // the org the person acts for; empty until picked
	// Data is the console's own (the orgs an ID-token claim named, a
	// login's state); the store keeps it as it is.
	Data     []byte
	Created  time.Time
	LastSeen time.Time
	// Expires is when the row stops being valid: the earlier of the idle
	// and the absolute expiry. The console checks it on every read; the
	// purge deletes rows past it.
	Expires time.Time
}

// ConsoleSessions is the store's part for the web console's sessions. They
// are not access rules: writing them neither advances the generation nor
// enters the change log, and config declares none.
type ConsoleSessions interface {
	// CreateConsoleSession inserts s; ErrConflict when its IDHash exists.
	CreateConsoleSession(ctx context.Context, s ConsoleSession) error
	// GetConsoleSession reads one row, expired or not; ErrNotFound when
	// there is none.
	GetConsoleSession(ctx context.Context, idHash string) (ConsoleSession, error)
	// UpdateConsoleSession replaces the Org, Data, LastSeen and Expires of
	// the row with s's IDHash; ErrNotFound when it is gone (logged out or
	// purged).
	UpdateConsoleSession(ctx context.Context, s ConsoleSession) error
	// DeleteConsoleSession deletes a row; no error when there is none.
	DeleteConsoleSession(ctx context.Context, idHash string) error
	// PurgeConsoleSessions deletes at most limit rows that expired before
	// cutoff and returns how many it deleted.
	PurgeConsoleSessions(ctx context.Context, cutoff time.Time, limit int) (int, error)
}
