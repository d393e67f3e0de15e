package plugins

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/immune-ops/immune/checks"
	"github.com/immune-ops/immune/fixtures/procs"
	"github.com/immune-ops/immune/fixtures/real"
	"github.com/immune-ops/immune/internal/subprocess"
	"github.com/immune-ops/immune/nagios"
)

func TestExecResults(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "check_not_executable")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\necho OK\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		path   string
		args   []string
		opts   ExecOptions
		state  nagios.State
		output string // the result as printed
	}{{
		name:  "perfdata and long output",
		path:  testdata(t, "perf.sh"),
		state: nagios.Warning,
		output: "DISK WARNING - free space: / 3326 MB (56%);|/=2643MB;5948;5958;0;5968 /boot=68MB;88;93;0;98 /home=69357MB;253404;253409;0;253414 /var/log=818MB;970;975;0;980\n" +
			"/ 15272 MB (77%);\n/boot 68 MB (69%);\n/home 69357 MB (27%);\n/var/log 819 MB (84%);\n",
	}, {
		name:   "exit code 4",
		path:   testdata(t, "exit4.sh"),
		state:  nagios.Unknown,
		output: "UNKNOWN - plugin " + testdata(t, "exit4.sh") + " exited with code 4, outside 0 to 3|x=4\nWEIRD - exit code 4 ahead\n",
	}, {
		name:   "killed by a signal",
		path:   testdata(t, "signal.sh"),
		state:  nagios.Unknown,
		output: "UNKNOWN - plugin " + testdata(t, "signal.sh") + " was killed by signal 9 (killed)\nDOOMED - about to be killed\n",
	}, {
		name:   "stderr only",
		path:   testdata(t, "stderr.sh"),
		state:  nagios.Critical,
		output: "(No output on stdout) stderr: config file /etc/x.conf: no such file\nsecond line of stderr\n",
	}, {
		name:   "no output",
		path:   testdata(t, "silent.sh"),
		state:  nagios.OK,
		output: "(No output returned from plugin)\n",
	}, {
		name:   "environment and directory",
		path:   testdata(t, "env.sh"),
		opts:   ExecOptions{Env: []string{"IMMUNE_TEST=from the check"}, Dir: dir},
		state:  nagios.OK,
		output: "ENV OK - IMMUNE_TEST=from the check\n" + dir + "\n",
	}, {
		name:   "missing",
		path:   "/nonexistent/check_missing",
		state:  nagios.Unknown,
		output: "UNKNOWN - cannot run plugin /nonexistent/check_missing: no such file or directory\n",
	}, {
		name:   "not executable",
		path:   notExec,
		state:  nagios.Unknown,
		output: "UNKNOWN - cannot run plugin " + notExec + ": permission denied\n",
	}, {
		name:   "not in PATH",
		path:   "check_immune_nowhere",
		state:  nagios.Unknown,
		output: "UNKNOWN - cannot run plugin check_immune_nowhere: exec: \"check_immune_nowhere\": executable file not found in $PATH\n",
	}}
	t.Setenv("IMMUNE_TEST", "from the agent")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := NewExec(tt.path, tt.args, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			r := e.Run(context.Background())
			if r.State != tt.state || r.String() != tt.output {
				t.Errorf("got %v\n%s\nwant %v\n%s", r.State, r, tt.state, tt.output)
			}
		})
	}
}

func TestExecTruncatesOutput(t *testing.T) {
	path := testdata(t, "flood.sh")
	e, err := NewExec(path, nil, ExecOptions{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	r := e.Run(context.Background())
	const status = "FLOOD OK - here it comes|lines=1\n"
	const line = "a line of output that nobody asked for\n"
	kept := len(status) + (MaxOutput-len(status))/len(line)*len(line)
	wantNote := fmt.Sprintf("(output truncated: kept the first %d of %d bytes)", kept, len(status)+1<<20)
	if r.State != nagios.OK || r.Output != "FLOOD OK - here it comes" || nagios.FormatPerf(r.Perf) != "lines=1" {
		t.Errorf("got %v %q %q", r.State, r.Output, nagios.FormatPerf(r.Perf))
	}
	if !strings.HasSuffix(r.Long, strings.Repeat(strings.TrimSuffix(line, "\n")+"\n", 2)+wantNote) {
		t.Errorf("long output ends %q, want whole lines then %q", r.Long[max(0, len(r.Long)-200):], wantNote)
	}
	if n := len(r.String()); n > MaxOutput+len(wantNote)+1 {
		t.Errorf("result is %d bytes, over the %d kept", n, MaxOutput)
	}
}

// TestExecTimeoutKillsGroup runs plugins that hang with a child of their
// own, and checks that after Run neither is left: not running, and no
// zombie of ours.
func TestExecTimeoutKillsGroup(t *testing.T) {
	tests := []struct {
		name   string
		script string
		state  nagios.State
		long   string
	}{
		{"dies on SIGTERM", "sleeper.sh", nagios.Critical, "SLEEPER OK - about to sleep"},
		{"ignores SIGTERM", "stubborn.sh", nagios.Unknown, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := testdata(t, tt.script)
			pidFile := filepath.Join(t.TempDir(), "pids")
			e, err := NewExec(path, []string{pidFile}, ExecOptions{Timeout: 500 * time.Millisecond, TimeoutState: tt.state})
			if err != nil {
				t.Fatal(err)
			}
			r := e.Run(context.Background())
			want := nagios.Result{State: tt.state, Output: fmt.Sprintf("%s - plugin %s timed out after 0.5 seconds", tt.state, path), Long: tt.long}
			if r.String() != want.String() || r.State != want.State {
				t.Errorf("got %v %q, want %v %q", r.State, r, want.State, want)
			}
			child, grandchild := procs.ReadPids(t, pidFile)
			if state, _ := procs.Stat(child); state != 0 {
				t.Errorf("plugin %d left as %c: not reaped", child, state)
			}
			// Not ours to reap: it may still be finishing its exit, and
			// its pipes, which Run waited for, close early in that.
			procs.WaitGone(t, grandchild)
		})
	}
}

// TestExecUnderChecksRun runs the stubborn plugin as the agent does, through
// checks.Run: the result must be the plugin's timeout, reached within the
// grace checks.Run allows, not checks.Run's own complaint.
func TestExecUnderChecksRun(t *testing.T) {
	path := testdata(t, "stubborn.sh")
	e, err := NewExec(path, []string{filepath.Join(t.TempDir(), "pids")}, ExecOptions{Timeout: 300 * time.Millisecond, TimeoutState: nagios.Critical})
	if err != nil {
		t.Fatal(err)
	}
	r := checks.Run(context.Background(), "stubborn", e)
	if want := "CRITICAL - plugin " + path + " timed out after 0.3 seconds"; r.State != nagios.Critical || r.Output != want {
		t.Errorf("got %v %q, want %q", r.State, r.Output, want)
	}
}

func TestExecCanceled(t *testing.T) {
	path := testdata(t, "sleeper.sh")
	e, err := NewExec(path, []string{filepath.Join(t.TempDir(), "pids")}, ExecOptions{TimeoutState: nagios.Critical})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := e.Run(ctx)
	if want := "UNKNOWN - plugin " + path + " canceled after 0 seconds"; r.State != nagios.Unknown || r.Output != want {
		t.Errorf("got %v %q, want %q", r.State, r.Output, want)
	}
}

// requireReal finds a Debian monitoring-plugins binary: a test that needs it
// fails when IMMUNE_REQUIRE_REAL is set (make test installs them) and is
// skipped otherwise.
func requireReal(t *testing.T, name string) string {
	t.Helper()
	return real.Program(t, "/usr/lib/nagios/plugins/"+name, "monitoring-plugins")
}

// runDirect runs a plugin as Nagios would, for comparison with Exec.
func runDirect(t *testing.T, path string, args ...string) nagios.Result {
	t.Helper()
	out, err := exec.Command(path, args...).Output()
	code := 0
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
	} else if err != nil {
		t.Fatalf("run %s: %v", path, err)
	}
	r, _ := nagios.Parse(string(out))
	r.State = nagios.StateFromExit(code)
	return r
}

// TestExecDebianPlugins runs monitoring-plugins' own binaries through Exec
// and directly, and wants the same result from both.
func TestExecDebianPlugins(t *testing.T) {
	tests := []struct {
		plugin string
		args   []string
		// volatile results (a load average) are compared by state and
		// perfdata labels only.
		volatile bool
	}{
		{plugin: "check_dummy", args: []string{"0", "all fine"}},
		{plugin: "check_dummy", args: []string{"1", "getting full"}},
		{plugin: "check_dummy", args: []string{"2"}},
		{plugin: "check_dummy", args: []string{"3", "no idea"}},
		{plugin: "check_dummy", args: []string{"4", "out of range"}},
		{plugin: "check_dummy", args: []string{"--bogus"}},
		{plugin: "check_load", args: []string{"-w", "1000,1000,1000", "-c", "2000,2000,2000"}, volatile: true},
		{plugin: "check_load", args: []string{"-r", "-w", "0,0,0", "-c", "0,0,0"}, volatile: true},
	}
	for _, tt := range tests {
		t.Run(tt.plugin+" "+strings.Join(tt.args, " "), func(t *testing.T) {
			path := requireReal(t, tt.plugin)
			e, err := NewExec(path, tt.args, ExecOptions{Timeout: 10 * time.Second, TimeoutState: nagios.Critical})
			if err != nil {
				t.Fatal(err)
			}
			ours := e.Run(context.Background())
			theirs := runDirect(t, path, tt.args...)
			if ours.State != theirs.State {
				t.Errorf("state %v, Debian's run %v", ours.State, theirs.State)
			}
			if !tt.volatile {
				if ours.String() != theirs.String() {
					t.Errorf("got %q, Debian's run %q", ours, theirs)
				}
				return
			}
			if got, want := perfLabels(ours.Perf), perfLabels(theirs.Perf); got != want {
				t.Errorf("perfdata labels %q, Debian's run %q", got, want)
			}
		})
	}
}

func perfLabels(items []nagios.Perf) string {
	labels := make([]string, len(items))
	for i, p := range items {
		labels[i] = p.Label
	}
	return strings.Join(labels, " ")
}

// TestExecDebianTimeout stops a real check_tcp waiting on a loopback server
// that never answers, well before the plugin's own -t.
func TestExecDebianTimeout(t *testing.T) {
	path := requireReal(t, "check_tcp")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		// Accept and say nothing; closing the listener ends this.
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	e, err := NewExec(path, []string{"-H", "127.0.0.1", "-p", port, "-s", "hello", "-e", "never", "-t", "30"},
		ExecOptions{Timeout: 500 * time.Millisecond, TimeoutState: nagios.Critical})
	if err != nil {
		t.Fatal(err)
	}
	r := e.Run(context.Background())
	if want := "CRITICAL - plugin " + path + " timed out after 0.5 seconds"; r.State != nagios.Critical || r.Output != want {
		t.Errorf("got %v %q, want %q", r.State, r.Output, want)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name    string
		path    string
		timeout time.Duration
		state   nagios.State
		env     []string
		start   time.Duration
		want    string
	}{
		{name: "empty path", want: "plugin: empty path"},
		{name: "negative timeout", path: "/p", timeout: -time.Second, want: "plugin /p: timeout -1s is negative"},
		{name: "bad state", path: "/p", state: 7, want: "plugin /p: timeout state 7 is not 0 to 3"},
		{name: "env without =", path: "/p", env: []string{"FOO"}, want: `plugin /p: environment entry "FOO" is not KEY=value`},
		{name: "env without key", path: "/p", env: []string{"=x"}, want: `plugin /p: environment entry "=x" is not KEY=value`},
		{name: "negative start timeout", path: "/p", start: -time.Second, want: "plugin /p: start timeout -1s is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, goErr := NewGo(tt.path, nil, GoOptions{Timeout: tt.timeout, TimeoutState: tt.state, Env: tt.env, StartTimeout: tt.start})
			if goErr == nil || goErr.Error() != tt.want {
				t.Errorf("NewGo: got %v, want %q", goErr, tt.want)
			}
			if tt.start != 0 {
				return
			}
			_, execErr := NewExec(tt.path, nil, ExecOptions{Timeout: tt.timeout, TimeoutState: tt.state, Env: tt.env})
			if execErr == nil || execErr.Error() != tt.want {
				t.Errorf("NewExec: got %v, want %q", execErr, tt.want)
			}
		})
	}
}

func TestCapped(t *testing.T) {
	tests := []struct {
		name    string
		writes  []string
		max     int
		text    string
		dropped int64
	}{
		{"fits", []string{"OK\n", "more\n"}, 16, "OK\nmore\n", 0},
		{"cut at the last whole line", []string{"OK|a=1\n", "long line\n"}, 12, "OK|a=1\n", 5},
		{"one long line kept as cut", []string{"OK - 0123456789"}, 8, "OK - 012", 7},
		{"writes after full", []string{"12345678", "9"}, 8, "12345678", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &subprocess.Buffer{Max: tt.max}
			for _, w := range tt.writes {
				if n, err := c.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			if keptText(c) != tt.text || c.Dropped() != tt.dropped {
				t.Errorf("got %q dropped %d, want %q dropped %d", keptText(c), c.Dropped(), tt.text, tt.dropped)
			}
		})
	}
}
