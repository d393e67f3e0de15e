// Command immune-agent is the host agent; `immune agent` runs it. It is a
// binary of its own because it links go-plugin, gRPC and protobuf, whose
// start-up cost every plugin run of bin/immune would otherwise pay.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/immune-ops/immune/cmd/internal/cli"
	"github.com/immune-ops/immune/cmd/internal/cmdflags"

	"github.com/immune-ops/immune/agent"
	"github.com/immune-ops/immune/checks"
	"github.com/immune-ops/immune/conf"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runAgent(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func runAgent(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("immune agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	flags := cmdflags.AgentFlags(fs)
	config, checkOnly, verbose := flags.Config, flags.CheckConfig, flags.Verbose
	if code, done := cli.Parse(fs, args, "immune-agent", stdout); done {
		return code
	}
	loader := conf.AgentLoader{Builtin: checks.ArgParser}
	if *checkOnly != "" {
		if _, err := loader.Load(*checkOnly); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: ok\n", *checkOnly)
		return 0
	}
	if *config == "" {
		fmt.Fprintln(stderr, "immune agent: --config FILE is required")
		fs.Usage()
		return 2
	}
	cfg, err := loader.Load(*config)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	a, err := agent.New(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "immune agent: %v\n", err)
		return 1
	}
	if err := a.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "immune agent: %v\n", err)
		return 1
	}
	return 0
}
