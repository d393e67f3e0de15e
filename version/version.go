// Package version says which build of immune is running: the release
// version, commit and build date that `make build` stamps in with -ldflags,
// or what Go recorded of the source tree when built another way.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Stamped by the linker: -X github.com/immune-ops/immune/version.Version=...
var (
	Version = "dev"
	Commit  = ""
	Date    = ""
)

// String is one line for --version: "immune-agent 0.3.0 (commit 1a2b3c4, built 2026-12-05T06:00:00Z, go1.26.8)".
func String(program string) string {
	commit, date, dirty := Commit, Date, false
	if info, ok := debug.ReadBuildInfo(); ok && Commit == "" {
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.time":
				if date == "" {
					date = s.Value
				}
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if len(commit) > 12 {
		commit = commit[:12]
	}
	if dirty {
		commit += "+dirty"
	}
	return fmt.Sprintf("%s %s (commit %s, built %s, %s)", program, Version, orUnknown(commit), orUnknown(date), runtime.Version())
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
