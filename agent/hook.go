package agent

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/immune-ops/immune/internal/subprocess"
)

const (
	// hookDrainGrace is how long a finished hook's children may hold its
	// output open: a hook may start a daemon, which must not hang the deploy.
	hookDrainGrace = 2 * time.Second
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
	out := &subprocess.Buffer{Max: hookOutputMax, Tail: true}
	// Past its timeout the hook's group gets SIGKILL at once, the deploy
	// waiting on it; what it leaves running when it exits runs on.
	begun := time.Now()
	res, err := subprocess.Run(ctx, subprocess.Command{
		Path: argv[0], Args: argv[1:], Dir: dir,
		Env:    []string{"IMMUNE_REVISION=" + rev, "IMMUNE_RELEASE_DIR=" + dir, "IMMUNE_PREVIOUS_REVISION=" + prev},
		Stdout: out, Stderr: out, DrainGrace: hookDrainGrace,
	})
	if err == nil {
		err = res.Err
		if res.Interrupted {
			err = fmt.Errorf("timed out after %s", timeout)
		}
	}
	text := strings.TrimSpace(out.String())
	d.log.Info("deploy hook ran", "hook", which, "revision", rev, "took", time.Since(begun).Round(time.Millisecond), "err", err, "output", text)
	switch {
	case err == nil:
		return nil
	case text != "":
		return fmt.Errorf("%s %s: %v: %s", which, argv[0], err, text)
	}
	return fmt.Errorf("%s %s: %v", which, argv[0], err)
}
