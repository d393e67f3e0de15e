// Command immune is the one binary of immune. Called by a check's name
// (bin/check_load, a link to it) it is that Nagios plugin; otherwise its
// first argument names a subcommand.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"syscall"

	"github.com/immune-ops/immune/checks"
	"github.com/immune-ops/immune/version"
)

// command is one subcommand of immune. Its man page and its shell
// completion are made from the same entry (man.go, completion.go).
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
	// args are what the synopsis shows after the command's name, as typed:
	// "--revision REV --artifact FILE [--wait]".
	args string
	// flags defines the command's flags on fs, as the command itself
	// does; nil when it has none a FlagSet parses.
	flags func(fs *flag.FlagSet)
	// about is the man page's description: paragraphs split by blank lines.
	about string
	// verbs are commands of their own named by the first argument
	// (immune push abort ID), with their own flags.
	verbs []verb
	// words are what the first argument may be besides a verb: a check's name.
	words func() []string
	// daemon names the program whose section 8 page documents the
	// command (immune-agent), instead of an immune-NAME(1) page.
	daemon string
	// hidden commands are for the build (immune man); usage leaves them out.
	hidden bool
}

// verb is a command named by a command's first argument.
type verb struct {
	name, summary, args string
	flags               func(fs *flag.FlagSet)
}

var commands = map[string]command{}

func main() {
	// A plugin run needs no signal handling of its own: Nagios ends a plugin
	// by killing it, and skipping it keeps the start-up as cheap as a C
	// plugin's.
	if name := filepath.Base(os.Args[0]); isCheck(name) {
		os.Exit(checks.Main(context.Background(), name, os.Args[1:], os.Stdout))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := dispatch(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func isCheck(name string) bool {
	_, ok := checks.Lookup(name)
	return ok
}

// dispatch picks a check by the program's own name, or a subcommand by the first argument.
func dispatch(ctx context.Context, argv []string, stdout, stderr io.Writer) int {
	if _, ok := checks.Lookup(filepath.Base(argv[0])); ok {
		return checks.Main(ctx, filepath.Base(argv[0]), argv[1:], stdout)
	}
	if len(argv) < 2 {
		usage(stderr)
		return 2
	}
	cmd, ok := commands[argv[1]]
	if !ok {
		switch argv[1] {
		case "-h", "--help", "help":
			usage(stdout)
			return 0
		case "--version", "version":
			fmt.Fprintln(stdout, version.String("immune"))
			return 0
		}
		fmt.Fprintf(stderr, "immune: unknown command %q\n", argv[1])
		usage(stderr)
		return 2
	}
	return cmd.run(ctx, argv[2:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: immune <command> [arguments]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !commands[n].hidden {
			fmt.Fprintf(w, "  %-13s %s\n", n, commands[n].summary)
		}
	}
	fmt.Fprintln(w, "\nLinked or copied under a check's name (check_load, ...) immune is that plugin.")
}
