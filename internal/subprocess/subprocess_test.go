package subprocess

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/immune-ops/immune/fixtures/procs"
)

func sh(script string, args ...string) Command {
	return Command{Path: "/bin/sh", Args: append([]string{"-c", script, "sh"}, args...)}
}

func TestRunExits(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name           string
		cmd            Command
		code           int
		stdout, stderr string
	}{
		{name: "exit 0", cmd: sh("echo out; echo err >&2"), stdout: "out\n", stderr: "err\n"},
		{name: "exit 3", cmd: sh("echo failing; exit 3"), code: 3, stdout: "failing\n"},
		{name: "env and dir", cmd: Command{Path: "/bin/sh", Args: []string{"-c", `echo "$IMMUNE_A $HOME"; pwd -P`}, Env: []string{"IMMUNE_A=a", "HOME=/nowhere"}, Dir: dir},
			stdout: "a /nowhere\n" + dir + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr := &Buffer{Max: 1 << 10}, &Buffer{Max: 1 << 10}
			tc.cmd.Stdout, tc.cmd.Stderr = stdout, stderr
			res, err := Run(context.Background(), tc.cmd)
			if err != nil {
				t.Fatal(err)
			}
			var exitErr *exec.ExitError
			if res.State.ExitCode() != tc.code || res.Interrupted || (tc.code != 0) != errors.As(res.Err, &exitErr) {
				t.Errorf("exit %d (%v), interrupted %v; want exit %d", res.State.ExitCode(), res.Err, res.Interrupted, tc.code)
			}
			if stdout.String() != tc.stdout || stderr.String() != tc.stderr {
				t.Errorf("stdout %q stderr %q, want %q %q", stdout, stderr, tc.stdout, tc.stderr)
			}
		})
	}
}

// TestRunOneWriter: the same writer for both gets one pipe, so the output
// reads in the order it was written.
func TestRunOneWriter(t *testing.T) {
	out := &Buffer{Max: 1 << 10}
	cmd := sh("echo 1; echo 2 >&2; echo 3; echo 4 >&2")
	cmd.Stdout, cmd.Stderr = out, out
	if _, err := Run(context.Background(), cmd); err != nil {
		t.Fatal(err)
	}
	if out.String() != "1\n2\n3\n4\n" {
		t.Errorf("output %q", out)
	}
}

func TestRunDoesNotStart(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"/nonexistent/plugin", "no such file or directory"},
		{"immune-no-such-program", "executable file not found"},
		{t.TempDir(), "permission denied"},
	} {
		if _, err := Run(context.Background(), Command{Path: tc.path}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Run(%s): %v, want %q", tc.path, err, tc.want)
		}
	}
}

// TestRunTimeoutKillsGroup: when ctx ends, the process and what it started
// are killed, with SIGTERM first when there is a grace, and the process is
// reaped before Run returns.
func TestRunTimeoutKillsGroup(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script string
		grace  time.Duration
		signal syscall.Signal
	}{
		{"SIGKILL at once", "sleep 60 & echo $$ $! > $1; sleep 60", 0, syscall.SIGKILL},
		{"SIGTERM heeded", "sleep 60 & echo $$ $! > $1; sleep 60", 5 * time.Second, syscall.SIGTERM},
		{"SIGTERM ignored", "trap '' TERM; sleep 60 & echo $$ $! > $1; sleep 60", 200 * time.Millisecond, syscall.SIGKILL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pids := filepath.Join(t.TempDir(), "pids")
			cmd := sh(tc.script, pids)
			cmd.KillGrace, cmd.DrainGrace = tc.grace, time.Second
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			begun := time.Now()
			res, err := Run(ctx, cmd)
			if err != nil {
				t.Fatal(err)
			}
			ws, _ := res.State.Sys().(syscall.WaitStatus)
			if !res.Interrupted || !ws.Signaled() || ws.Signal() != tc.signal {
				t.Errorf("interrupted %v, %v; want killed by %v", res.Interrupted, res.Err, tc.signal)
			}
			if took := time.Since(begun); took > 3*time.Second {
				t.Errorf("Run took %s", took)
			}
			child, grandchild := procs.ReadPids(t, pids)
			if state, _ := procs.Stat(child); state != 0 {
				t.Errorf("process %d left as %c: not reaped", child, state)
			}
			procs.WaitGone(t, grandchild)
		})
	}
}

// TestRunLeftovers: a process that exits leaving a child that holds its
// output open, as a hook starting a daemon does. Run returns after
// DrainGrace; the child is killed only with KillLeftovers.
func TestRunLeftovers(t *testing.T) {
	for _, kill := range []bool{false, true} {
		pids := filepath.Join(t.TempDir(), "pids")
		out := &Buffer{Max: 1 << 10}
		cmd := sh("sleep 60 & echo $$ $! > $1; echo started", pids)
		cmd.Stdout, cmd.Stderr, cmd.DrainGrace, cmd.KillLeftovers = out, out, 300*time.Millisecond, kill
		begun := time.Now()
		res, err := Run(context.Background(), cmd)
		if err != nil || res.Err != nil || res.Interrupted {
			t.Fatalf("kill leftovers %v: %v, %+v", kill, err, res)
		}
		if took := time.Since(begun); took > 3*time.Second || out.String() != "started\n" {
			t.Errorf("kill leftovers %v: took %s, output %q", kill, took, out)
		}
		_, daemon := procs.ReadPids(t, pids)
		if kill {
			procs.WaitGone(t, daemon)
			continue
		}
		if procs.Gone(daemon) {
			t.Errorf("the child %d was killed without KillLeftovers", daemon)
		}
		syscall.Kill(daemon, syscall.SIGKILL)
		procs.WaitGone(t, daemon)
	}
}
