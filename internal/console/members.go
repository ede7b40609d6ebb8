package console

import (
	"context"

	"github.com/portvakt/portvakt/internal/manage"
)

// memberships are the orgs that list subject as a member (and the platform
// org for the platform members of the config), with the roles each gives:
// read again on every request, so a removed member loses the org at once.
func (c *Console) memberships(ctx context.Context, subject string) ([]grant, error) {
	ms, err := c.core.Memberships(ctx, subject)
	if err != nil {
		return nil, err
	}
	out := make([]grant, len(ms))
	for i, m := range ms {
		out[i] = grant{Org: m.Org, Roles: m.Roles}
	}
	return out, nil
}

// withPerson names the person acting in the actor, for the audit events.
func withPerson(a *manage.Actor, subject string) { a.Person = subject }
