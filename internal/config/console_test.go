package config

import (
	"slices"
	"strings"
	"testing"
)

func TestConsolePlatformMembers(t *testing.T) {
	t.Run("ok/none", func(t *testing.T) {
		c, err := Parse(nil, "", true)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Console.PlatformMembers) != 0 {
			t.Fatalf("default %v", c.Console.PlatformMembers)
		}
	})
	t.Run("ok/file", func(t *testing.T) {
		c, err := Parse([]byte("platform: {org: \"310000019\"}\nconsole:\n  platform_members: [kari@example.no, \"auth0|5f7c8ec7\"]\n"), "", true)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if want := []string{"kari@example.no", "auth0|5f7c8ec7"}; !slices.Equal(c.Console.PlatformMembers, want) {
			t.Fatalf("parsed %v, want %v", c.Console.PlatformMembers, want)
		}
	})
	t.Run("ok/environment", func(t *testing.T) {
		t.Setenv("PORTVAKT_CONSOLE_PLATFORM_MEMBERS", "kari@example.no,ola@example.no")
		c, err := Parse(nil, "", true)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"kari@example.no", "ola@example.no"}; !slices.Equal(c.Console.PlatformMembers, want) {
			t.Fatalf("parsed %v, want %v", c.Console.PlatformMembers, want)
		}
	})
	for _, tc := range []struct {
		name, yaml, key string
	}{
		{"fail/empty", "console:\n  platform_members: [kari, \"\"]\n", "console.platform_members[1]"},
		{"fail/control", "console:\n  platform_members: [\"kari\\u0007\"]\n", "console.platform_members[0]"},
		{"fail/bidi", "console:\n  platform_members: [\"kari\\u202e\"]\n", "console.platform_members[0]"},
		{"fail/too-long", "console:\n  platform_members: [" + strings.Repeat("a", 256) + "]\n", "console.platform_members[0]"},
		{"fail/twice", "console:\n  platform_members: [kari, ola, kari]\n", "console.platform_members[2]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml), "", true)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.key) {
				t.Fatalf("Validate() = %v, want a problem with %s", err, tc.key)
			}
		})
	}
}
