// Command immune-agent is the host agent; `immune agent` runs it. It is a
// binary of its own because it links go-plugin, gRPC and protobuf, whose
// start-up cost every plugin run of bin/immune would otherwise pay.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/immune-ops/immune/cmd/internal/cli"
	"github.com/immune-ops/immune/cmd/internal/cmdflags"
	"github.com/immune-ops/immune/cmd/internal/logging"
	"github.com/immune-ops/immune/cmd/internal/signals"

	"github.com/immune-ops/immune/agent"
	"github.com/immune-ops/immune/checks"
	"github.com/immune-ops/immune/conf"
)

func main() {
	ctx, stop := signals.Daemon()
	code := runAgent(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// loader reads agent configs, checking built-in checks' names and flags.
var loader = conf.AgentLoader{Builtin: checks.ArgParser}

func runAgent(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "init" {
		return runInit(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("immune agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	flags := cmdflags.AgentFlags(fs)
	config, checkOnly, logFlags := flags.Config, flags.CheckConfig, &flags.Log
	if code, done := cli.Parse(fs, args, "immune-agent", stdout); done {
		return code
	}
	if *checkOnly != "" {
		if _, err := loader.Load(*checkOnly); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: ok\n", *checkOnly)
		return 0
	}
	if *config == "" {
		fmt.Fprintln(stderr, "immune agent: --config FILE is required (immune agent init DIR writes one)")
		fs.Usage()
		return 2
	}
	cfg, err := loader.Load(*config)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	log, err := logFlags.New(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "immune agent: %v\n", err)
		return 2
	}
	defer log.Close()
	a, err := agent.New(cfg, log.Logger)
	if err != nil {
		log.Error("cannot start", "err", err)
		fmt.Fprintf(stderr, "immune agent: %v\n", err)
		return 1
	}
	signals.Handle(ctx, func() { reload(a, *config, log) }, log.Reopen)
	if err := a.Run(ctx); err != nil {
		log.Error("stopped", "err", err)
		fmt.Fprintf(stderr, "immune agent: %v\n", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

// reload reads the config again at SIGHUP: a config with any mistake is
// refused whole, and the agent goes on with the one it has.
func reload(a *agent.Agent, path string, log *logging.Logger) {
	cfg, err := loader.Load(path)
	if err != nil {
		log.Error("SIGHUP: config refused; going on with the one in force", "config", path, "errors", strings.Split(err.Error(), "\n"))
		return
	}
	restart, err := a.Reload(cfg)
	if err != nil {
		log.Error("SIGHUP: config refused; going on with the one in force", "config", path, "err", err)
		return
	}
	log.Info("SIGHUP: config reloaded", "config", path, "checks", len(cfg.Checks))
	if len(restart) > 0 {
		log.Warn("SIGHUP: these settings changed but only take effect at a restart", "settings", strings.Join(restart, ","))
	}
}
