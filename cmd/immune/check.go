package main

import (
	"context"
	"fmt"
	"io"

	"github.com/immune-ops/immune/checks"
	"github.com/immune-ops/immune/nagios"
)

func init() {
	commands["check"] = command{
		summary: "run a check as a Nagios plugin: immune check <name> [flags]; --list lists them",
		run:     runCheck,
		args:    "NAME [PLUGIN FLAGS] | --list [--names]",
		words:   checkWords,
		about: `Runs the check NAME once as a Nagios plugin: it prints one status line with performance data and
exits 0 (OK), 1 (WARNING), 2 (CRITICAL) or 3 (UNKNOWN). Each check parses the flags of the C plugin
it stands in for; immune check NAME --help lists them. Linked or copied under a check's name
(/usr/lib/immune/plugins/check_load), immune is that plugin.`,
	}
	commands["version"] = command{
		summary: "print immune's version",
		run: func(_ context.Context, _ []string, stdout, _ io.Writer) int {
			fmt.Fprintf(stdout, "immune %s\n", checks.Version)
			return 0
		},
	}
}

func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: immune check <name> [flags] | immune check --list [--names]")
		return nagios.Unknown.ExitCode()
	}
	switch args[0] {
	case "--list", "-l":
		namesOnly := len(args) > 1 && args[1] == "--names"
		for _, s := range checks.List() {
			if namesOnly {
				fmt.Fprintln(stdout, s.Name)
			} else {
				fmt.Fprintf(stdout, "%-18s %s\n", s.Name, s.Summary)
			}
		}
		return 0
	}
	return checks.Main(ctx, args[0], args[1:], stdout)
}

// checkWords are what immune check takes first: a check's name, or --list.
func checkWords() []string {
	words := []string{"--list"}
	for _, s := range checks.List() {
		words = append(words, s.Name)
	}
	return words
}
