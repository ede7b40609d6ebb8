package config

import (
	"fmt"

	"github.com/portvakt/portvakt/internal/records"
)

// Console configures the web console, under console. Every field works at
// its zero value.
type Console struct {
	// PlatformMembers are the subjects (ids at the console's identity
	// provider) of the people who act for the platform admin org in the
	// console with every admin scope, portvakt:admin included: how the
	// platform is run before anyone is a member. Each is checked as a
	// member's subject is.
	PlatformMembers []string `mapstructure:"platform_members"`
}

func (c Console) validate(bad func(key, format string, args ...any)) {
	seen := make(map[string]bool, len(c.PlatformMembers))
	for i, s := range c.PlatformMembers {
		key := fmt.Sprintf("console.platform_members[%d]", i)
		for _, e := range records.CheckSubject(key, s) {
			bad(e.Field, "%s", e.Detail)
		}
		if seen[s] {
			bad(key, "%q is listed twice", records.Clip(s))
		}
		seen[s] = true
	}
}
