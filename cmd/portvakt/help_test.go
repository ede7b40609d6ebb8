package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/spf13/cobra"
)

// TestHelpFitsTheTerminal: every line of every command's help, its
// examples and flags included, fits an 80-column terminal.
func TestHelpFitsTheTerminal(t *testing.T) {
	root := rootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		out.Reset()
		if err := c.Help(); err != nil {
			t.Fatalf("%s: %v", c.CommandPath(), err)
		}
		n++
		if !strings.Contains(out.String(), "Usage:") {
			t.Errorf("%s: no usage in its help:\n%s", c.CommandPath(), out.String())
		}
		for _, l := range strings.Split(out.String(), "\n") {
			if w := utf8.RuneCountInString(l); w > helpWidth {
				t.Errorf("%s: a line of %d columns:\n%s", c.CommandPath(), w, l)
			}
		}
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() {
				walk(sub)
			}
		}
	}
	walk(root)
	if n < 40 {
		t.Errorf("walked %d commands; the tree has more", n)
	}
}

func TestHang(t *testing.T) {
	for _, tc := range []struct{ name, prefix, text, want string }{
		{"ok/short", "  a ", "fits", "  a fits"},
		{"ok/wraps", "  name ", strings.Repeat("word ", 20), "  name " + strings.TrimSpace(strings.Repeat("word ", 14)) + "\n       " + strings.TrimSpace(strings.Repeat("word ", 6))},
		{"ok/long-word", "  x ", strings.Repeat("y", 90), "  x " + strings.Repeat("y", 90)},
	} {
		if got := hang(tc.prefix, tc.text); got != tc.want {
			t.Errorf("%s: got\n%q\nwant\n%q", tc.name, got, tc.want)
		}
	}
}

func TestWrapExamples(t *testing.T) {
	long := "  portvakt admin clients create --org 310000035 --name admin --description \"self service\" \\\n" +
		"    --scope portvakt:clients.write,portvakt:scopes.read $CREDS     # platform admin, onboarding"
	got := wrapExamples(long)
	want := "  # platform admin, onboarding\n" +
		"  portvakt admin clients create --org 310000035 --name admin \\\n" +
		"      --description \"self service\" \\\n" +
		"    --scope portvakt:clients.write,portvakt:scopes.read $CREDS"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if short := "  portvakt version"; wrapExamples(short) != short {
		t.Errorf("a line that fits changed: %q", wrapExamples(short))
	}
	if got := shellUnits(`a --reason "two words" --add -q x`); !slices.Equal(got, []string{"a", `--reason "two words"`, "--add", "-q x"}) {
		t.Errorf("shellUnits: %q", got)
	}
}
