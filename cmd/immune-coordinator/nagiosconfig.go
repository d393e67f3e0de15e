package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/immune-ops/immune/cmd/internal/cli"
	"github.com/immune-ops/immune/cmd/internal/cmdflags"

	"github.com/immune-ops/immune/conf"
	"github.com/immune-ops/immune/nagios/objects"
)

// nagios-config needs no coordinator, but it reads the coordinator's fleet
// config, so it lives beside the commands that do.
func init() {
	clientCommands["nagios-config"] = runNagiosConfig
}

func runNagiosConfig(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("immune nagios-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	flags := cmdflags.NagiosConfigFlags(fs)
	fleetFile, out, format, pluginDir, intervalLength := flags.Fleet, flags.Out, flags.Format, flags.PluginDir, flags.IntervalLength
	if code, done := cli.Parse(fs, args, fs.Name(), stdout); done {
		return code
	}
	if *fleetFile == "" || *out == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "immune nagios-config: usage: --fleet FILE --out DIR [--format nagios|icinga2]")
		return 2
	}
	fleet, err := conf.LoadFleetSettings(*fleetFile)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	files, err := objects.Generate(fleet, objects.Options{Format: *format, PluginDir: *pluginDir, IntervalLength: *intervalLength})
	if err != nil {
		fmt.Fprintf(stderr, "immune nagios-config: %v\n", err)
		return 2
	}
	if err := objects.Write(*out, files); err != nil {
		fmt.Fprintf(stderr, "immune nagios-config: %v\n", err)
		return 1
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		fmt.Fprintf(stdout, "wrote %s/%s\n", *out, name)
	}
	return 0
}
