package tokenendpoint

import (
	"context"
	"time"

	"github.com/ory/fosite"
)

// refusingStorage is the fosite.Storage fosite requires even when client
// authentication is skipped. portvakt keeps no fosite state: client_id or
// client_assertion form fields are ignored (SPEC 2), so every lookup fails
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
