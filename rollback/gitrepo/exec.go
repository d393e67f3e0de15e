package gitrepo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Output bounds: what a git run prints for people is kept to its end,
// where git says what went wrong; what is parsed may be larger.
const (
	runOutputMax   = 8 << 10
	queryOutputMax = 32 << 20
)

// Run is one git run as the push page shows it.
type Run struct {
	Args []string `json:"args"`
	// Output is what it printed, stdout and stderr together, cut to its
	// last 8 KiB.
	Output string `json:"output,omitempty"`
	// Error is how it failed, if it did.
	Error string `json:"error,omitempty"`
}

// String writes the run as a terminal would show it.
func (r Run) String() string {
	var b strings.Builder
	b.WriteString("$ git " + strings.Join(r.Args, " ") + "\n")
	if r.Output != "" {
		b.WriteString(r.Output)
		if !strings.HasSuffix(r.Output, "\n") {
			b.WriteByte('\n')
		}
	}
	if r.Error != "" {
		b.WriteString("(" + r.Error + ")\n")
	}
	return b.String()
}

// cmd is one git run being set up.
type cmd struct {
	*exec.Cmd
	args    []string
	ctx     context.Context
	cancel  context.CancelFunc
	timeout time.Duration
}

// command sets up git args in dir, with stdin (if not nil) as its input.
func (r *Repo) command(ctx context.Context, dir string, stdin []byte, args ...string) *cmd {
	git := r.Git
	if git == "" {
		git = "git"
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	c := &cmd{Cmd: exec.CommandContext(ctx, git, args...), args: args, ctx: ctx, cancel: cancel, timeout: timeout}
	c.Dir = dir
	c.Env = gitEnv()
	if stdin != nil {
		c.Stdin = bytes.NewReader(stdin)
	}
	// A session of its own: no terminal for ssh to ask a passphrase on,
	// and a group that a timeout kills whole (git runs ssh, hooks, gc).
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	c.WaitDelay = 5 * time.Second
	return c
}

// wait runs the command and says how it failed: a timeout as one.
func (c *cmd) wait() error {
	defer c.cancel()
	err := c.Run()
	if err != nil && errors.Is(c.ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("timed out after %s", c.timeout)
	}
	return err
}

// query runs a command whose output is parsed: stdout is returned, stderr
// goes into the error.
func (c *cmd) query() (string, error) {
	stdout := &limitBuffer{max: queryOutputMax}
	stderr := &tailBuffer{max: runOutputMax}
	c.Stdout, c.Stderr = stdout, stderr
	if err := c.wait(); err != nil {
		return stdout.String(), &gitError{args: c.args, err: err, output: stderr.String()}
	}
	return stdout.String(), nil
}

// gitError is a failed git run, with the end of what it printed.
type gitError struct {
	args   []string
	err    error
	output string
}

func (e *gitError) Error() string {
	msg := "git " + strings.Join(e.args, " ") + ": " + e.err.Error()
	if out := lastLines(e.output, 4); out != "" {
		msg += ": " + out
	}
	return msg
}

func (e *gitError) Unwrap() error { return e.err }

// exitCode is git's exit status in err: 0 for none, -1 when it did not
// exit.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode()
	}
	return -1
}

// lastLines is the last n non-empty lines of out, joined by "; ".
func lastLines(out string, n int) string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "; ")
}

// run runs git args in the working copy for the record: what it printed,
// stdout and stderr as they came, goes into res (when not nil) and is
// returned.
func (r *Repo) run(ctx context.Context, res *Result, stdin []byte, args ...string) (string, error) {
	c := r.command(ctx, r.Dir, stdin, args...)
	out := &tailBuffer{max: runOutputMax}
	c.Stdout, c.Stderr = out, out
	err := c.wait()
	run := Run{Args: args, Output: out.String()}
	if err != nil {
		run.Error = err.Error()
		err = &gitError{args: args, err: err, output: out.String()}
	}
	if res != nil {
		res.Runs = append(res.Runs, run)
	}
	return out.String(), err
}

// gitEnv is the coordinator's environment without what would point git at
// another repository, with git's prompts off and its messages in English.
func gitEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES",
			"GIT_COMMON_DIR", "GIT_NAMESPACE", "GIT_PREFIX", "GIT_TERMINAL_PROMPT", "GIT_EDITOR", "LC_ALL", "LANGUAGE":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "GIT_TERMINAL_PROMPT=0", "GIT_EDITOR=true", "LC_ALL=C", "LANGUAGE=C")
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	b   []byte
	cut bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
		t.cut = true
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	if t.cut {
		return "[...]\n" + string(t.b)
	}
	return string(t.b)
}

// limitBuffer fails a write that would take it over max bytes, which fails
// the run: output to be parsed is no use cut.
type limitBuffer struct {
	max int
	bytes.Buffer
}

func (l *limitBuffer) Write(p []byte) (int, error) {
	if l.Len()+len(p) > l.max {
		return 0, fmt.Errorf("output over %d bytes", l.max)
	}
	return l.Buffer.Write(p)
}
