// Command testplugin is a Go plugin that misbehaves on request, for the
// tests of GoPlugin: its first argument says what to do.
package main

import (
	"context"
	"os"
	"time"

	"github.com/immune-ops/immune/nagios"
	"github.com/immune-ops/immune/plugins/sdk"
)

func main() { sdk.Serve(sdk.CheckFunc(run)) }

func run(ctx context.Context, args []string) nagios.Result {
	if len(args) == 0 {
		return nagios.Resultf(nagios.Unknown, "UNKNOWN - no command")
	}
	switch args[0] {
	case "deadline": // whether the agent's deadline came with the call
		if _, ok := ctx.Deadline(); !ok {
			return nagios.Resultf(nagios.Unknown, "UNKNOWN - no deadline")
		}
		return nagios.Resultf(nagios.OK, "OK - deadline set")
	case "stubborn": // past the deadline, as a careless check would
		time.Sleep(3 * time.Second)
		return nagios.Resultf(nagios.OK, "OK - slept")
	case "panic":
		panic("asked to")
	case "exit":
		os.Exit(7)
	case "env":
		wd, _ := os.Getwd()
		return nagios.Result{State: nagios.Warning, Output: "WARNING - " + os.Getenv(args[1]), Long: wd}
	}
	return nagios.Resultf(nagios.Unknown, "UNKNOWN - unknown command %q", args[0])
}
