package checks

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/immune-ops/immune/fixtures/real"
	"github.com/immune-ops/immune/nagios"
)

// The compatibility tests run each check beside its monitoring-plugins twin
// (Debian's /usr/lib/nagios/plugins) with the same flags on the same inputs,
// and compare what Nagios would read: exit code, status line, perfdata.

const referenceDir = "/usr/lib/nagios/plugins"

// pluginRun is what one plugin run printed and returned.
type pluginRun struct {
	Code   int
	Raw    string
	Result nagios.Result
}

// referencePlugin returns the path of Debian's plugin. Without it the test is
// skipped, unless IMMUNE_REQUIRE_REAL is set (make test sets it), so the
// suite cannot pass by skipping what it is meant to prove.
func referencePlugin(t testing.TB, name string) string {
	t.Helper()
	return real.Program(t, filepath.Join(referenceDir, name), "monitoring-plugins")
}

// runOurs runs our check in process, as bin/<name> would.
func runOurs(t testing.TB, ctx context.Context, name string, args ...string) pluginRun {
	t.Helper()
	var out bytes.Buffer
	code := Main(ctx, name, args, &out)
	return parseRun(t, "ours", code, out.String())
}

// runTheirs runs Debian's plugin with the same arguments.
func runTheirs(t testing.TB, name string, args ...string) pluginRun {
	t.Helper()
	code, out := execTheirs(t, name, args...)
	return parseRun(t, "theirs", code, out)
}

// exitOfTheirs runs Debian's plugin for its exit code alone: its usage text
// is no plugin output to parse.
func exitOfTheirs(t testing.TB, name string, args ...string) int {
	t.Helper()
	code, _ := execTheirs(t, name, args...)
	return code
}

// execTheirs runs Debian's plugin in the C locale, for its exit code and
// standard output.
func execTheirs(t testing.TB, name string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, referencePlugin(t, name), args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatalf("run %s: %v", name, err)
	}
	return 0, string(out)
}

func parseRun(t testing.TB, who string, code int, out string) pluginRun {
	t.Helper()
	r, err := nagios.Parse(out)
	if err != nil {
		t.Errorf("%s: perfdata does not parse: %v\n%s", who, err, out)
	}
	r.State = nagios.StateFromExit(code)
	return pluginRun{Code: code, Raw: out, Result: r}
}

// tolerance says how far two readings of the same quantity, taken at
// different instants, may differ: |a-b| <= Abs + Rel*max(|a|,|b|).
type tolerance struct{ Abs, Rel float64 }

func (tol tolerance) close(a, b float64) bool {
	return math.Abs(a-b) <= tol.Abs+tol.Rel*math.Max(math.Abs(a), math.Abs(b))
}

var numberRE = regexp.MustCompile(`[-+]?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?`)

// sameText compares two status lines: the words must match exactly, the
// numbers within tol.
func sameText(a, b string, tol tolerance) bool {
	if numberRE.ReplaceAllString(a, "#") != numberRE.ReplaceAllString(b, "#") {
		return false
	}
	na, nb := numberRE.FindAllString(a, -1), numberRE.FindAllString(b, -1)
	for i := range na {
		x, _ := strconv.ParseFloat(na[i], 64)
		y, _ := strconv.ParseFloat(nb[i], 64)
		if !tol.close(x, y) {
			return false
		}
	}
	return true
}

// twinCase is one command line to give both twins.
type twinCase struct {
	name string
	args []string
}

// runTwinCases runs each case, as a subtest, through Debian's plugin and
// ours, and compares the two with assertTwins.
func runTwinCases(t *testing.T, plugin string, cases []twinCase, tol tolerance) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			theirs := runTheirs(t, plugin, tc.args...)
			ours := runOurs(t, context.Background(), plugin, tc.args...)
			t.Logf("%q\nours:   %stheirs: %s", tc.args, ours.Raw, theirs.Raw)
			assertTwins(t, ours, theirs, tol)
		})
	}
}

// assertUsageTwins checks that Debian's plugin and ours both refuse each
// command line as a usage error: UNKNOWN, exit 3.
func assertUsageTwins(t *testing.T, plugin string, cases [][]string) {
	t.Helper()
	for _, args := range cases {
		theirs := exitOfTheirs(t, plugin, args...)
		var out strings.Builder
		ours := Main(context.Background(), plugin, args, &out)
		if ours != 3 || theirs != 3 {
			t.Errorf("%q: exit ours %d, theirs %d; want 3 (UNKNOWN)\nours: %s", args, ours, theirs, out.String())
		}
	}
}

// assertTwins checks that ours answers as theirs does: same exit code, the
// same status line and the same perfdata, field by field, numbers within tol.
func assertTwins(t testing.TB, ours, theirs pluginRun, tol tolerance) {
	t.Helper()
	if ours.Code != theirs.Code {
		t.Errorf("exit code: ours %d, theirs %d\nours:   %s\ntheirs: %s", ours.Code, theirs.Code, ours.Raw, theirs.Raw)
	}
	if !sameText(ours.Result.Output, theirs.Result.Output, tol) {
		t.Errorf("status line differs:\nours:   %q\ntheirs: %q", ours.Result.Output, theirs.Result.Output)
	}
	assertSamePerf(t, ours.Result.Perf, theirs.Result.Perf, tol)
}

func assertSamePerf(t testing.TB, ours, theirs []nagios.Perf, tol tolerance) {
	t.Helper()
	if len(ours) != len(theirs) {
		t.Errorf("perfdata: ours has %d items, theirs %d\nours:   %s\ntheirs: %s",
			len(ours), len(theirs), nagios.FormatPerf(ours), nagios.FormatPerf(theirs))
		return
	}
	for i := range ours {
		o, th := ours[i], theirs[i]
		if o.Label != th.Label || o.UOM != th.UOM || o.Unknown != th.Unknown {
			t.Errorf("perfdata %d: ours %s, theirs %s", i, o, th)
			continue
		}
		if !tol.close(o.Value, th.Value) || !sameRange(o.Warn, th.Warn, tol) || !sameRange(o.Crit, th.Crit, tol) ||
			!sameFloat(o.Min, th.Min, tol) || !sameFloat(o.Max, th.Max, tol) {
			t.Errorf("perfdata %q: ours %s, theirs %s", o.Label, o, th)
		}
	}
}

func sameRange(a, b *nagios.Range, tol tolerance) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Inside == b.Inside && sameBound(a.Start, b.Start, tol) && sameBound(a.End, b.End, tol)
}

func sameBound(a, b float64, tol tolerance) bool {
	if math.IsInf(a, 0) || math.IsInf(b, 0) {
		return a == b
	}
	return tol.close(a, b)
}

func sameFloat(a, b *float64, tol tolerance) bool {
	if a == nil || b == nil {
		return a == b
	}
	return tol.close(*a, *b)
}
