// Command check_example is an example immune Go plugin, and a template for
// writing one: it counts the regular files in a directory and judges the
// count against the -w and -c ranges. Under the agent it is started once and
// called over gRPC; run by hand it is an ordinary Nagios plugin.
//
//	check_example -d /var/spool/outgoing -w 100 -c 1000
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/immune-ops/immune/nagios"
	"github.com/immune-ops/immune/plugins/sdk"
)

func main() { sdk.Serve(sdk.CheckFunc(run)) }

const usage = "Usage:\ncheck_example -d DIRECTORY [-w RANGE] [-c RANGE]"

// run is one check: the agent sends the arguments with every call, so
// nothing is kept between runs.
func run(ctx context.Context, args []string) nagios.Result {
	fs := pflag.NewFlagSet("check_example", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	dir := fs.StringP("directory", "d", "", "directory whose files are counted")
	warn := fs.StringP("warning", "w", "", "WARNING when the count is outside this range")
	crit := fs.StringP("critical", "c", "", "CRITICAL when the count is outside this range")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nagios.Result{State: nagios.Unknown, Output: "check_example counts the regular files in a directory", Long: usage + "\n\nOptions:\n" + strings.TrimRight(fs.FlagUsages(), "\n")}
		}
		return usageError(err)
	}
	if *dir == "" {
		return usageError(errors.New("-d/--directory is required"))
	}
	if fs.NArg() > 0 {
		return usageError(fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	t, err := nagios.ParseThresholds(*warn, *crit)
	if err != nil {
		return usageError(err)
	}
	n, err := countFiles(ctx, *dir)
	if err != nil {
		return nagios.Resultf(nagios.Unknown, "FILES UNKNOWN - %v", err)
	}
	state := t.State(float64(n))
	return nagios.Result{
		State:  state,
		Output: fmt.Sprintf("FILES %s - %d files in %s", state, n, *dir),
		Perf: []nagios.Perf{{
			Label: "files", Value: float64(n), Warn: t.Warn, Crit: t.Crit, Min: nagios.Float(0),
		}},
	}
}

func usageError(err error) nagios.Result {
	return nagios.Result{State: nagios.Unknown, Output: "FILES UNKNOWN - check_example: " + err.Error(), Long: usage}
}

// countFiles counts the regular files directly in dir, a batch of entries
// at a time so a huge directory still notices its deadline.
func countFiles(ctx context.Context, dir string) (int, error) {
	d, err := os.Open(dir)
	if err != nil {
		return 0, fmt.Errorf("count files: %w", err)
	}
	defer d.Close()
	n := 0
	for {
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("count files in %s: %w", dir, err)
		}
		entries, err := d.ReadDir(1024)
		for _, e := range entries {
			if e.Type().IsRegular() {
				n++
			}
		}
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return 0, fmt.Errorf("count files in %s: %w", dir, err)
		}
	}
}
