// Package subprocess runs a program the way a monitoring agent must: never
// through a shell, in a process group of its own that is killed whole when
// its time is up, killed too if the agent dies (Pdeathsig), and with its
// output kept in bounded buffers, so that neither a runaway nor a hung
// program can take the agent down with it. External plugins and deploy
// hooks both run through it.
package subprocess

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Command is a program to run.
type Command struct {
	Path string
	Args []string
	// Dir is the working directory; "" is the caller's.
	Dir string
	// Env holds KEY=value pairs added to the caller's environment; a key
	// set here wins over the caller's.
	Env []string
	// Stdout and Stderr receive the output; nil discards it. The same
	// writer for both gets one pipe, so the two interleave as written.
	Stdout, Stderr io.Writer
	// KillGrace is how long the group has between SIGTERM and SIGKILL
	// when ctx ends; zero sends SIGKILL at once.
	KillGrace time.Duration
	// DrainGrace bounds the wait for the output once the process is gone
	// (zero: DefaultDrainGrace): only what it left running can hold the
	// pipes open that long, and the pipes are closed on it then.
	DrainGrace time.Duration
	// KillLeftovers kills what the process left running in its group once
	// it has exited. Without it they run on: a deploy hook may start a
	// daemon, while a plugin's children are its business only while it runs.
	KillLeftovers bool
}

// DefaultDrainGrace is the DrainGrace of a Command that sets none: ample
// to read what an exited process wrote.
const DefaultDrainGrace = 200 * time.Millisecond

// Result is how a started process ended.
type Result struct {
	// State is its exit status.
	State *os.ProcessState
	// Err is what waiting for it said: nil for exit status 0, an
	// *exec.ExitError for another or a signal.
	Err error
	// Interrupted is set when ctx ended before the process did, so that
	// its group was killed.
	Interrupted bool
}

// Run starts c and waits for it to exit, or for ctx to end and then for
// its group to be killed and reaped; then for its output, at most
// DrainGrace. The error is for a process that did not start; how a
// started one ended is in the Result.
func Run(ctx context.Context, c Command) (Result, error) {
	cmd := exec.Command(c.Path, c.Args...)
	if cmd.Err != nil {
		return Result{}, cmd.Err
	}
	if len(c.Env) > 0 {
		cmd.Env = append(os.Environ(), c.Env...)
	}
	cmd.Dir = c.Dir
	// Its own group, so a timeout kills everything it started; Pdeathsig,
	// so it does not outlive a caller that dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out, err := pipeOutput(cmd, c.Stdout, c.Stderr)
	if err != nil {
		return Result{}, err
	}
	if err := cmd.Start(); err != nil {
		out.abort()
		return Result{}, err
	}
	out.started()

	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var res Result
	select {
	case res.Err = <-exited:
	case <-ctx.Done():
		select {
		case res.Err = <-exited: // it finished as ctx ended: its result stands
		default:
			res.Interrupted = true
			res.Err = stopGroup(cmd.Process, c.KillGrace, exited)
		}
	}
	if c.KillLeftovers {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if c.DrainGrace == 0 {
		c.DrainGrace = DefaultDrainGrace
	}
	out.wait(c.DrainGrace)
	res.State = cmd.ProcessState
	return res, nil
}

// stopGroup ends a process that ran out of time: SIGTERM to its group and
// SIGKILL after grace (or SIGKILL at once), and returns once it has been
// reaped. The process itself is signalled too, in case it moved to another
// group.
func stopGroup(p *os.Process, grace time.Duration, exited <-chan error) error {
	signal := func(sig syscall.Signal) {
		_ = syscall.Kill(-p.Pid, sig)
		_ = p.Signal(sig)
	}
	if grace > 0 {
		signal(syscall.SIGTERM)
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case err := <-exited:
			return err
		case <-t.C:
		}
	}
	signal(syscall.SIGKILL)
	return <-exited
}

// drains copies a child's output into its writers. The pipes are the
// runner's own rather than exec's, so that waiting for the process and
// waiting for its output are separate: a grandchild holding a pipe open
// cannot hold up the reaping.
type drains struct {
	readers, writers []*os.File
	dsts             []io.Writer
	wg               sync.WaitGroup
}

func pipeOutput(cmd *exec.Cmd, stdout, stderr io.Writer) (*drains, error) {
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	d := &drains{dsts: []io.Writer{stdout, stderr}}
	if stdout == stderr {
		d.dsts = d.dsts[:1]
	}
	for range d.dsts {
		r, w, err := os.Pipe()
		if err != nil {
			d.abort()
			return nil, fmt.Errorf("make output pipe: %w", err)
		}
		d.readers, d.writers = append(d.readers, r), append(d.writers, w)
	}
	cmd.Stdout, cmd.Stderr = d.writers[0], d.writers[len(d.writers)-1]
	return d, nil
}

// started closes the parent's write ends, so EOF comes when the process
// and everything it started are done, and starts copying.
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

// abort closes every pipe end when the process never started.
func (d *drains) abort() {
	for _, f := range append(d.readers, d.writers...) {
		f.Close()
	}
}
