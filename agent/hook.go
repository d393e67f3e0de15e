package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

const (
	// hookWaitDelay is how long a finished hook's children may hold its
	// output open: a hook may start a daemon, which must not hang the deploy.
	hookWaitDelay = 2 * time.Second
	// hookOutputMax is how much of a hook's output is kept for the error
	// message and the log: its end, where the reason for a failure is.
	hookOutputMax = 4 << 10
)

// hook runs a pre_activate or post_activate command for the release rev.
func (d *Deployer) hook(ctx context.Context, which string, argv []string, rev, prev string) error {
	if len(argv) == 0 {
		return nil
	}
	timeout := d.cfg.HookTimeout.D()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	dir := d.releaseDir(rev)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "IMMUNE_REVISION="+rev, "IMMUNE_RELEASE_DIR="+dir, "IMMUNE_PREVIOUS_REVISION="+prev)
	out := &tailBuffer{max: hookOutputMax}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own group, so a timeout kills all it started; Pdeathsig, so it
	// does not outlive an agent that dies mid-deploy.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = hookWaitDelay
	begun := time.Now()
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		err = nil // it succeeded; what it left running holds the output open
	}
	text := strings.TrimSpace(out.String())
	d.log.Info("deploy hook ran", "hook", which, "revision", rev, "took", time.Since(begun).Round(time.Millisecond), "err", err, "output", text)
	switch {
	case err == nil:
		return nil
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		err = fmt.Errorf("timed out after %s", timeout)
	}
	if text != "" {
		return fmt.Errorf("%s %s: %v: %s", which, argv[0], err, text)
	}
	return fmt.Errorf("%s %s: %v", which, argv[0], err)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }
