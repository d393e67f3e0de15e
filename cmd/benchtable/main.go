// Command benchtable measures immune against the software it replaces and
// prints the figures side by side; `make bench` runs it. Its tables: CPU per
// check execution against the C plugins, NRPE throughput against Debian's
// nrpe daemon, the agent's memory and CPU running 50 checks, and counter
// increments and reads against a real memcached, and the push judge's false
// rollbacks, detection and time to rollback on simulated fleets.
//
// CPU time, not wall time, is what is compared: it is what a check costs a
// busy host, and it is steadier than wall time on a shared machine.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/immune-ops/immune/checks"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == subreaperMode {
		os.Exit(runSubreaper(os.Args[2:]))
	}
	if len(os.Args) > 2 && os.Args[1] == standInMode {
		os.Exit(runStandIns(os.Args[2:]))
	}
	runs := flag.Int("runs", 200, "executions of each check per measurement")
	bin := flag.String("bin", "bin", "directory holding immune's check links (make build)")
	ref := flag.String("ref", "/usr/lib/nagios/plugins", "directory holding the monitoring-plugins twins")
	ours := flag.Int("nrpe-requests", 4000, "NRPE queries sent to immune's agent")
	theirs := flag.Int("nrpe-requests-debian", 1000, "NRPE queries sent to Debian's nrpe")
	warmup := flag.Duration("warmup", 15*time.Second, "agent footprint: time before measuring")
	window := flag.Duration("window", 60*time.Second, "agent footprint: time measured")
	flag.Parse()
	// An interrupt cancels ctx, so the servers started are stopped on the
	// way out rather than left running.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *runs, *bin, *ref, *ours, *theirs, *warmup, *window); err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
}

// run prints the tables in turn, stopping at the first that fails.
func run(ctx context.Context, runs int, bin, ref string, ours, theirs int, warmup, window time.Duration) error {
	if err := checkCPU(ctx, os.Stdout, runs, bin, ref); err != nil {
		return err
	}
	if err := nrpeThroughput(ctx, os.Stdout, bin, ref, ours, theirs); err != nil {
		return err
	}
	if err := agentFootprint(ctx, os.Stdout, bin, ref, warmup, window); err != nil {
		return err
	}
	if err := countersTable(ctx, os.Stdout, 3*time.Second); err != nil {
		return err
	}
	if err := coordinatorTable(ctx, os.Stdout); err != nil {
		return err
	}
	return judgeTable(ctx, os.Stdout, bin)
}

// cpuTime is the user+system CPU time used so far by who (RUSAGE_SELF or RUSAGE_CHILDREN).
func cpuTime(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measure runs fn n times and returns the CPU time per run, counting this
// process and the children it waited for.
func measure(n int, fn func() error) (time.Duration, error) {
	self, kids := cpuTime(syscall.RUSAGE_SELF), cpuTime(syscall.RUSAGE_CHILDREN)
	for i := 0; i < n; i++ {
		if err := fn(); err != nil {
			return 0, err
		}
	}
	used := cpuTime(syscall.RUSAGE_SELF) - self + cpuTime(syscall.RUSAGE_CHILDREN) - kids
	return used / time.Duration(n), nil
}

func execPlugin(path string, args []string) func() error {
	return func() error {
		err := exec.Command(path, args...).Run()
		if _, ok := err.(*exec.ExitError); ok {
			return nil // a non-OK state is still a measured run
		}
		return err
	}
}

func inProcess(name string, args []string) (func() error, error) {
	spec, ok := checks.Lookup(name)
	if !ok {
		return nil, fmt.Errorf("no check %s", name)
	}
	c, err := spec.New(args)
	if err != nil {
		return nil, fmt.Errorf("%s %v: %w", name, args, err)
	}
	return func() error {
		checks.Run(context.Background(), name, c)
		return nil
	}, nil
}

// checkCPU is issue 2's table: CPU per execution of a check run in process,
// our binary run as a process, and the C plugin run as a process.
func checkCPU(ctx context.Context, w *os.File, runs int, bin, ref string) error {
	cases := []struct {
		name string
		args []string
	}{
		{"check_load", []string{"-w", "5,4,3", "-c", "10,8,6"}},
		{"check_disk", []string{"-w", "10%", "-c", "5%", "-p", "/"}},
		{"check_procs", []string{"-w", "500", "-c", "1000"}},
	}
	fmt.Fprintf(w, "CPU time per check execution, %d runs each (targets: in process >= 50x less than the C plugin; our binary <= the C plugin)\n\n", runs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "check\timmune in process\timmune binary\tC plugin (fork/exec)\tC / in process\tbinary / C\t")
	for _, c := range cases {
		if err := ctx.Err(); err != nil {
			return err
		}
		fn, err := inProcess(c.name, c.args)
		if err != nil {
			return err
		}
		inproc, err := measure(runs, fn)
		if err != nil {
			return err
		}
		ours, err := measure(runs, execPlugin(filepath.Join(bin, c.name), c.args))
		if err != nil {
			return fmt.Errorf("run %s (make build first): %w", filepath.Join(bin, c.name), err)
		}
		theirs, err := measure(runs, execPlugin(filepath.Join(ref, c.name), c.args))
		if err != nil {
			return fmt.Errorf("run %s: %w", filepath.Join(ref, c.name), err)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.0fx\t%.2f\t\n", c.name, round(inproc), round(ours), round(theirs),
			float64(theirs)/float64(max(inproc, 1)), float64(ours)/float64(max(theirs, 1)))
	}
	return tw.Flush()
}

func round(d time.Duration) time.Duration {
	switch {
	case d > time.Millisecond:
		return d.Round(10 * time.Microsecond)
	case d > time.Microsecond:
		return d.Round(100 * time.Nanosecond)
	}
	return d
}
