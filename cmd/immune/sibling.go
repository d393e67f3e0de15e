package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// Subcommands whose code links heavy libraries live in binaries of their own
// beside bin/immune (immune-agent, immune-coordinator, immune-demo), as
// git's do: a check run through bin/immune then starts as fast as a C
// plugin. immune execs them in place, so the process keeps its pid and its
// signals.
func init() {
	commands["agent"] = command{
		summary: "run the host agent: immune agent --config FILE (--check-config FILE validates)",
		run:     sibling("immune-agent"),
	}
	commands["demo"] = command{
		summary: "run a demo fleet on loopback: a good push, a bad one rolled back: immune demo [--exit] [--hosts 20]",
		run:     sibling("immune-demo"),
	}
	commands["coordinator"] = command{
		summary: "run the coordinator: immune coordinator --config FILE (--check-config FILE validates)",
		run:     sibling("immune-coordinator"),
	}
	commands["push"] = command{summary: "push a revision: immune push --revision R --artifact FILE [--wait]", run: sibling("immune-coordinator", "push")}
	commands["pushes"] = command{summary: "list pushes, newest first", run: sibling("immune-coordinator", "pushes")}
	commands["locks"] = command{summary: "show the push lock and the commit lock", run: sibling("immune-coordinator", "locks")}
	commands["unlock"] = command{summary: "clear the commit lock: immune unlock --reason \"...\"", run: sibling("immune-coordinator", "unlock")}
	commands["nagios-config"] = command{
		summary: "write Nagios objects (or Icinga 2 DSL) for the fleet: immune nagios-config --fleet FILE --out DIR [--format nagios|icinga2]",
		run:     sibling("immune-coordinator", "nagios-config"),
	}
}

// sibling returns a command that replaces this process with the named
// binary from immune's own directory, or from PATH, its arguments after prefix.
func sibling(name string, prefix ...string) func(context.Context, []string, io.Writer, io.Writer) int {
	return func(_ context.Context, args []string, _, stderr io.Writer) int {
		args = append(append([]string(nil), prefix...), args...)
		path, err := siblingPath(name)
		if err != nil {
			fmt.Fprintf(stderr, "immune: %v\n", err)
			return 1
		}
		err = syscall.Exec(path, append([]string{path}, args...), os.Environ())
		fmt.Fprintf(stderr, "immune: run %s: %v\n", path, err)
		return 1
	}
}

func siblingPath(name string) (string, error) {
	if self, err := os.Executable(); err == nil {
		path := filepath.Join(filepath.Dir(self), name)
		if _, err := os.Stat(path); err == nil {
			return path, nil
		}
	}
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		path := filepath.Join(dir, name)
		if fi, err := os.Stat(path); err == nil && !fi.IsDir() {
			return path, nil
		}
	}
	return "", fmt.Errorf("%s is not beside immune nor on PATH (make build puts it in bin/)", name)
}
