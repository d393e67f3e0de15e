package main

import (
	"context"
	"fmt"
	"io"
	"sort"

	"github.com/immune-ops/immune/cmd/internal/completion"
)

func init() {
	commands["completion"] = command{
		summary: "print a shell's completion script: immune completion bash|zsh",
		run:     runCompletion,
		args:    "bash|zsh",
		words:   func() []string { return []string{"bash", "zsh"} },
		about: `Prints a completion script of immune's commands, their flags and the values the flags take.
For bash: immune completion bash > /etc/bash_completion.d/immune, or source <(immune completion bash)
in ~/.bashrc. For zsh: immune completion zsh > "${fpath[1]}/_immune". The packages install both.`,
	}
}

func runCompletion(_ context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: immune completion bash|zsh")
		return 2
	}
	write := map[string]func(io.Writer, string, []completion.Command) error{"bash": completion.Bash, "zsh": completion.Zsh}[args[0]]
	switch args[0] {
	case "-h", "--help":
		fmt.Fprintln(stdout, "usage: immune completion bash|zsh")
		return 0
	}
	if write == nil {
		fmt.Fprintf(stderr, "immune completion: %q: want bash or zsh\n", args[0])
		return 2
	}
	if err := write(stdout, "immune", completions()); err != nil {
		fmt.Fprintf(stderr, "immune completion: %v\n", err)
		return 1
	}
	return 0
}

// completions are immune's commands as completion sees them.
func completions() []completion.Command {
	var out []completion.Command
	for n, c := range commands {
		if c.hidden {
			continue
		}
		cc := completion.Command{Name: n, Summary: short(c.summary), Flags: flagSet("immune "+n, c.flags)}
		if c.words != nil {
			cc.Words = c.words()
		}
		for _, v := range c.verbs {
			cc.Verbs = append(cc.Verbs, completion.Command{Name: v.name, Summary: v.summary, Flags: flagSet("immune "+n+" "+v.name, v.flags)})
		}
		out = append(out, cc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
