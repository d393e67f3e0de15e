package checks

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/immune-ops/immune/nagios"
)

var growthStart = time.Date(2026, time.November, 21, 22, 0, 0, 0, time.UTC)

// runLogGrowth runs check_log_growth at now.
func runLogGrowth(t *testing.T, ctx context.Context, now time.Time, args ...string) nagios.Result {
	t.Helper()
	c, err := newLogGrowth(args)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	gc := c.(*logGrowthCheck)
	gc.now = func() time.Time { return now }
	return gc.Run(ctx)
}

func syslogLines(n int) string {
	return strings.Repeat("Nov 21 22:00:00 web1 CRON[1234]: (root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)\n", n)
}

// TestLogGrowthRuns runs the check again and again on one log, as Nagios
// would, through growth, quiet periods and rotations.
func TestLogGrowthRuns(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "user.log")
	args := []string{"-f", log, "--state-dir", filepath.Join(dir, "state"), "-w", "1.2", "-c", "2.5"}
	rotated := "the log was rotated since the last run: counted the new file from its start"
	steps := []struct {
		name   string
		change func(t *testing.T)
		at     time.Duration // after growthStart
		state  nagios.State
		want   string // %s is the log's path
		long   string
	}{
		{"first run records the baseline", func(t *testing.T) { logtailWrite(t, log, syslogLines(10)) }, 0, nagios.OK,
			"LOG GROWTH OK - %s baseline recorded at 980 bytes, rate from the next run\n", ""},
		{"one line a second", func(t *testing.T) { logtailAppend(t, log, syslogLines(600)) }, 600 * time.Second, nagios.OK,
			"LOG GROWTH OK - %s increasing by 1.00 lines per second (600 lines over 600 second period)|rate=1.00;1.20;2.50;0.00\n", ""},
		{"quiet", func(*testing.T) {}, 1219 * time.Second, nagios.OK,
			"LOG GROWTH OK - %s increasing by 0.00 lines per second (0 lines over 619 second period)|rate=0.00;1.20;2.50;0.00\n", ""},
		{"an unfinished line is not a line yet", func(t *testing.T) { logtailAppend(t, log, "Nov 21 22:20:00 web1 kernel: partial") },
			1319 * time.Second, nagios.OK,
			"LOG GROWTH OK - %s increasing by 0.00 lines per second (0 lines over 100 second period)|rate=0.00;1.20;2.50;0.00\n", ""},
		{"its newline makes it one", func(t *testing.T) { logtailAppend(t, log, "\n"+syslogLines(149)) }, 1419 * time.Second, nagios.Warning,
			"LOG GROWTH WARNING - %s increasing by 1.50 lines per second (150 lines over 100 second period)|rate=1.50;1.20;2.50;0.00\n", ""},
		{"rotated by rename", func(t *testing.T) {
			if err := os.Rename(log, log+".1"); err != nil {
				t.Fatal(err)
			}
			logtailWrite(t, log, syslogLines(30))
		}, 1719 * time.Second, nagios.OK,
			"LOG GROWTH OK - %s increasing by 0.10 lines per second (30 lines over 300 second period)|rate=0.10;1.20;2.50;0.00\n" + rotated + "\n", rotated},
		{"rotated by copytruncate", func(t *testing.T) { logtailWrite(t, log, syslogLines(20)) }, 1819 * time.Second, nagios.OK,
			"LOG GROWTH OK - %s increasing by 0.20 lines per second (20 lines over 100 second period)|rate=0.20;1.20;2.50;0.00\n" + rotated + "\n", rotated},
		{"copytruncated and grown past the old offset", func(t *testing.T) {
			logtailWrite(t, log, "Nov 21 22:31:00 web1 systemd[1]: Started session 1.\n"+syslogLines(299))
		}, 1919 * time.Second, nagios.Critical,
			"LOG GROWTH CRITICAL - %s increasing by 3.00 lines per second (300 lines over 100 second period)|rate=3.00;1.20;2.50;0.00\n" + rotated + "\n", rotated},
		{"emptied", func(t *testing.T) { logtailWrite(t, log, "") }, 1920 * time.Second, nagios.OK,
			"LOG GROWTH OK - %s increasing by 0.00 lines per second (0 lines over 1 second period)|rate=0.00;1.20;2.50;0.00\n" + rotated + "\n", rotated},
		{"grows from empty", func(t *testing.T) { logtailAppend(t, log, syslogLines(5)) }, 1930 * time.Second, nagios.OK,
			"LOG GROWTH OK - %s increasing by 0.50 lines per second (5 lines over 10 second period)|rate=0.50;1.20;2.50;0.00\n", ""},
	}
	for _, st := range steps {
		st.change(t)
		r := runLogGrowth(t, context.Background(), growthStart.Add(st.at), args...)
		if want := fmt.Sprintf(st.want, log); r.State != st.state || r.String() != want || r.Long != st.long {
			t.Fatalf("%s:\n got %s %q\nwant %s %q", st.name, r.State, r.String(), st.state, want)
		}
	}
}

func TestLogGrowthStateFiles(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	logtailWrite(t, log, syslogLines(3))
	cache := filepath.Join(dir, "cache")
	t.Setenv("XDG_CACHE_HOME", cache)
	wantDefault := filepath.Join(cache, "immune", growthStateName(log))
	tests := []struct {
		name string
		args []string
		want string // the state file the run must write
	}{
		{"default: the user's cache directory", []string{"-f", log}, wantDefault},
		{"--state-dir", []string{"-f", log, "--state-dir", filepath.Join(dir, "dir")}, filepath.Join(dir, "dir", growthStateName(log))},
		{"--state-file", []string{"-f", log, "--state-file", filepath.Join(dir, "one", "state.json")}, filepath.Join(dir, "one", "state.json")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runLogGrowth(t, context.Background(), growthStart, tt.args...)
			if r.State != nagios.OK || !strings.Contains(r.Output, "baseline recorded at 294 bytes") {
				t.Errorf("got %s %q", r.State, r.Output)
			}
			var st logGrowthState
			if found, err := loadState(tt.want, &st); !found || err != nil || st.Position.Offset != 294 || !st.Time.Equal(growthStart) || st.File != log {
				t.Errorf("state file %s: found %v, err %v, %+v", tt.want, found, err, st)
			}
			entries, err := os.ReadDir(filepath.Dir(tt.want))
			if err != nil || len(entries) != 1 {
				t.Errorf("state directory holds %v (%v), want only the state file", entries, err)
			}
		})
	}

	// Two logs of one name in different directories keep separate states.
	if a, b := growthStateName("/var/log/a/app.log"), growthStateName("/var/log/b/app.log"); a == b || !strings.HasPrefix(a, "log_growth-app.log-") {
		t.Errorf("state names %q and %q", a, b)
	}
	if name := growthStateName("/var/log/we ird:name.log"); strings.ContainsAny(name, " :/") {
		t.Errorf("state name %q keeps characters a file name should not", name)
	}
}

func TestLogGrowthProblems(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "user.log")
	logtailWrite(t, log, syslogLines(10))
	state := filepath.Join(dir, "state.json")
	args := []string{"-f", log, "--state-file", state}

	// The clock went back: UNKNOWN, and the state stays for the next run.
	runLogGrowth(t, context.Background(), growthStart, args...)
	r := runLogGrowth(t, context.Background(), growthStart.Add(-time.Minute), args...)
	if r.State != nagios.Unknown || r.Output != "LOG GROWTH UNKNOWN - no time has passed since the last run at 2026-11-21T22:00:00Z (did the clock go back?)" {
		t.Errorf("clock went back: %s %q", r.State, r.Output)
	}
	logtailAppend(t, log, syslogLines(60))
	r = runLogGrowth(t, context.Background(), growthStart.Add(time.Minute), args...)
	if r.Output != "LOG GROWTH OK - "+log+" increasing by 1.00 lines per second (60 lines over 60 second period)" {
		t.Errorf("after the clock went back: %q", r.Output)
	}

	logtailWrite(t, state, "garbage")
	r = runLogGrowth(t, context.Background(), growthStart.Add(2*time.Minute), args...)
	if r.State != nagios.OK || !strings.Contains(r.Output, "baseline recorded") || !strings.Contains(r.Long, "corrupt state file") {
		t.Errorf("corrupt state: %s %q %q", r.State, r.Output, r.Long)
	}

	other := filepath.Join(dir, "other.log")
	logtailWrite(t, other, "")
	r = runLogGrowth(t, context.Background(), growthStart.Add(3*time.Minute), "-f", other, "--state-file", state)
	if r.State != nagios.OK || !strings.Contains(r.Output, "baseline recorded at 0 bytes") || !strings.Contains(r.Long, "was kept for "+log) {
		t.Errorf("state of another log: %s %q %q", r.State, r.Output, r.Long)
	}

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing log", []string{"-f", filepath.Join(dir, "missing.log"), "--state-file", state},
			"LOG GROWTH UNKNOWN - cannot read log " + filepath.Join(dir, "missing.log") + ": no such file or directory"},
		{"directory for a log", []string{"-f", dir, "--state-file", state},
			"LOG GROWTH UNKNOWN - cannot read log " + dir + ": not a regular file"},
		{"state file is a directory", []string{"-f", log, "--state-file", dir},
			"LOG GROWTH UNKNOWN - cannot use state file " + dir + ": is a directory"},
		{"state file cannot be written", []string{"-f", log, "--state-file", filepath.Join(log, "state.json")},
			"LOG GROWTH UNKNOWN - cannot use state file " + filepath.Join(log, "state.json") + ": not a directory"},
	}
	for _, tt := range tests {
		r := runLogGrowth(t, context.Background(), growthStart.Add(time.Hour), tt.args...)
		if r.State != nagios.Unknown || r.Output != tt.want {
			t.Errorf("%s: got %s %q\nwant %q", tt.name, r.State, r.Output, tt.want)
		}
	}
}

func TestLogGrowthTimeout(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "user.log")
	logtailWrite(t, log, syslogLines(10))
	args := []string{"-f", log, "--state-dir", dir, "-t", "3:WARNING"}
	runLogGrowth(t, context.Background(), growthStart, args...)
	logtailAppend(t, log, syslogLines(10))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := runLogGrowth(t, ctx, growthStart.Add(time.Minute), args...)
	if r.State != nagios.Warning || !strings.Contains(r.Output, "context canceled") {
		t.Errorf("got %s %q, want WARNING and the reason", r.State, r.Output)
	}
}

func TestLogGrowthPermissionDenied(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads every file")
	}
	dir := t.TempDir()
	log := filepath.Join(dir, "user.log")
	logtailWrite(t, log, syslogLines(1))
	if err := os.Chmod(log, 0); err != nil {
		t.Fatal(err)
	}
	r := runLogGrowth(t, context.Background(), growthStart, "-f", log, "--state-dir", dir)
	if want := "LOG GROWTH UNKNOWN - cannot read log " + log + ": permission denied"; r.State != nagios.Unknown || r.Output != want {
		t.Errorf("got %s %q, want %q", r.State, r.Output, want)
	}
}

func TestLogGrowthBadArguments(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	tests := []struct {
		args []string
		want string
	}{
		{[]string{}, "-f/--file"},
		{[]string{"-f", "/var/log/syslog", "-w", "x"}, "-w"},
		{[]string{"-f", "/var/log/syslog", "-c", "@"}, "-c"},
		{[]string{"-f", "/var/log/syslog", "-t", "-1"}, "timeout"},
		{[]string{"-f", "/var/log/syslog", "--bogus"}, "bogus"},
	}
	for _, tt := range tests {
		var out strings.Builder
		code := Main(context.Background(), "check_log_growth", tt.args, &out)
		if code != 3 || !strings.HasPrefix(out.String(), "UNKNOWN - check_log_growth: ") || !strings.Contains(out.String(), tt.want) {
			t.Errorf("%v: exit %d, want 3 and %q in\n%s", tt.args, code, tt.want, out.String())
		}
	}

	// No state file, no state directory and nowhere to default to.
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", "")
	var out strings.Builder
	if code := Main(context.Background(), "check_log_growth", []string{"-f", "/var/log/syslog"}, &out); code != 3 || !strings.Contains(out.String(), "--state-dir") {
		t.Errorf("no cache directory: exit %d\n%s", code, out.String())
	}
}
