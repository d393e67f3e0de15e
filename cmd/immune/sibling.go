package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/immune-ops/immune/cmd/internal/cmdflags"
	"github.com/immune-ops/immune/cmd/internal/sibling"
)

// Subcommands whose code links heavy libraries live in binaries of their own
// beside bin/immune (immune-agent, immune-coordinator, immune-demo), as
// git's do: a check run through bin/immune then starts as fast as a C
// plugin. immune execs them in place, so the process keeps its pid and its
// signals. Their flags come from cmdflags, as the binaries' own do.
func init() {
	commands["agent"] = command{
		summary: "run the host agent: immune agent --config FILE (--check-config FILE validates)",
		run:     execSibling("immune-agent"),
		args:    "--config FILE | --check-config FILE",
		flags:   func(fs *flag.FlagSet) { cmdflags.AgentFlags(fs) },
		daemon:  "immune-agent",
		about: `The agent runs on every host. It schedules the checks of its config with Nagios's soft and hard states,
answers check_nrpe, submits passive results, serves its gauges over HTTP to the coordinator, and installs
and switches releases when the coordinator deploys one.

SIGTERM or SIGINT stop it. --check-config validates a config, built-in checks' arguments included, and
names the file, line and field of each error.`,
	}
	commands["coordinator"] = command{
		summary: "run the coordinator: immune coordinator --config FILE (--check-config FILE validates)",
		run:     execSibling("immune-coordinator"),
		args:    "--config FILE | --check-config FILE",
		flags:   func(fs *flag.FlagSet) { cmdflags.CoordinatorFlags(fs) },
		daemon:  "immune-coordinator",
		about: `The coordinator pushes releases: to a few hosts first, then to more in phases, judging every gauge of
the hosts running the release against the hosts not running it yet. When the release harms them it
rolls every touched host back, reverts the commits the push brought, and sets the commit lock until a
person clears it with immune unlock.

It serves its API and status pages on the fleet config's listen address. Reading needs no token;
pushing, orders and unlocking need the operator token.`,
	}
	commands["demo"] = command{
		summary: "run a demo fleet on loopback: a good push, a bad one rolled back: immune demo [--exit] [--hosts 20]",
		run:     execSibling("immune-demo"),
		args:    "[--exit] [--hosts N]",
		flags:   func(fs *flag.FlagSet) { cmdflags.DemoFlags(fs) },
	}
	commands["push"] = command{
		summary: "push a revision: immune push --revision R --artifact FILE [--wait]",
		run:     execSibling("immune-coordinator", "push"),
		args:    "--revision REV --artifact FILE [--wait] [--force WHY]",
		flags:   func(fs *flag.FlagSet) { cmdflags.PushFlags(fs) },
		verbs:   orderVerbs(),
		about: `Uploads the release tarball to the coordinator and starts a push of it as the revision. With --wait it
follows the push until it is live everywhere (exit 0) or rolled back or failed (exit 1).

The orders below act on a running push; each needs the operator token.`,
	}
	commands["pushes"] = command{
		summary: "list pushes, newest first: immune pushes [--limit N] [--json]",
		run:     execSibling("immune-coordinator", "pushes"),
		args:    "[--limit N] [--json]",
		flags:   func(fs *flag.FlagSet) { cmdflags.PushesFlags(fs) },
	}
	commands["status"] = command{
		summary: "what runs now: the push, its phase, the gauges breaching, the locks",
		run:     execSibling("immune-coordinator", "status"),
		flags:   func(fs *flag.FlagSet) { cmdflags.ReadFlags(fs) },
		about: `Prints in one screen the push in progress (its revision, who pushed it, its state, phase and
hosts, since when), the gauges its judge does not pass (the effect and the limit), the push lock and
the commit lock, and the coordinator's version. When no push runs it says how the last one ended.`,
	}
	commands["locks"] = command{
		summary: "show the push lock and the commit lock",
		run:     execSibling("immune-coordinator", "locks"),
		flags:   func(fs *flag.FlagSet) { cmdflags.ReadFlags(fs) },
	}
	commands["unlock"] = command{
		summary: "clear the commit lock: immune unlock --reason \"...\"",
		run:     execSibling("immune-coordinator", "unlock"),
		args:    "--reason WHY",
		flags:   func(fs *flag.FlagSet) { cmdflags.UnlockFlags(fs) },
	}
	commands["nagios-config"] = command{
		summary: "write Nagios objects (or Icinga 2 DSL) for the fleet: immune nagios-config --fleet FILE --out DIR [--format nagios|icinga2]",
		run:     execSibling("immune-coordinator", "nagios-config"),
		args:    "--fleet FILE --out DIR [--format nagios|icinga2]",
		flags:   func(fs *flag.FlagSet) { cmdflags.NagiosConfigFlags(fs) },
	}
}

// orderVerbs are the orders of immune push ORDER ID.
func orderVerbs() []verb {
	var vs []verb
	for _, o := range cmdflags.Orders {
		vs = append(vs, verb{name: o.Name, summary: o.Summary, args: o.Args, flags: func(fs *flag.FlagSet) { cmdflags.OrderFlags(fs) }})
	}
	return vs
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
