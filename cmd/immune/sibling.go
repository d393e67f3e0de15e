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
// beside bin/immune (immune-agent, immune-coordinator), as git's do: a check
// run through bin/immune then starts as fast as a C plugin. immune execs
// them in place, so the process keeps its pid and its signals.
func init() {
	commands["agent"] = command{
		summary: "run the host agent: immune agent --config FILE (--check-config FILE validates)",
		run:     sibling("immune-agent"),
	}
}

// sibling returns a command that replaces this process with the named
// binary from immune's own directory, or from PATH.
func sibling(name string) func(context.Context, []string, io.Writer, io.Writer) int {
	return func(_ context.Context, args []string, _, stderr io.Writer) int {
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
