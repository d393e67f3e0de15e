package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/immune-ops/immune/checks"
	"github.com/immune-ops/immune/cmd/internal/cli"
	"github.com/immune-ops/immune/cmd/internal/manpage"
	"github.com/immune-ops/immune/version"
)

func init() {
	commands["man"] = command{
		summary: "write the man pages to DIR (make man; the packages ship them)",
		run:     runMan,
		args:    "DIR",
		hidden:  true,
	}
}

func runMan(_ context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(stderr, "usage: immune man DIR")
		return 2
	}
	dir := args[0]
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintf(stderr, "immune man: %v\n", err)
		return 1
	}
	date := version.Date
	if len(date) >= len("2006-01-02") {
		date = date[:len("2006-01-02")]
	}
	for _, p := range manPages("immune "+version.Version, date) {
		path := filepath.Join(dir, p.FileName())
		if err := writePage(path, p); err != nil {
			fmt.Fprintf(stderr, "immune man: %v\n", err)
			return 1
		}
		fmt.Fprintln(stdout, path)
	}
	return 0
}

func writePage(path string, p *manpage.Page) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write man page: %w", err)
	}
	err = p.Write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write man page %s: %w", path, err)
	}
	return nil
}

// flagSet is the FlagSet a command parses with: its own flags, then
// --version, as cli.Parse adds it. nil when define is.
func flagSet(name string, define func(*flag.FlagSet)) *flag.FlagSet {
	if define == nil {
		return nil
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	define(fs)
	cli.VersionFlag(fs)
	return fs
}

// environment is what the clients of the coordinator read from theirs.
var environment = manpage.Section{Title: "Environment", Items: []manpage.Item{
	{Tag: "IMMUNE_COORDINATOR", Text: "the coordinator, when --coordinator is not given"},
	{Tag: "IMMUNE_TOKEN_FILE", Text: "the file of the operator token, when --token-file is not given, for the commands that change something; reads never look at it"},
	{Tag: "SUDO_USER", Text: "who runs the command, for --who; else git's user.name or user.email, else the login name"},
}}

// manPages are immune(1), a page for each command (immune-push(1), ...)
// and the daemons' (immune-agent(8), immune-coordinator(8)).
func manPages(source, date string) []*manpage.Page {
	names := make([]string, 0, len(commands))
	for n, c := range commands {
		if !c.hidden {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	page := func(name string, section int, summary string) *manpage.Page {
		return &manpage.Page{Name: name, Section: section, Summary: summary, Source: source, Date: date, Manual: "immune manual"}
	}
	top := page("immune", 1, "checks, the host agent and the push coordinator of a fleet, in one command")
	top.Synopsis = []manpage.Synopsis{{Command: "immune", Args: "COMMAND [ARGS]"}, {Command: "check_NAME", Args: "[PLUGIN FLAGS]"}}
	top.Description = `immune is a Nagios-compatible plugin suite, a host agent and a deploy coordinator that rolls back
what harms the fleet. Its first argument names a command; linked or copied under a check's name
(check_load, check_disk, ...) it is that Nagios plugin.

Every command takes --help, which prints its flags and exits 0, and --version, which prints the
version, the commit, the build date and the Go version.`
	commandList := manpage.Section{Title: "Commands"}
	var pages []*manpage.Page
	for _, n := range names {
		c := commands[n]
		ref := "immune-" + n + "(1)"
		if c.daemon != "" {
			ref = c.daemon + "(8)"
		}
		commandList.Items = append(commandList.Items, manpage.Item{Tag: n, Text: short(c.summary) + "; see " + ref + "."})
		top.SeeAlso = append(top.SeeAlso, ref)
		p := page("immune-"+n, 1, short(c.summary))
		p.Synopsis = []manpage.Synopsis{{Command: "immune " + n, Args: c.args}}
		if c.daemon != "" {
			p = page(c.daemon, 8, short(c.summary))
			p.Synopsis = []manpage.Synopsis{{Command: c.daemon, Args: c.args}, {Command: "immune " + n, Args: c.args}}
		}
		p.Description = c.about
		p.Flags = flagSet("immune "+n, c.flags)
		if len(c.verbs) > 0 {
			// The verbs share their flags (push's orders do): listed once.
			verbs := manpage.Section{Title: "Orders", Flags: flagSet("immune "+n+" "+c.verbs[0].name, c.verbs[0].flags)}
			for _, v := range c.verbs {
				p.Synopsis = append(p.Synopsis, manpage.Synopsis{Command: "immune " + n + " " + v.name, Args: v.args + " [--reason WHY]"})
				verbs.Items = append(verbs.Items, manpage.Item{Tag: v.name + " " + v.args, Text: v.summary + "."})
			}
			verbs.Text = "Each order takes the options that follow the orders."
			p.Sections = append(p.Sections, verbs)
		}
		if n == "check" {
			p.Sections = append(p.Sections, checkList())
		}
		if p.Flags != nil && p.Flags.Lookup("coordinator") != nil {
			p.Sections = append(p.Sections, environment)
		}
		p.SeeAlso = []string{"immune(1)"}
		pages = append(pages, p)
	}
	top.Sections = []manpage.Section{commandList, environment}
	return append([]*manpage.Page{top}, pages...)
}

// checkList is the checks immune has, each a section item.
func checkList() manpage.Section {
	s := manpage.Section{Title: "Checks"}
	for _, c := range checks.List() {
		s.Items = append(s.Items, manpage.Item{Tag: c.Name, Text: c.Summary})
	}
	return s
}

// short is a summary without the example usage doesn't need: "push a
// revision: immune push --revision R ..." is "push a revision".
func short(summary string) string {
	s, _, _ := strings.Cut(summary, ": immune ")
	return s
}
