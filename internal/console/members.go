package console

import (
	"context"

	"github.com/portvakt/portvakt/internal/manage"
)

// memberships are the orgs that list subject as a member, with the roles
// each gives. TODO(#18): manage.(*Service).Memberships once members land.
func (c *Console) memberships(ctx context.Context, subject string) ([]grant, error) {
	return nil, nil
}

// withPerson names the person acting in the actor, for the audit events.
// TODO(#18): manage.Actor.Person once members land.
func withPerson(a *manage.Actor, subject string) {}
