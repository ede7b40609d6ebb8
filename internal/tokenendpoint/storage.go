package tokenendpoint

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/ory/fosite"
)

// errNoClientAuthentication is what fosite's client authentication
// answers: the grant authenticates the client by the assertion's signature
// (docs/protocol.md), and the handler skips fosite's client authentication.
var errNoClientAuthentication = fosite.ErrInvalidClient.WithHint("portvakt authenticates the client by the assertion")

// noClientAuthentication replaces fosite's default client authentication,
// which would read client_id, client_secret or client_assertion from the
// request, look the client up in refusingStorage and build an error with a
// stack trace on every token request, only for the handler to skip it. The
// answer is one constant: those fields and headers are ignored, whatever
// they hold.
func noClientAuthentication(context.Context, *http.Request, url.Values) (fosite.Client, error) {
	return nil, errNoClientAuthentication
}

// refusingStorage is the fosite.Storage fosite requires even when client
// authentication is skipped. portvakt keeps no fosite state: client_id or
// client_assertion form fields are ignored (docs/protocol.md), so every lookup fails
// and nothing is ever written through fosite.
type refusingStorage struct{}

func (refusingStorage) GetClient(context.Context, string) (fosite.Client, error) {
	return nil, fosite.ErrNotFound
}

func (refusingStorage) ClientAssertionJWTValid(context.Context, string) error {
	return fosite.ErrJTIKnown
}

func (refusingStorage) SetClientAssertionJWT(context.Context, string, time.Time) error {
	return fosite.ErrServerError.WithDebug("portvakt keeps no fosite state")
}
