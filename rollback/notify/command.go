package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/immune-ops/immune/conf"
)

// commandOutputMax bounds what is kept of a command's output: its end,
// where the reason for a failure is.
const commandOutputMax = 4 << 10

// command runs a program for each event, the JSON on its standard input.
type command struct {
	argv  []string
	label string
}

func newCommand(cfg conf.NotifyCommand, i int) *command {
	return &command{argv: cfg.Command, label: fmt.Sprintf("commands[%d] %s", i, cfg.Command[0])}
}

func (c *command) name() string { return c.label }

func (c *command) send(ctx context.Context, ev *Event, body []byte) error {
	cmd := exec.CommandContext(ctx, c.argv[0], c.argv[1:]...)
	cmd.Stdin = bytes.NewReader(body)
	cmd.Env = append(os.Environ(),
		"IMMUNE_EVENT="+string(ev.Kind),
		"IMMUNE_PUSH="+ev.Push,
		"IMMUNE_REVISION="+ev.Revision,
		"IMMUNE_URL="+ev.URL,
		"IMMUNE_TEXT="+ev.Text,
	)
	out := &tailBuffer{max: commandOutputMax}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own group, so that a timeout kills all it started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	switch {
	case err == nil, errors.Is(err, exec.ErrWaitDelay):
		// ErrWaitDelay: it succeeded, and what it left running holds
		// its output open.
		return nil
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission):
		return permanentError{fmt.Errorf("run %s: %w", c.argv[0], err)}
	}
	if text := lastLine(out.String()); text != "" {
		return fmt.Errorf("%s: %w: %s", c.argv[0], err, text)
	}
	return fmt.Errorf("%s: %w", c.argv[0], err)
}

// lastLine is the last non-empty line of a command's output.
func lastLine(out string) string {
	out = strings.TrimSpace(out)
	if i := strings.LastIndexByte(out, '\n'); i >= 0 {
		out = out[i+1:]
	}
	return strings.TrimSpace(out)
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
