package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

// helpWidth is the terminal width the help is written for: every line of
// every command's help fits it (TestHelpFitsTheTerminal).
const helpWidth = 80

// usageFunc is cobra's usage text with its long lines wrapped: the flags'
// descriptions and the commands' one-line summaries continue on the next
// line, indented under their column, instead of running past helpWidth.
func usageFunc(c *cobra.Command) error {
	var b strings.Builder
	b.WriteString("Usage:")
	if c.Runnable() {
		fmt.Fprintf(&b, "\n  %s", c.UseLine())
	}
	if c.HasAvailableSubCommands() {
		fmt.Fprintf(&b, "\n  %s COMMAND", c.CommandPath())
	}
	if c.HasExample() {
		fmt.Fprintf(&b, "\n\nExamples:\n%s", wrapExamples(c.Example))
	}
	if c.HasAvailableSubCommands() {
		b.WriteString("\n\nCommands:")
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() || sub.Name() == "help" {
				b.WriteString("\n" + hang(fmt.Sprintf("  %-*s ", sub.NamePadding(), sub.Name()), sub.Short))
			}
		}
	}
	if c.HasAvailableLocalFlags() {
		fmt.Fprintf(&b, "\n\nFlags:\n%s", strings.TrimRight(c.LocalFlags().FlagUsagesWrapped(helpWidth), " \n"))
	}
	if c.HasAvailableInheritedFlags() {
		fmt.Fprintf(&b, "\n\nGlobal Flags:\n%s", strings.TrimRight(c.InheritedFlags().FlagUsagesWrapped(helpWidth), " \n"))
	}
	if c.HasAvailableSubCommands() {
		fmt.Fprintf(&b, "\n\nMore about a command: %s COMMAND --help", c.CommandPath())
	}
	b.WriteString("\n")
	_, err := fmt.Fprint(c.OutOrStderr(), b.String())
	return err
}

// helpFunc is cobra's help, with the lines of the long description that
// run past helpWidth wrapped at its width.
func helpFunc(c *cobra.Command, _ []string) {
	out := c.OutOrStdout()
	text := c.Long
	if text == "" {
		text = c.Short
	}
	if text = strings.TrimRight(text, " \n"); text != "" {
		var lines []string
		for _, l := range strings.Split(text, "\n") {
			if len(l) > helpWidth {
				rest := strings.TrimLeft(l, " ")
				l = hang(l[:len(l)-len(rest)], rest)
			}
			lines = append(lines, l)
		}
		fmt.Fprintf(out, "%s\n\n", strings.Join(lines, "\n"))
	}
	if c.Runnable() || c.HasSubCommands() {
		fmt.Fprint(out, c.UsageString())
	}
}

// wrapExamples fits the shell lines of an example to helpWidth, so they
// still paste into a shell: a trailing comment that does not fit goes on a
// line of its own above its command, and a long command continues on the
// next line after a backslash, between a flag with its value and the next,
// never inside a quoted word.
func wrapExamples(ex string) string {
	var out []string
	start := 0 // where the command of the current line starts in out
	for _, l := range strings.Split(ex, "\n") {
		if len(l) <= helpWidth {
			out = append(out, l)
			if !strings.HasSuffix(l, "\\") {
				start = len(out)
			}
			continue
		}
		cmd := strings.TrimLeft(l, " ")
		indent := l[:len(l)-len(cmd)]
		if i := strings.Index(cmd, "  #"); i > 0 {
			out = slices.Insert(out, start, out0(out, start)+strings.TrimSpace(cmd[i:]))
			cmd = strings.TrimRight(cmd[:i], " ")
		}
		cont := strings.HasSuffix(cmd, " \\")
		cmd = strings.TrimSuffix(cmd, " \\")
		line := indent
		for i, w := range shellUnits(cmd) {
			if i > 0 && len(line)+1+len(w)+2 > helpWidth {
				out = append(out, line+" \\")
				line = indent + "    " + w
				continue
			}
			if i > 0 {
				line += " "
			}
			line += w
		}
		if cont {
			line += " \\"
		}
		out = append(out, line)
		if !cont {
			start = len(out)
		}
	}
	return strings.Join(out, "\n")
}

// out0 is the indentation of the command line at out[i] (the one a comment
// moved above it shares), or two spaces when there is none yet.
func out0(out []string, i int) string {
	if i < len(out) {
		l := out[i]
		return l[:len(l)-len(strings.TrimLeft(l, " "))]
	}
	return "  "
}

// shellUnits splits a command line at the spaces outside quotes, keeping
// a flag together with its value ("--scope acme:api").
func shellUnits(s string) []string {
	var words []string
	var quote rune
	begin := -1
	for i, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '"' || r == '\'':
			quote = r
			if begin < 0 {
				begin = i
			}
		case r == ' ':
			if begin >= 0 {
				words = append(words, s[begin:i])
				begin = -1
			}
		default:
			if begin < 0 {
				begin = i
			}
		}
	}
	if begin >= 0 {
		words = append(words, s[begin:])
	}
	var units []string
	for i := 0; i < len(words); i++ {
		w := words[i]
		if strings.HasPrefix(w, "-") && !strings.Contains(w, "=") && i+1 < len(words) && !strings.HasPrefix(words[i+1], "-") {
			w += " " + words[i+1]
			i++
		}
		units = append(units, w)
	}
	return units
}

// hang writes prefix and then text wrapped at helpWidth, each further line
// indented as far as the prefix is wide.
func hang(prefix, text string) string {
	var b strings.Builder
	b.WriteString(prefix)
	col := len(prefix)
	for i, word := range strings.Fields(text) {
		if i > 0 && col+1+len(word) > helpWidth {
			b.WriteString("\n" + strings.Repeat(" ", len(prefix)))
			col = len(prefix)
		} else if i > 0 {
			b.WriteString(" ")
			col++
		}
		b.WriteString(word)
		col += len(word)
	}
	return b.String()
}
