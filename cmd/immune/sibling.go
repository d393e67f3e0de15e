package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/immune-ops/immune/cmd/internal/sibling"
)

// Subcommands whose code links heavy libraries live in binaries of their own
// beside bin/immune (immune-agent, immune-coordinator, immune-demo), as
// git's do: a check run through bin/immune then starts as fast as a C
// plugin. immune execs them in place, so the process keeps its pid and its
// signals.
func init() {
	commands["agent"] = command{
		summary: "run the host agent: immune agent --config FILE (--check-config FILE validates)",
		run:     execSibling("immune-agent"),
	}
	commands["demo"] = command{
		summary: "run a demo fleet on loopback: a good push, a bad one rolled back: immune demo [--exit] [--hosts 20]",
		run:     execSibling("immune-demo"),
	}
	commands["coordinator"] = command{
		summary: "run the coordinator: immune coordinator --config FILE (--check-config FILE validates)",
		run:     execSibling("immune-coordinator"),
	}
	commands["push"] = command{summary: "push a revision: immune push --revision R --artifact FILE [--wait]", run: execSibling("immune-coordinator", "push")}
	commands["pushes"] = command{summary: "list pushes, newest first", run: execSibling("immune-coordinator", "pushes")}
	commands["locks"] = command{summary: "show the push lock and the commit lock", run: execSibling("immune-coordinator", "locks")}
	commands["unlock"] = command{summary: "clear the commit lock: immune unlock --reason \"...\"", run: execSibling("immune-coordinator", "unlock")}
	commands["nagios-config"] = command{
		summary: "write Nagios objects (or Icinga 2 DSL) for the fleet: immune nagios-config --fleet FILE --out DIR [--format nagios|icinga2]",
		run:     execSibling("immune-coordinator", "nagios-config"),
	}
}

// execSibling returns a command that replaces this process with the named
// binary from immune's own directory, or from PATH, its arguments after prefix.
func execSibling(name string, prefix ...string) func(context.Context, []string, io.Writer, io.Writer) int {
	return func(_ context.Context, args []string, _, stderr io.Writer) int {
		args = append(append([]string(nil), prefix...), args...)
		path, err := sibling.Path(name)
		if err != nil {
			fmt.Fprintf(stderr, "immune: %v\n", err)
			return 1
		}
		err = syscall.Exec(path, append([]string{path}, args...), os.Environ())
		fmt.Fprintf(stderr, "immune: run %s: %v\n", path, err)
		return 1
	}
}
