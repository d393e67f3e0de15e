package checks

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/immune-ops/immune/nagios"
)

// procsFixture is a /proc tree of eleven processes: systemd (1), kthreadd
// (2) and a kworker (3), an nginx master (120) with two workers (121 as
// uid 33, running and multi-threaded; 122), a bash session (300) with a
// niced sleep in the foreground (301) and a zombie python3 (130), a java
// with locked memory (400), and systemd-journald (500), whose comm the
// kernel cuts to 15 bytes. Uptime is 1000.5 s.
const procsFixture = "testdata/procs/proc"

// fixtureProcs parses args and runs the check on a fixture tree, as a
// process that is none of the tree's.
func fixtureProcs(t *testing.T, root string, args ...string) nagios.Result {
	t.Helper()
	c, err := newProcs(args)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	pc := c.(*procsCheck)
	pc.self, pc.parent = 0, 0
	return pc.Run(WithProcRoot(context.Background(), root))
}

func TestProcsFixture(t *testing.T) {
	tests := []struct {
		args  []string
		state nagios.State
		want  string
	}{
		{nil, nagios.OK, "PROCS OK: 11 processes|procs=11;;;0\n"},
		{[]string{"-C", "nginx"}, nagios.OK,
			"PROCS OK: 3 processes with command name 'nginx'|procs=3;;;0\n"},
		{[]string{"-C", "nginx", "-w", "2", "-c", "5"}, nagios.Warning,
			"PROCS WARNING: 3 processes with command name 'nginx'|procs=3;2;5;0\n"},
		{[]string{"--critical=1:", "--command=sshd"}, nagios.Critical,
			"PROCS CRITICAL: 0 processes with command name 'sshd'|procs=0;;1:;0\n"},
		{[]string{"-w", "@2:3", "-C", "nginx"}, nagios.Warning,
			"PROCS WARNING: 3 processes with command name 'nginx'|procs=3;@2:3;;0\n"},
		// Kernel threads are kthreadd's children; kthreadd itself stays.
		{[]string{"-k"}, nagios.OK, "PROCS OK: 10 processes|procs=10;;;0\n"},
		{[]string{"-k", "-C", "kthreadd"}, nagios.OK,
			"PROCS OK: 1 process with command name 'kthreadd'|procs=1;;;0\n"},
		// -C matches ps's comm column without its path: kworker/0:1 is "0:1".
		{[]string{"-C", "0:1"}, nagios.OK, "PROCS OK: 1 process with command name '0:1'|procs=1;;;0\n"},
		{[]string{"-C", "systemd-journald"}, nagios.OK,
			"PROCS OK: 0 processes with command name 'systemd-journald'|procs=0;;;0\n"},
		{[]string{"-C", "systemd-journal"}, nagios.OK,
			"PROCS OK: 1 process with command name 'systemd-journal'|procs=1;;;0\n"},
		// -s is a substring of ps's STAT: Ss, S, I<, S<s, Rl, S, Z, Ss, SN+, SLsl, Ss.
		{[]string{"-s", "S"}, nagios.OK, "PROCS OK: 8 processes with STATE = S|procs=8;;;0\n"},
		{[]string{"-s", "Ss"}, nagios.OK, "PROCS OK: 3 processes with STATE = Ss|procs=3;;;0\n"},
		{[]string{"-s", "Z"}, nagios.OK, "PROCS OK: 1 process with STATE = Z|procs=1;;;0\n"},
		{[]string{"-s", "SLsl"}, nagios.OK, "PROCS OK: 1 process with STATE = SLsl|procs=1;;;0\n"},
		{[]string{"-s", "SN+"}, nagios.OK, "PROCS OK: 1 process with STATE = SN+|procs=1;;;0\n"},
		{[]string{"-s", "S<s"}, nagios.OK, "PROCS OK: 1 process with STATE = S<s|procs=1;;;0\n"},
		{[]string{"-s", "I<"}, nagios.OK, "PROCS OK: 1 process with STATE = I<|procs=1;;;0\n"},
		{[]string{"-s", "Rl"}, nagios.OK, "PROCS OK: 1 process with STATE = Rl|procs=1;;;0\n"},
		{[]string{"-u", "root"}, nagios.OK, "PROCS OK: 6 processes with UID = 0 (root)|procs=6;;;0\n"},
		{[]string{"-u", "0", "-C", "nginx"}, nagios.OK,
			"PROCS OK: 1 process with UID = 0 (root), command name 'nginx'|procs=1;;;0\n"},
		{[]string{"-p", "120"}, nagios.OK, "PROCS OK: 2 processes with PPID = 120|procs=2;;;0\n"},
		{[]string{"-a", "nginx"}, nagios.OK, "PROCS OK: 3 processes with args 'nginx'|procs=3;;;0\n"},
		{[]string{"-a", "app.jar"}, nagios.OK, "PROCS OK: 1 process with args 'app.jar'|procs=1;;;0\n"},
		// Empty command lines read as "[comm]", a zombie's with " <defunct>".
		{[]string{"--ereg-argument-array", `^\[.*\]$`}, nagios.OK,
			`PROCS OK: 2 processes with regex args '^\[.*\]$'|procs=2;;;0` + "\n"},
		{[]string{"--ereg-argument-array", "defunct|master"}, nagios.OK,
			"PROCS OK: 2 processes with regex args 'defunct,master'|procs=2;;;0\n"},
		{[]string{"-a", "sleep 3600"}, nagios.OK, "PROCS OK: 1 process with args 'sleep 3600'|procs=1;;;0\n"},
		{[]string{"-z", "100000"}, nagios.OK, "PROCS OK: 2 processes with VSZ >= 100000|procs=2;;;0\n"},
		{[]string{"-r", "1"}, nagios.OK, "PROCS OK: 8 processes with RSS >= 1|procs=8;;;0\n"},
		// %CPU over each life: 40.0 (121), 30.0 (400), 6.0 (120), 0.4, 0.2, 0.1, then 0.
		{[]string{"-P", "10"}, nagios.OK, "PROCS OK: 2 processes with PCPU >= 10.00|procs=2;;;0\n"},
		{[]string{"-P", "0.2"}, nagios.OK, "PROCS OK: 5 processes with PCPU >= 0.20|procs=5;;;0\n"},
		{[]string{"-u", "root", "-C", "nginx", "-a", "master", "-p", "1"}, nagios.OK,
			"PROCS OK: 1 process with UID = 0 (root), command name 'nginx', args 'master', PPID = 1|procs=1;;;0\n"},
		// The twin keeps the first -C, -a and -s it is given.
		{[]string{"-C", "nginx", "-C", "bash"}, nagios.OK,
			"PROCS OK: 3 processes with command name 'nginx'|procs=3;;;0\n"},
		// Bare arguments are the warning and critical ranges, then the status flags.
		{[]string{"5", "10", "Z"}, nagios.OK, "PROCS OK: 1 process with STATE = Z|procs=1;5;10;0\n"},
		{[]string{"-w", "5", "0", "S"}, nagios.Critical, "PROCS CRITICAL: 8 processes with STATE = S|procs=8;5;0;0\n"},
		{[]string{"-m", "VSZ", "-w", "59000", "-c", "60000", "-C", "nginx"}, nagios.Critical,
			"VSZ CRITICAL: 1 crit, 1 warn out of 3 processes with command name 'nginx'|procs=3;;;0 procs_warn=1;;;0 procs_crit=1;;;0\n"},
		{[]string{"-m", "VSZ", "-w", "59000", "-c", "60000", "-C", "nginx", "-v"}, nagios.Critical,
			"VSZ CRITICAL: 1 crit, 1 warn out of 3 processes with command name 'nginx' [nginx, nginx]|procs=3;;;0 procs_warn=1;;;0 procs_crit=1;;;0\n"},
		{[]string{"--metric=CPU", "-w", "5", "-c", "30", "-u", "root", "-v"}, nagios.Warning,
			"CPU WARNING: 2 warn out of 6 processes with UID = 0 (root) [nginx, java]|procs=6;;;0 procs_warn=2;;;0 procs_crit=0;;;0\n"},
		{[]string{"-m", "CPU", "-w", "50", "-C", "nginx"}, nagios.OK,
			"CPU OK: 3 processes with command name 'nginx'|procs=3;;;0 procs_warn=0;;;0 procs_crit=0;;;0\n"},
		// Ages: 999 s for the master, 500 s for the workers.
		{[]string{"-m", "ELAPSED", "-w", "600", "-C", "nginx"}, nagios.Warning,
			"ELAPSED WARNING: 1 warn out of 3 processes with command name 'nginx'|procs=3;;;0 procs_warn=1;;;0 procs_crit=0;;;0\n"},
		{[]string{"-m", "ELAPSED", "-c", "@500", "-C", "nginx", "-v"}, nagios.Critical,
			"ELAPSED CRITICAL: 2 crit, 0 warn out of 3 processes with command name 'nginx' [nginx, nginx]|procs=3;;;0 procs_warn=0;;;0 procs_crit=2;;;0\n"},
		{[]string{"-m", "RSS", "-w", "1", "-C", "bash"}, nagios.Warning,
			"RSS WARNING: 1 warn out of 1 process with command name 'bash'|procs=1;;;0 procs_warn=1;;;0 procs_crit=0;;;0\n"},
	}
	for _, tt := range tests {
		r := fixtureProcs(t, procsFixture, tt.args...)
		if r.State != tt.state || r.String() != tt.want {
			t.Errorf("%q:\n got %s %q\nwant %s %q", tt.args, r.State, r.String(), tt.state, tt.want)
		}
	}
}

func TestProcsVeryVerbose(t *testing.T) {
	kib := func(pages int) int { return pages * os.Getpagesize() / 1024 }
	want := fmt.Sprintf("PROCS OK: 2 processes with PPID = 120|procs=2;;;0\n"+
		"Matched: uid=33 vsz=59570 rss=%d pid=121 ppid=120 pcpu=40.00 stat=Rl etime=08:20 prog=nginx args=nginx: worker process\n"+
		"Matched: uid=33 vsz=60546 rss=%d pid=122 ppid=120 pcpu=0.20 stat=S etime=08:20 prog=nginx args=nginx: worker process\n",
		kib(2500), kib(2000))
	if got := fixtureProcs(t, procsFixture, "-vv", "-p", "120").String(); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// TestProcsOwnProcesses checks that the check leaves out itself, its parent
// and, unless -T, other check_procs processes of its own executable.
func TestProcsOwnProcesses(t *testing.T) {
	c, err := newProcs([]string{"-C", "nginx"})
	if err != nil {
		t.Fatal(err)
	}
	pc := c.(*procsCheck)
	pc.self, pc.parent = 121, 120
	if got, want := pc.Run(WithProcRoot(context.Background(), procsFixture)).Output,
		"PROCS OK: 1 process with command name 'nginx'"; got != want {
		t.Errorf("self 121, parent 120: got %q, want %q", got, want)
	}

	root := t.TempDir()
	for pid, exe := range map[string]string{"10": "/proc/self/exe", "11": "/bin/sh", "12": ""} {
		writeFixtureProc(t, root, pid, "check_procs")
		if exe != "" {
			if err := os.Symlink(exe, filepath.Join(root, pid, "exe")); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		// 10 runs this very executable: /proc/self/exe resolves for us to our own.
		{[]string{"-C", "check_procs"}, "PROCS OK: 2 processes with command name 'check_procs'"},
		{[]string{"-T", "-C", "check_procs"}, "PROCS OK: 3 processes with command name 'check_procs'"},
		{[]string{"--traditional", "-C", "check_procs"}, "PROCS OK: 3 processes with command name 'check_procs'"},
	} {
		if got := fixtureProcs(t, root, tt.args...).Output; got != tt.want {
			t.Errorf("%q: got %q, want %q", tt.args, got, tt.want)
		}
	}
}

// writeFixtureProc adds a sleeping process to a fixture /proc tree.
func writeFixtureProc(t *testing.T, root, pid, comm string) {
	t.Helper()
	dir := filepath.Join(root, pid)
	files := map[string]string{
		"stat":    pid + " (" + comm + ") S 1 " + pid + " " + pid + " 0 -1 4194560 0 0 0 0 1 1 0 0 20 0 1 0 100 1048576 10 0\n",
		"comm":    comm + "\n",
		"status":  "Name:\t" + comm + "\nUid:\t0\t0\t0\t0\nVmLck:\t0 kB\n",
		"cmdline": comm + "\x00",
		"statm":   "256 10 5 1 0 5 0\n",
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "uptime"), []byte("500.00 900.00\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestProcsUnreadable(t *testing.T) {
	empty := t.TempDir()
	malformed := t.TempDir()
	if err := os.MkdirAll(filepath.Join(malformed, "7"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{"stat": "7 (x) S 1 7\n", "comm": "x\n"} {
		if err := os.WriteFile(filepath.Join(malformed, "7", name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	noUptime := t.TempDir()
	writeFixtureProc(t, noUptime, "5", "app")
	if err := os.Remove(filepath.Join(noUptime, "uptime")); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		root string
		args []string
		want string
	}{
		{empty, nil, "PROCS UNKNOWN: no processes found in " + empty},
		{filepath.Join(empty, "missing"), nil, "PROCS UNKNOWN: list processes in " + filepath.Join(empty, "missing") + ": open " +
			filepath.Join(empty, "missing") + ": no such file or directory"},
		{malformed, []string{"-p", "1"}, "PROCS UNKNOWN: read " + filepath.Join(malformed, "7", "stat") + ": 3 fields after the command name, want at least 21"},
		// Only what needs a process's stat file reads it.
		{malformed, nil, "PROCS OK: 1 process"},
		{noUptime, []string{"-m", "ELAPSED"}, "ELAPSED UNKNOWN: read " + filepath.Join(noUptime, "uptime") + ": open " +
			filepath.Join(noUptime, "uptime") + ": no such file or directory"},
		// Only what needs ages reads the uptime.
		{noUptime, []string{"-a", "app"}, "PROCS OK: 1 process with args 'app'"},
	} {
		r := fixtureProcs(t, tt.root, tt.args...)
		if r.Output != tt.want {
			t.Errorf("%s %q:\n got %q\nwant %q", tt.root, tt.args, r.Output, tt.want)
		}
	}

	goneRoot := t.TempDir()
	writeFixtureProc(t, goneRoot, "5", "app")
	writeFixtureProc(t, goneRoot, "6", "app")
	if err := os.Remove(filepath.Join(goneRoot, "6", "cmdline")); err != nil {
		t.Fatal(err)
	}
	if got, want := fixtureProcs(t, goneRoot, "-a", "app").Output, "PROCS OK: 1 process with args 'app'"; got != want {
		t.Errorf("process gone mid-read: got %q, want %q", got, want)
	}
}

func TestProcsDeadline(t *testing.T) {
	c, err := newProcs([]string{"-t", "3"})
	if err != nil {
		t.Fatal(err)
	}
	if d := c.(Timeouter).Timeout(); d != 3*time.Second {
		t.Errorf("Timeout() = %v, want 3s", d)
	}
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	r := c.Run(WithProcRoot(expired, procsFixture))
	if r.State != nagios.Critical || r.Output != "PROCS CRITICAL: timed out after 3s reading processes" {
		t.Errorf("expired deadline: %s %q", r.State, r.Output)
	}
	c, err = newProcs([]string{"-t", "3:UNKNOWN"})
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Run(WithProcRoot(expired, procsFixture)); r.State != nagios.Unknown {
		t.Errorf("-t 3:UNKNOWN, expired deadline: %s %q", r.State, r.Output)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	r = c.Run(WithProcRoot(cancelled, procsFixture))
	if r.State != nagios.Unknown || r.Output != "PROCS UNKNOWN: stopped reading processes: context canceled" {
		t.Errorf("cancelled: %s %q", r.State, r.Output)
	}
}

func TestProcsBadArguments(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string // in the message, naming the flag and its text
	}{
		{[]string{"-m", "FOO"}, `-m "FOO"`},
		{[]string{"-m", "vsz"}, `-m "vsz"`},
		{[]string{"-p", "1x"}, `"1x" for "-p, --ppid"`},
		{[]string{"-p"}, "-p"},
		{[]string{"-r", "1.5"}, `"1.5" for "-r, --rss"`},
		{[]string{"-z", "abc"}, `"abc" for "-z, --vsz"`},
		{[]string{"-P", "abc"}, `"abc" for "-P, --pcpu"`},
		{[]string{"-P", "NaN"}, `"NaN" for "-P, --pcpu"`},
		{[]string{"-u", "immune-no-such-user"}, `"immune-no-such-user" for "-u, --user"`},
		{[]string{"--ereg-argument-array", "("}, `"(" for "--ereg-argument-array"`},
		{[]string{"-w", "abc"}, `"abc" for -w`},
		{[]string{"-c", "5:1"}, `"5:1" for -c`},
		{[]string{"-t", "0"}, `"0" for "-t, --timeout"`},
		{[]string{"-t", "abc"}, `"abc" for "-t, --timeout"`},
		{[]string{"1", "2", "S", "extra"}, `unexpected argument "extra"`},
		{[]string{"--bogus"}, "--bogus"},
	} {
		var out strings.Builder
		code := Main(context.Background(), procsName, tt.args, &out)
		if code != 3 || !strings.HasPrefix(out.String(), "UNKNOWN - check_procs: ") || !strings.Contains(out.String(), tt.want) {
			t.Errorf("%q: exit %d, want 3 and a message with %s:\n%s", tt.args, code, tt.want, out.String())
		}
	}
}

func TestParseProcStat(t *testing.T) {
	tests := []struct {
		in      string
		want    proc
		wantErr string
	}{
		{"42 (a) b)) R 1 42 42 34816 42 4194304 0 0 0 0 7 3 0 0 20 -2 3 0 555 8192 2 0\n",
			proc{pid: 42, comm: "a) b)", state: 'R', ppid: 1, pgrp: 42, session: 42, tpgid: 42, ticks: 10, nice: -2, threads: 3, start: 555, vszKiB: 8}, ""},
		{"", proc{}, "no command name in parentheses"},
		{"1 x) S", proc{}, "no command name in parentheses"},
		{"1 (x) S 0 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 10\n", proc{}, "20 fields after the command name, want at least 21"},
		{"1 (x) SS 0 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 10 0 0\n", proc{}, `state "SS" is not one letter`},
		{"1 (x) S zero 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 10 0 0\n", proc{}, `strconv.ParseInt: parsing "zero": invalid syntax`},
		{"x (x) S 0 1 1 0 -1 0 0 0 0 0 -1 0 0 0 20 0 1 0 10 0 0\n", proc{}, "invalid syntax"},
	}
	for _, tt := range tests {
		var got proc
		err := parseProcStat([]byte(tt.in), &got)
		switch {
		case tt.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseProcStat(%q) error %v, want %q", tt.in, err, tt.wantErr)
			}
		case err != nil || got != tt.want:
			t.Errorf("parseProcStat(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseProcStatus(t *testing.T) {
	tests := []struct {
		in         string
		euid       uint32
		locked     bool
		wantErrStr string
	}{
		{"Name:\tx\nUid:\t1000\t33\t33\t33\nVmLck:\t       4 kB\n", 33, true, ""},
		{"Uid:\t0\t0\t0\t0\nVmLck:\t       0 kB\n", 0, false, ""},
		{"Uid:\t5\t6\t7\t8\n", 6, false, ""},
		{"Name:\tx\n", 0, false, "no Uid line"},
		{"Uid:\t5\n", 0, false, "has no effective UID"},
		{"Uid:\t5\tfive\n", 0, false, "invalid syntax"},
	}
	for _, tt := range tests {
		euid, locked, err := parseProcStatus([]byte(tt.in))
		switch {
		case tt.wantErrStr != "":
			if err == nil || !strings.Contains(err.Error(), tt.wantErrStr) {
				t.Errorf("parseProcStatus(%q) error %v, want %q", tt.in, err, tt.wantErrStr)
			}
		case err != nil || euid != tt.euid || locked != tt.locked:
			t.Errorf("parseProcStatus(%q) = %d, %v, %v; want %d, %v", tt.in, euid, locked, err, tt.euid, tt.locked)
		}
	}
}

func TestPsColumns(t *testing.T) {
	for _, tt := range []struct{ comm, prog string }{
		{"sshd", "sshd"},
		{"kworker/0:1", "0:1"},
		{"kworker/0:0H-events_highpri", "0:0H-ev"},
		{"odd/", "odd/"},
		{"a/b/", "b/"},
	} {
		if got := psProg(tt.comm); got != tt.prog {
			t.Errorf("prog of comm %q = %q, want %q", tt.comm, got, tt.prog)
		}
	}
	for _, tt := range []struct {
		p    proc
		want string
	}{
		{proc{pid: 9, state: 'S', session: 1, tpgid: -1, threads: 1}, "S"},
		{proc{pid: 9, state: 'R', session: 9, tpgid: 9, pgrp: 9, threads: 2, nice: -1, locked: true}, "R<Lsl+"},
		{proc{pid: 9, state: 'T', session: 1, tpgid: 4, pgrp: 3, threads: 1, nice: 19}, "TN"},
	} {
		if got := tt.p.psStat(tt.p.locked); got != tt.want {
			t.Errorf("psStat of %+v = %q, want %q", tt.p, got, tt.want)
		}
	}
	for _, tt := range []struct {
		in, want string
	}{
		{"sleep 10", "sleep 10"},
		{"  python3 -c x\ny\tz\x01 ", "python3 -c x y?z?"},
		{"h\xc3\xa9llo \xff", "h\u00e9llo ?"},
	} {
		if got := psArgs([]byte(tt.in)); got != tt.want {
			t.Errorf("psArgs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, tt := range []struct {
		secs int64
		want string
	}{
		{0, "00:00"}, {59, "00:59"}, {3599, "59:59"}, {3600, "01:00:00"}, {86399, "23:59:59"}, {86400 + 3661, "1-01:01:01"},
	} {
		if got := psEtime(tt.secs); got != tt.want {
			t.Errorf("psEtime(%d) = %q, want %q", tt.secs, got, tt.want)
		}
	}
}

// startSleepers starts n sleep processes whose command line carries a token
// no other process has, and kills them when the test ends.
func startSleepers(t *testing.T, n int) string {
	t.Helper()
	token := fmt.Sprintf("3600.%09d", rand.IntN(1e9))
	for range n {
		cmd := exec.Command("sleep", token)
		if err := cmd.Start(); err != nil {
			t.Fatalf("start sleep: %v", err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
	}
	return token
}

// startZombie starts a child that exits at once and leaves it unreaped,
// a zombie, until the test ends.
func startZombie(t *testing.T, name string) {
	t.Helper()
	cmd := exec.Command(name)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() { _ = cmd.Wait() })
	stat := filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "stat")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		b, err := os.ReadFile(stat)
		if err == nil && strings.Contains(string(b), ") Z ") {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s (pid %d) did not become a zombie: %v", name, cmd.Process.Pid, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func TestProcsTwin(t *testing.T) {
	referencePlugin(t, procsName)
	token := startSleepers(t, 3)
	startZombie(t, "true")
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	pid := strconv.Itoa(os.Getpid())
	exact := tolerance{}
	tests := []struct {
		name string
		args []string
		tol  tolerance
	}{
		{"args", []string{"-a", token}, exact},
		{"command and args", []string{"-C", "sleep", "-a", token}, exact},
		{"warning", []string{"-w", "2", "-c", "5", "-a", token}, exact},
		{"critical", []string{"-w", "1", "-c", "2", "-a", token}, exact},
		{"critical below", []string{"-c", "4:", "-a", token}, exact},
		{"at least", []string{"-w", "3:", "-c", "1:", "-a", token}, exact},
		{"inside", []string{"-w", "@3:3", "-a", token}, exact},
		{"none", []string{"-c", "1:", "-C", "sleep", "-a", token + "0"}, exact},
		{"state", []string{"-s", "S", "-a", token}, exact},
		{"user name", []string{"-u", me.Username, "-a", token}, exact},
		{"uid", []string{"-u", me.Uid, "-a", token}, exact},
		{"ppid", []string{"-p", pid, "-C", "sleep", "-a", token}, exact},
		{"regex", []string{"--ereg-argument-array", "^sleep " + regexp.QuoteMeta(token) + "$"}, exact},
		{"regex alternation", []string{"--ereg-argument-array", token + "|" + token + "0"}, exact},
		{"rss filter", []string{"-r", "1", "-a", token}, exact},
		{"vsz filter", []string{"-z", "1", "-a", token}, exact},
		{"pcpu filter", []string{"-P", "0", "-a", token}, exact},
		{"rss metric", []string{"-m", "RSS", "-w", "1", "-c", "1000000", "-v", "-a", token}, exact},
		{"vsz metric", []string{"-m", "VSZ", "-w", "1", "-c", "2", "-a", token}, exact},
		{"vsz metric ok", []string{"-m", "VSZ", "-w", "100000000", "-a", token}, exact},
		{"cpu metric", []string{"-m", "CPU", "-w", "50", "-c", "90", "-a", token}, exact},
		{"cpu metric inside", []string{"-m", "CPU", "-c", "@0:90", "-v", "-a", token}, exact},
		{"elapsed", []string{"-m", "ELAPSED", "-w", "3600", "-a", token}, exact},
		{"elapsed inside", []string{"-m", "ELAPSED", "-c", "@0:3600", "-a", token}, exact},
		{"bare arguments", []string{"5", "10", "S", "-a", token}, exact},
		{"zombie", []string{"-s", "Z", "-p", pid, "-C", "true"}, exact},
		{"kthreadd", []string{"-k", "-C", "kthreadd"}, exact},
		// Every process: others come and go between the two runs, and the
		// twin also counts the ps it runs.
		{"all", []string{"-w", "100000", "-c", "200000"}, tolerance{Abs: 30}},
		{"all running as me", []string{"-u", me.Uid, "-w", "100000"}, tolerance{Abs: 30}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			theirs := runTheirs(t, procsName, tt.args...)
			ours := runOurs(t, context.Background(), procsName, tt.args...)
			assertTwins(t, ours, theirs, tt.tol)
		})
	}
}

// TestProcsTwinRefusals checks that what the twin refuses, ours refuses too.
func TestProcsTwinRefusals(t *testing.T) {
	referencePlugin(t, procsName)
	for _, args := range [][]string{
		{"-m", "FOO"},
		{"-p", "1x"},
		{"-r", "1.5"},
		{"-z", "x"},
		{"-P", "abc"},
		{"-u", "immune-no-such-user"},
		{"--ereg-argument-array", "("},
		{"-t", "abc"},
		{"--bogus"},
	} {
		theirs := runTheirs(t, procsName, args...)
		ours := runOurs(t, context.Background(), procsName, args...)
		if ours.Code != 3 || theirs.Code != 3 {
			t.Errorf("%q: exit ours %d, theirs %d, want 3\nours:   %s\ntheirs: %s", args, ours.Code, theirs.Code, ours.Raw, theirs.Raw)
		}
	}
}

// startSleeper starts one sleep process with the token as its argument,
// and returns it to be killed early; the test kills what is left.
func startSleeper(t *testing.T, token string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", token)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sleep: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

// keptFiles returns the files the tree of the real /proc keeps open for
// pid, and checks that its count of them is right.
func keptFiles(t *testing.T, pid int) (comm, cmdline bool) {
	t.Helper()
	procTrees.mu.Lock()
	tree := procTrees.trees[procPath(context.Background())]
	procTrees.mu.Unlock()
	if tree == nil {
		t.Fatal("no tree kept for /proc")
	}
	tree.mu.Lock()
	defer tree.mu.Unlock()
	n := 0
	for _, k := range tree.kept {
		for _, fd := range k.fds {
			if fd >= 0 {
				n++
			}
		}
	}
	if n != tree.nKept {
		t.Errorf("the tree counts %d kept files, holds %d", tree.nKept, n)
	}
	if k := tree.kept[int32(pid)]; k != nil {
		return k.fds[procKeptComm] >= 0, k.fds[procKeptCmdline] >= 0
	}
	return false, false
}

// TestProcsKeptFiles checks the files kept open across runs on the real
// /proc: they follow processes as they come and go, and runs that find the
// tree busy, or its limit reached, read without it and count the same.
func TestProcsKeptFiles(t *testing.T) {
	token := fmt.Sprintf("3600.%09d", rand.IntN(1e9))
	first := startSleeper(t, token)
	for range 2 {
		startSleeper(t, token)
	}
	c, err := newProcs([]string{"-a", token})
	if err != nil {
		t.Fatal(err)
	}
	want := func(n int) string {
		if n == 1 {
			return fmt.Sprintf("PROCS OK: 1 process with args '%s'", token)
		}
		return fmt.Sprintf("PROCS OK: %d processes with args '%s'", n, token)
	}
	ctx := context.Background()
	for range 2 {
		if got := c.Run(ctx).Output; got != want(3) {
			t.Fatalf("got %q, want %q", got, want(3))
		}
	}
	if comm, cmdline := keptFiles(t, first.Process.Pid); !comm || !cmdline {
		t.Errorf("kept comm %v, cmdline %v for a matching process; want both", comm, cmdline)
	}

	_ = first.Process.Kill()
	_ = first.Wait()
	if got := c.Run(ctx).Output; got != want(2) {
		t.Errorf("after one exited: got %q, want %q", got, want(2))
	}
	if comm, cmdline := keptFiles(t, first.Process.Pid); comm || cmdline {
		t.Errorf("files of an exited process are still open: comm %v, cmdline %v", comm, cmdline)
	}

	// A kept file of a process that has ended answers ESRCH; the reader
	// then opens the PID afresh, which is gone too, or someone else's.
	gone1 := startSleeper(t, token)
	rd, err := openProcReader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rd.tree == nil {
		t.Fatal("the reader of /proc has no tree")
	}
	p := &proc{pid: int32(gone1.Process.Pid)}
	if comm, err := rd.comm(p); err != nil || comm != "sleep" {
		t.Errorf("comm of a live sleep: %q, %v", comm, err)
	}
	_ = gone1.Process.Kill()
	_ = gone1.Wait()
	if _, err := rd.comm(&proc{pid: p.pid}); err != nil && !gone(err) {
		t.Errorf("comm of an ended process: %v, want it gone", err)
	}
	rd.close()
	keptFiles(t, gone1.Process.Pid)

	// Past the limit, files are read and closed at once.
	defer func(limit int) { procKeptLimit = limit }(procKeptLimit)
	procKeptLimit = 0
	late := startSleeper(t, token)
	if got := c.Run(ctx).Output; got != want(3) {
		t.Errorf("past the limit: got %q, want %q", got, want(3))
	}
	if comm, cmdline := keptFiles(t, late.Process.Pid); comm || cmdline {
		t.Errorf("past the limit, kept comm %v, cmdline %v", comm, cmdline)
	}
	procKeptLimit = 1 << 20

	// A run that finds the tree busy reads without it.
	procTrees.mu.Lock()
	tree := procTrees.trees[procPath(ctx)]
	procTrees.mu.Unlock()
	tree.mu.Lock()
	got := c.Run(ctx).Output
	tree.mu.Unlock()
	if got != want(3) {
		t.Errorf("tree busy: got %q, want %q", got, want(3))
	}

	// Runs at once: one has the tree, the others read without it.
	results := make(chan string, 8)
	var wg sync.WaitGroup
	for range cap(results) {
		wg.Go(func() { results <- c.Run(ctx).Output })
	}
	wg.Wait()
	close(results)
	for got := range results {
		if got != want(3) {
			t.Errorf("concurrent run: got %q, want %q", got, want(3))
		}
	}
}

// TestAppendDirentPIDs reads linux_dirent64 records as getdents64 gives them.
func TestAppendDirentPIDs(t *testing.T) {
	record := func(name string) []byte {
		reclen := (19 + len(name) + 1 + 7) &^ 7
		b := make([]byte, reclen)
		binary.NativeEndian.PutUint16(b[16:], uint16(reclen))
		copy(b[19:], name)
		return b
	}
	var buf []byte
	for _, name := range []string{".", "..", "1", "self", "42", "007", "4294967296", "2147483647", "12a", "uptime"} {
		buf = append(buf, record(name)...)
	}
	if got, want := appendDirentPIDs(nil, buf), []int32{1, 42, 7, 2147483647}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	// A record that claims more than there is ends the reading.
	bad := record("5")
	binary.NativeEndian.PutUint16(bad[16:], 200)
	if got := appendDirentPIDs(nil, append(record("3"), bad...)); !slices.Equal(got, []int32{3}) {
		t.Errorf("with a bad record: got %v, want [3]", got)
	}
}

// TestProcsUIDOfUndumpable checks -u on a process that is not dumpable, as
// daemons that drop privileges are: the kernel gives root its files in
// /proc, status among them, but keeps its directory owned by its
// effective UID, which is what the check reads on procfs.
func TestProcsUIDOfUndumpable(t *testing.T) {
	// The system's python, which another user can run, unlike one
	// installed under root's home.
	const python = "/usr/bin/python3"
	if _, err := os.Stat(python); os.Geteuid() != 0 || err != nil {
		t.Skip("needs root and " + python + " to start a process as another user")
	}
	nobody, err := user.LookupId("65534")
	if err != nil {
		t.Skipf("no user 65534: %v", err)
	}
	token := fmt.Sprintf("3600.%09d", rand.IntN(1e9))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-c",
		"import ctypes, sys, time; ctypes.CDLL(None).prctl(4, 0, 0, 0, 0); print('ready', flush=True); time.sleep(60)", token)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("python did not start: %q, %v", line, err)
	}
	var st syscall.Stat_t
	status := filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "status")
	if err := syscall.Stat(status, &st); err != nil || st.Uid != 0 {
		t.Fatalf("%s owned by %d (%v), want root: the process is still dumpable", status, st.Uid, err)
	}
	args := []string{"-u", nobody.Uid, "-a", token}
	want := fmt.Sprintf("PROCS OK: 1 process with UID = 65534 (%s), args '%s'", nobody.Username, token)
	if got := runOurs(t, context.Background(), procsName, args...); got.Result.Output != want {
		t.Errorf("got %q, want %q", got.Result.Output, want)
	}
	if _, err := os.Stat(filepath.Join(referenceDir, procsName)); err == nil {
		assertTwins(t, runOurs(t, context.Background(), procsName, args...), runTheirs(t, procsName, args...), tolerance{})
	}
}
