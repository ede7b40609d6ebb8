package main

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// Set by release builds (the Dockerfile, scripts/ldflags.sh):
//
//	-ldflags "-X main.version=v1.2.0 -X main.commit=<git sha> -X main.date=<RFC 3339>"
//
// Left empty, they are read from the build information Go stamps into every
// binary (stamp), so `go install ...@v1.2.0` and `go build` in a clone report
// the module version, the commit and its time as well.
var (
	version string
	commit  string
	date    string
)

// build is what `portvakt version` prints, resolved once at start.
var buildStamp = stamp(version, commit, date, readBuildInfo)

func init() { version = buildStamp.Version }

func readBuildInfo() (*debug.BuildInfo, bool) { return debug.ReadBuildInfo() }

// stampInfo describes the binary: its version, the commit it was built from,
// when (the commit's time when Go stamped it), and whether the working tree
// had uncommitted changes.
type stampInfo struct {
	Version  string
	Commit   string
	Date     string
	Modified bool
}

// String is the line `portvakt version` and `portvakt --version` print:
// "v1.2.0 (commit 0a1b2c3d4e5f, built 2026-12-02T05:00:00Z)".
func (s stampInfo) String() string {
	var parts []string
	if s.Commit != "" {
		c := "commit " + s.Commit
		if s.Modified {
			c += ", modified"
		}
		parts = append(parts, c)
	}
	if s.Date != "" {
		parts = append(parts, "built "+s.Date)
	}
	if len(parts) == 0 {
		return s.Version
	}
	return s.Version + " (" + strings.Join(parts, ", ") + ")"
}

// stamp takes what -ldflags set and fills the rest from Go's build
// information: the main module's version ("(devel)" in a plain `go build`
// before Go 1.24), vcs.revision, vcs.time and vcs.modified (absent in `go
// install module@version`, where the version says it all).
func stamp(ldVersion, ldCommit, ldDate string, info func() (*debug.BuildInfo, bool)) stampInfo {
	s := stampInfo{Version: ldVersion, Commit: ldCommit, Date: ldDate}
	if bi, ok := info(); ok && bi != nil {
		if s.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			s.Version = bi.Main.Version
		}
		for _, kv := range bi.Settings {
			switch kv.Key {
			case "vcs.revision":
				if s.Commit == "" {
					s.Commit = kv.Value
				}
			case "vcs.time":
				if s.Date == "" {
					s.Date = kv.Value
				}
			case "vcs.modified":
				if ldCommit == "" {
					s.Modified = kv.Value == "true"
				}
			}
		}
	}
	if s.Version == "" {
		s.Version = "devel"
	}
	if len(s.Commit) > 12 {
		s.Commit = s.Commit[:12]
	}
	return s
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use: "version",
		Example: `  portvakt version
  portvakt --version`,
		Short: "Print the version, commit and build date",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "portvakt", buildStamp)
		},
	}
}
