package notify

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/immune-ops/immune/conf"
	"github.com/immune-ops/immune/fixtures/poll"
)

// TestCommandGetsJSON: the command gets the event's JSON on its standard
// input and the IMMUNE_* variables in its environment.
func TestCommandGetsJSON(t *testing.T) {
	dir := t.TempDir()
	script := `cat > "$0/event.json"; env | grep '^IMMUNE_' | sort > "$0/env"`
	n, _ := newNotifier(t, conf.Notify{Commands: []conf.NotifyCommand{{Command: []string{"/bin/sh", "-c", script, dir}, NotifyRetry: fast(1)}}})
	n.Send(rollback)
	if err := closeWithin(t, n, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "event.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got Event
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("stdin is not an event: %v\n%s", err, data)
	}
	if got.Kind != RolledBack || got.Revision != rollback.Revision || len(got.Commits) != 2 || got.Commits[1].Author != "Bob" {
		t.Errorf("stdin: %+v", got)
	}
	env, err := os.ReadFile(filepath.Join(dir, "env"))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"IMMUNE_EVENT=rolled_back",
		"IMMUNE_PUSH=" + rollback.Push,
		"IMMUNE_REVISION=" + rollback.Revision,
		"IMMUNE_TEXT=" + got.Text,
		"IMMUNE_URL=" + rollback.URL,
	}, "\n") + "\n"
	if string(env) != want {
		t.Errorf("environment:\n%s\nwant:\n%s", env, want)
	}
	if s := n.Stats(); s != (Stats{Sent: 1}) {
		t.Errorf("stats %+v", s)
	}
}

// TestCommandFails: a failing command is tried attempts times and its
// last words logged; a missing one once.
func TestCommandFails(t *testing.T) {
	dir := t.TempDir()
	runs := filepath.Join(dir, "runs")
	n, logs := newNotifier(t, conf.Notify{Commands: []conf.NotifyCommand{
		{Command: []string{"/bin/sh", "-c", `echo run >> "$0"; echo "pager: no route to the gateway" >&2; exit 3`, runs}, NotifyRetry: fast(2)},
		{Command: []string{filepath.Join(dir, "no-such-pager")}, NotifyRetry: fast(3)},
	}})
	n.Send(rollback)
	if err := closeWithin(t, n, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(runs)
	if got := strings.Count(string(data), "run\n"); got != 2 {
		t.Errorf("the command ran %d times, want 2", got)
	}
	if s := n.Stats(); s != (Stats{Failed: 2}) {
		t.Errorf("stats %+v", s)
	}
	for _, want := range []string{"exit status 3: pager: no route to the gateway", "attempts=1 err=\"run ", "no-such-pager: no such file or directory"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log does not say %q:\n%s", want, logs)
		}
	}
}

// TestCommandTimeout: a command that outlives its timeout is killed, with
// what it started.
func TestCommandTimeout(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	retry := fast(1)
	retry.Timeout = conf.Duration(200 * time.Millisecond)
	n, logs := newNotifier(t, conf.Notify{Commands: []conf.NotifyCommand{
		{Command: []string{"/bin/sh", "-c", `sleep 60 & echo $! > "$0"; wait`, pidFile}, NotifyRetry: retry},
	}})
	n.Send(rollback)
	if err := closeWithin(t, n, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if s := n.Stats(); s != (Stats{Failed: 1}) || !strings.Contains(logs.String(), "timed out after 200ms") {
		t.Errorf("stats %+v, log:\n%s", s, logs)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the command's child to be killed", func() (bool, string) {
		err := syscall.Kill(pid, 0)
		return errors.Is(err, syscall.ESRCH), "sleep 60 still runs"
	})
}
