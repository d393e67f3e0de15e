// Package plugins runs checks that live outside the immune binary: external
// Nagios plugins, started afresh for every run (Exec), and Go plugins written
// with plugins/sdk, started once and called over gRPC (GoPlugin). Both are a
// checks.Check and a checks.Timeouter, so the agent schedules them as it
// schedules its own checks.
package plugins

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/immune-ops/immune/internal/subprocess"
	"github.com/immune-ops/immune/nagios"
)

// MaxOutput is how much of a plugin's stdout a run keeps. Nagios reads a few
// KiB of it; megabytes are a runaway plugin, not a status worth storing.
const MaxOutput = 64 << 10

// maxStderr bounds the stderr a run keeps: it only explains an empty stdout.
const maxStderr = 4 << 10

const (
	// killGrace is how long a timed-out plugin has between SIGTERM and
	// SIGKILL. With drainGrace it stays under the second checks.Run waits
	// past a deadline, so the timeout result is ours, not its.
	killGrace = 500 * time.Millisecond
	// drainGrace bounds the wait for the output pipes once the plugin's
	// group is dead: only a process that left the group can still hold them.
	drainGrace = 200 * time.Millisecond
)

// ExecOptions configure an external plugin. The zero value runs it with no
// deadline but the caller's, in the agent's directory and environment.
type ExecOptions struct {
	// Timeout bounds every run; zero leaves only the context's deadline.
	Timeout time.Duration
	// TimeoutState is the state a run that times out reports. The zero value
	// is OK, so callers set it: monitoring-plugins' -t gives CRITICAL.
	TimeoutState nagios.State
	// Env holds KEY=value pairs added to the agent's environment; a key set
	// here wins over the agent's.
	Env []string
	// Dir is the working directory; empty means the agent's.
	Dir string
}

// Exec is an external Nagios plugin run as a check: a new process for every
// Run, never through a shell.
type Exec struct {
	path string
	args []string
	opts ExecOptions
}

// NewExec checks the options of the plugin at path, run with args. Whether
// path exists is left to Run: a plugin installed later then starts working,
// and one that is missing reports UNKNOWN on every run instead of vanishing.
func NewExec(path string, args []string, opts ExecOptions) (*Exec, error) {
	if err := checkOptions(path, opts.Timeout, opts.TimeoutState, opts.Env); err != nil {
		return nil, err
	}
	opts.Env = append([]string(nil), opts.Env...)
	return &Exec{path: path, args: append([]string(nil), args...), opts: opts}, nil
}

// checkOptions validates what Exec and GoPlugin share.
func checkOptions(path string, timeout time.Duration, state nagios.State, env []string) error {
	if path == "" {
		return errors.New("plugin: empty path")
	}
	if timeout < 0 {
		return fmt.Errorf("plugin %s: timeout %v is negative", path, timeout)
	}
	if state < nagios.OK || state > nagios.Unknown {
		return fmt.Errorf("plugin %s: timeout state %d is not 0 to 3", path, int(state))
	}
	for _, kv := range env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return fmt.Errorf("plugin %s: environment entry %q is not KEY=value", path, kv)
		}
	}
	return nil
}

// Timeout is the plugin's own deadline, for the scheduler.
func (e *Exec) Timeout() time.Duration { return e.opts.Timeout }

// Run starts the plugin, waits for it or for ctx, and reads its result. On
// timeout its whole process group gets SIGTERM, then SIGKILL, and is waited
// for before Run returns.
func (e *Exec) Run(ctx context.Context) nagios.Result {
	begun := time.Now()
	if e.opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.opts.Timeout)
		defer cancel()
	}
	if ctx.Err() != nil {
		return interrupted(ctx, e.opts.TimeoutState, e.path, begun, "")
	}
	stdout, stderr := &subprocess.Buffer{Max: MaxOutput}, &subprocess.Buffer{Max: maxStderr}
	res, err := subprocess.Run(ctx, subprocess.Command{
		Path: e.path, Args: e.args, Dir: e.opts.Dir, Env: e.opts.Env,
		Stdout: stdout, Stderr: stderr,
		KillGrace: killGrace, DrainGrace: drainGrace, KillLeftovers: true,
	})
	if err != nil {
		return cannotRun(e.path, err)
	}
	out := keptText(stdout)
	if res.Interrupted {
		return interrupted(ctx, e.opts.TimeoutState, e.path, begun, out)
	}
	return e.result(res.State, res.Err, out, stdout, stderr)
}

// result reads a finished plugin's output and exit status.
func (e *Exec) result(ps *os.ProcessState, waitErr error, out string, stdout, stderr *subprocess.Buffer) nagios.Result {
	r, _ := nagios.Parse(out) // perfdata it cannot read is dropped; the state matters more
	if strings.TrimSpace(out) == "" {
		// The messages Nagios Core gives for an empty stdout.
		r = nagios.Result{Output: "(No output returned from plugin)"}
		if errText := strings.TrimSpace(stderr.String()); errText != "" {
			first, rest, _ := strings.Cut(errText, "\n")
			r = nagios.Result{Output: "(No output on stdout) stderr: " + first, Long: rest}
		}
	}
	if stdout.Dropped() > 0 {
		r.Long = joinLines(r.Long, fmt.Sprintf("(output truncated: kept the first %d of %d bytes)", len(out), stdout.Total()))
	}

	var exitErr *exec.ExitError
	if waitErr != nil && !errors.As(waitErr, &exitErr) {
		return moved(r, fmt.Sprintf("UNKNOWN - plugin %s: wait: %v", e.path, waitErr))
	}
	ws, _ := ps.Sys().(syscall.WaitStatus)
	switch {
	case ws.Signaled():
		return moved(r, fmt.Sprintf("UNKNOWN - plugin %s was killed by signal %d (%v)", e.path, int(ws.Signal()), ws.Signal()))
	case ps.ExitCode() > int(nagios.Unknown) || ps.ExitCode() < 0:
		return moved(r, fmt.Sprintf("UNKNOWN - plugin %s exited with code %d, outside 0 to 3", e.path, ps.ExitCode()))
	}
	r.State = nagios.StateFromExit(ps.ExitCode())
	return r
}

// moved is an UNKNOWN result with status as its status line and the
// plugin's own status line and long output below it.
func moved(r nagios.Result, status string) nagios.Result {
	return nagios.Result{State: nagios.Unknown, Output: status, Long: joinLines(r.Output, r.Long), Perf: r.Perf}
}

// interrupted is the result of a run begun at begun that ctx ended: the
// timeout state when its deadline passed, UNKNOWN when it was canceled. out
// is what the plugin printed before that, kept as long output; its perfdata
// is dropped, being a half-finished run's.
func interrupted(ctx context.Context, timeoutState nagios.State, path string, begun time.Time, out string) nagios.Result {
	r, _ := nagios.Parse(out)
	long := joinLines(r.Output, r.Long)
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return nagios.Result{State: nagios.Unknown, Output: fmt.Sprintf("UNKNOWN - plugin %s canceled after %s seconds", path, seconds(time.Since(begun))), Long: long}
	}
	// The time the run was given rather than the time it took, which only
	// adds the kill's grace and the scheduler's jitter.
	ran := time.Since(begun)
	if deadline, ok := ctx.Deadline(); ok {
		ran = max(deadline.Sub(begun), 0)
	}
	return nagios.Result{State: timeoutState, Output: fmt.Sprintf("%s - plugin %s timed out after %s seconds", timeoutState, path, seconds(ran)), Long: long}
}

// seconds writes d in tenths of a second: enough to tell a 10 s timeout from
// a 1.5 s one.
func seconds(d time.Duration) string {
	return strconv.FormatFloat(math.Round(d.Seconds()*10)/10, 'f', -1, 64)
}

// cannotRun reports a plugin that did not start, naming its path.
func cannotRun(path string, err error) nagios.Result {
	// exec's error repeats the path ("fork/exec /x: ..."); the cause alone reads better.
	var pathErr *fs.PathError
	if errors.As(err, &pathErr) {
		err = pathErr.Err
	}
	return nagios.Resultf(nagios.Unknown, "UNKNOWN - cannot run plugin %s: %v", path, err)
}

// keptText is the plugin's output as kept; when some was dropped it ends
// at the last whole line, so half a perfdata item is not read as a whole one.
func keptText(b *subprocess.Buffer) string {
	text := b.String()
	if b.Dropped() > 0 {
		if i := strings.LastIndexByte(text, '\n'); i >= 0 {
			text = text[:i+1]
		}
	}
	return text
}

func joinLines(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "\n" + b
}
