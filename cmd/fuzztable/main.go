// Command fuzztable runs every fuzz target in the module for a bounded
// time and prints a table of what each did: executions, executions per
// second, and whether it crashed, with the input go test wrote when it
// did. `make fuzz` runs it. It exits 1 when any target crashed.
//
// Each target runs alone (go test allows one -fuzz target per run), with
// -fuzzminimizetime bounded: minimizing every new input for the default
// minute is what left FuzzParse at 0 execs/s.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

func main() {
	fuzzTime := flag.Duration("fuzztime", envDuration("FUZZTIME", 10*time.Second), "time each target fuzzes (default $FUZZTIME or 10s)")
	minimize := flag.Duration("fuzzminimizetime", 5*time.Second, "time spent minimizing each new or failing input")
	match := flag.String("run", "", "only targets whose name matches this regexp")
	flag.Parse()
	patterns := flag.Args()
	if len(patterns) == 0 {
		patterns = []string{"./..."}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout, patterns, *match, *fuzzTime, *minimize); err != nil {
		fmt.Fprintln(os.Stderr, "fuzztable:", err)
		os.Exit(1)
	}
}

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return d
	}
	return def
}

// target is one fuzz target: its package's import path and directory.
type target struct {
	pkg, dir, name string
}

func run(ctx context.Context, w io.Writer, patterns []string, match string, fuzzTime, minimize time.Duration) error {
	re, err := regexp.Compile(match)
	if err != nil {
		return fmt.Errorf("-run %q: %w", match, err)
	}
	targets, err := listTargets(ctx, patterns)
	if err != nil {
		return err
	}
	var results []result
	crashed := 0
	for _, t := range targets {
		if !re.MatchString(t.name) {
			continue
		}
		fmt.Fprintf(os.Stderr, "fuzz %s %s for %s\n", t.pkg, t.name, fuzzTime)
		r := fuzz(ctx, t, fuzzTime, minimize)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		results = append(results, r)
		if r.crashed {
			crashed++
		}
	}
	printTable(w, results)
	if crashed > 0 {
		return fmt.Errorf("%d of %d targets crashed", crashed, len(results))
	}
	return nil
}

// listTargets asks go test for the fuzz targets of every package matching
// patterns whose tests have any.
func listTargets(ctx context.Context, patterns []string) ([]target, error) {
	args := append([]string{"list", "-f", "{{.ImportPath}}\t{{.Dir}}\t{{len .TestGoFiles}}\t{{len .XTestGoFiles}}"}, patterns...)
	out, err := exec.CommandContext(ctx, "go", args...).Output()
	if err != nil {
		return nil, fmt.Errorf("go list %s: %w", strings.Join(patterns, " "), err)
	}
	var targets []target
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 4 || (f[2] == "0" && f[3] == "0") || !hasFuzzFunc(f[1]) {
			continue
		}
		list, err := exec.CommandContext(ctx, "go", "test", "-list", "^Fuzz", f[0]).Output()
		if err != nil {
			return nil, fmt.Errorf("go test -list ^Fuzz %s: %w", f[0], err)
		}
		for _, name := range strings.Fields(string(list)) {
			if strings.HasPrefix(name, "Fuzz") {
				targets = append(targets, target{pkg: f[0], dir: f[1], name: name})
			}
		}
	}
	return targets, nil
}

// hasFuzzFunc tells whether a _test.go file in dir declares a fuzz
// target, to spare building the tests of the packages with none.
func hasFuzzFunc(dir string) bool {
	files, _ := filepath.Glob(filepath.Join(dir, "*_test.go"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err == nil && fuzzFuncRE.Match(data) {
			return true
		}
	}
	return false
}

var fuzzFuncRE = regexp.MustCompile(`(?m)^func Fuzz\w*\(`)

// fuzz runs one target and reads what it did from go test's output.
func fuzz(ctx context.Context, t target, fuzzTime, minimize time.Duration) result {
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-fuzz", "^"+t.name+"$",
		"-fuzztime", fuzzTime.String(), "-fuzzminimizetime", minimize.String(), t.pkg)
	if dir := fastTempDir(); dir != "" {
		cmd.Env = append(os.Environ(), "TMPDIR="+dir)
	}
	out, err := cmd.CombinedOutput()
	r := parseOutput(strings.NewReader(string(out)))
	r.target = t
	if err != nil {
		r.crashed = true
		if r.input == "" && r.reason == "" {
			r.reason = lastLine(string(out))
		}
	}
	if r.input != "" {
		rel, err := filepath.Rel(mustGetwd(), filepath.Join(t.dir, r.input))
		if err == nil {
			r.input = rel
		}
	}
	return r
}

// fastTempDir is a memory-backed dir for the targets' temporary files
// when there is one and TMPDIR names none: the spool and store targets
// fsync at every step, which on disk makes them several times slower.
func fastTempDir() string {
	if os.Getenv("TMPDIR") != "" {
		return ""
	}
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		return "/dev/shm"
	}
	return ""
}

func mustGetwd() string {
	wd, _ := os.Getwd()
	return wd
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// result is what one target did.
type result struct {
	target
	execs   int64
	elapsed time.Duration
	crashed bool
	// input is the failing input go test wrote, relative to the package.
	input string
	// reason is the failure when go test wrote no input (a build error).
	reason string
}

// perSecond is the executions per second over the whole run: the rate in
// go test's last line covers only its last few seconds.
func (r result) perSecond() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.execs) / r.elapsed.Seconds()
}

var (
	// fuzz: elapsed: 15s, execs: 186628 (0/sec), new interesting: 164 (total: 172)
	progressRE = regexp.MustCompile(`^fuzz: elapsed: (\S+), execs: (\d+) \(`)
	// Failing input written to testdata/fuzz/FuzzX/9f73b4d211d3cd95
	inputRE = regexp.MustCompile(`Failing input written to (\S+)`)
)

// parseOutput reads the last progress line of go test -fuzz's output and
// the failing input it wrote, if any.
func parseOutput(r io.Reader) result {
	var res result
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if m := progressRE.FindStringSubmatch(line); m != nil {
			d, err1 := time.ParseDuration(m[1])
			n, err2 := strconv.ParseInt(m[2], 10, 64)
			if err1 == nil && err2 == nil {
				res.elapsed, res.execs = d, n
			}
			continue
		}
		if m := inputRE.FindStringSubmatch(line); m != nil {
			res.input, res.crashed = m[1], true
		}
	}
	return res
}

func printTable(w io.Writer, results []result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "package\ttarget\texecs\texecs/s\tcrashes")
	for _, r := range results {
		crash := "0"
		if r.crashed {
			crash = "1"
			switch {
			case r.input != "":
				crash += " " + r.input
			case r.reason != "":
				crash += " " + r.reason
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%s\n", r.pkg, r.name, r.execs, r.perSecond(), crash)
	}
	tw.Flush()
}
