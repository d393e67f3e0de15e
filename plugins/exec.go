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
	"io"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

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
	cmd := exec.Command(e.path, e.args...)
	if cmd.Err != nil {
		return cannotRun(e.path, cmd.Err)
	}
	if len(e.opts.Env) > 0 {
		cmd.Env = append(os.Environ(), e.opts.Env...)
	}
	cmd.Dir = e.opts.Dir
	// Its own group, so a timeout kills everything it started; Pdeathsig, so
	// it does not outlive an agent that dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}

	stdout, stderr := &capped{max: MaxOutput}, &capped{max: maxStderr}
	drains, err := pipeOutput(cmd, stdout, stderr)
	if err != nil {
		return nagios.Resultf(nagios.Unknown, "UNKNOWN - plugin %s: %v", e.path, err)
	}
	if err := cmd.Start(); err != nil {
		drains.abort()
		return cannotRun(e.path, err)
	}
	drains.started()

	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var waitErr error
	timedOut := false
	select {
	case waitErr = <-exited:
	case <-ctx.Done():
		select {
		case waitErr = <-exited: // it finished as the deadline passed: its result stands
		default:
			timedOut = true
			waitErr = stopGroup(cmd.Process, exited)
		}
	}
	// Whatever the plugin left running in its group would hold the pipes
	// open and outlive the check: a plugin's children are its business only
	// while it runs.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	drains.wait(drainGrace)

	out := stdout.text()
	if timedOut {
		return interrupted(ctx, e.opts.TimeoutState, e.path, begun, out)
	}
	return e.result(cmd.ProcessState, waitErr, out, stdout, stderr)
}

// result reads a finished plugin's output and exit status.
func (e *Exec) result(ps *os.ProcessState, waitErr error, out string, stdout, stderr *capped) nagios.Result {
	r, _ := nagios.Parse(out) // perfdata it cannot read is dropped; the state matters more
	if strings.TrimSpace(out) == "" {
		// The messages Nagios Core gives for an empty stdout.
		r = nagios.Result{Output: "(No output returned from plugin)"}
		if errText := strings.TrimSpace(stderr.text()); errText != "" {
			first, rest, _ := strings.Cut(errText, "\n")
			r = nagios.Result{Output: "(No output on stdout) stderr: " + first, Long: rest}
		}
	}
	if stdout.dropped() > 0 {
		r.Long = joinLines(r.Long, fmt.Sprintf("(output truncated: kept the first %d of %d bytes)", len(out), stdout.total))
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

// stopGroup ends a timed-out plugin: SIGTERM to its group, SIGKILL after
// killGrace, and returns once it has been reaped. The process itself is
// signalled too, in case it moved to another group.
func stopGroup(p *os.Process, exited <-chan error) error {
	signal := func(sig syscall.Signal) {
		_ = syscall.Kill(-p.Pid, sig)
		_ = p.Signal(sig)
	}
	signal(syscall.SIGTERM)
	grace := time.NewTimer(killGrace)
	defer grace.Stop()
	select {
	case err := <-exited:
		return err
	case <-grace.C:
	}
	signal(syscall.SIGKILL)
	return <-exited
}

// drains copies a child's stdout and stderr into bounded buffers. The pipes
// are the runner's own rather than exec's, so that waiting for the process
// and waiting for its output are separate: a grandchild holding a pipe open
// cannot hold up the reaping.
type drains struct {
	readers, writers []*os.File
	wg               sync.WaitGroup
	dsts             []io.Writer
}

func pipeOutput(cmd *exec.Cmd, stdout, stderr io.Writer) (*drains, error) {
	d := &drains{dsts: []io.Writer{stdout, stderr}}
	for range d.dsts {
		r, w, err := os.Pipe()
		if err != nil {
			d.abort()
			return nil, fmt.Errorf("make output pipe: %w", err)
		}
		d.readers, d.writers = append(d.readers, r), append(d.writers, w)
	}
	cmd.Stdout, cmd.Stderr = d.writers[0], d.writers[1]
	return d, nil
}

// started closes the parent's write ends, so EOF comes when the plugin and
// everything it started are done, and starts copying.
func (d *drains) started() {
	for _, w := range d.writers {
		w.Close()
	}
	for i, r := range d.readers {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			_, _ = io.Copy(d.dsts[i], r)
		}()
	}
}

// wait gives the copies up to grace to reach EOF, then closes the read ends,
// which ends them at once, and waits for them.
func (d *drains) wait(grace time.Duration) {
	done := make(chan struct{})
	go func() {
		d.wg.Wait()
		close(done)
	}()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
	for _, r := range d.readers {
		r.Close()
	}
	<-done
}

// abort closes every pipe end when the plugin never started.
func (d *drains) abort() {
	for _, f := range append(d.readers, d.writers...) {
		f.Close()
	}
}

// capped keeps the first max bytes written to it and counts the rest, so a
// plugin that prints without end never blocks on a full pipe nor fills memory.
type capped struct {
	max   int
	buf   []byte
	total int64
}

func (c *capped) Write(p []byte) (int, error) {
	c.total += int64(len(p))
	if room := c.max - len(c.buf); room > 0 {
		c.buf = append(c.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (c *capped) dropped() int64 { return c.total - int64(len(c.buf)) }

// text is what was kept; when some was dropped it ends at the last whole
// line, so half a perfdata item is not read as a whole one.
func (c *capped) text() string {
	b := c.buf
	if c.dropped() > 0 {
		if i := strings.LastIndexByte(string(b), '\n'); i >= 0 {
			b = b[:i+1]
		}
	}
	return string(b)
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
