package plugins

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/immune-ops/immune/fixtures/procs"
	"github.com/immune-ops/immune/nagios"
)

// newGo starts nothing yet: the process comes with the first Run. Cleanup
// closes it and checks that it is gone.
func newGo(t *testing.T, path string, args []string, opts GoOptions) *GoPlugin {
	t.Helper()
	g, err := NewGo(path, args, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pid := g.Pid()
		g.Close()
		if pid != 0 && !procs.Gone(pid) {
			t.Errorf("plugin %d still there after Close", pid)
		}
	})
	return g
}

// lockedBuffer is a log that go-plugin's goroutines write while a test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func addFiles(t *testing.T, dir string, n int) {
	t.Helper()
	for range n {
		f, err := os.CreateTemp(dir, "file")
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
}

// TestGoPluginReusesProcess runs the example plugin several times: one
// process serves every run, each run sees the directory as it is then, and
// the result is the one the same binary prints as a plain Nagios plugin.
func TestGoPluginReusesProcess(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "not a file"), 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{"-d", dir, "-w", "3", "-c", "4"}
	path := filepath.Join(binDir, "check_example")
	g := newGo(t, path, args, GoOptions{Timeout: 10 * time.Second, TimeoutState: nagios.Critical})
	standalone, err := NewExec(path, args, ExecOptions{Timeout: 10 * time.Second, TimeoutState: nagios.Critical})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		add   int
		state nagios.State
		want  string
	}{
		{2, nagios.OK, "FILES OK - 2 files in " + dir + "|files=2;3;4;0\n"},
		{2, nagios.Warning, "FILES WARNING - 4 files in " + dir + "|files=4;3;4;0\n"},
		{1, nagios.Critical, "FILES CRITICAL - 5 files in " + dir + "|files=5;3;4;0\n"},
	}
	pid := 0
	for i, s := range steps {
		addFiles(t, dir, s.add)
		r := g.Run(context.Background())
		if r.State != s.state || r.String() != s.want {
			t.Errorf("run %d: got %v %q, want %v %q", i, r.State, r, s.state, s.want)
		}
		if plain := standalone.Run(context.Background()); plain.State != r.State || plain.String() != r.String() {
			t.Errorf("run %d: as a plain plugin %v %q, as a Go plugin %v %q", i, plain.State, plain, r.State, r)
		}
		switch {
		case g.Pid() == 0:
			t.Fatalf("run %d: no plugin process", i)
		case pid != 0 && g.Pid() != pid:
			t.Errorf("run %d: plugin process %d, was %d: not reused", i, g.Pid(), pid)
		}
		pid = g.Pid()
	}

	if err := g.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if !procs.Gone(pid) {
		state, ppid := procs.Stat(pid)
		t.Errorf("plugin %d still there after Close: state %c, parent %d", pid, state, ppid)
	}
	r := g.Run(context.Background())
	if want := "UNKNOWN - plugin " + path + ": closed"; r.State != nagios.Unknown || r.Output != want {
		t.Errorf("Run after Close: got %v %q, want %q", r.State, r.Output, want)
	}
}

func TestGoPluginRestartsDeadProcess(t *testing.T) {
	dir := t.TempDir()
	g := newGo(t, filepath.Join(binDir, "check_example"), []string{"-d", dir}, GoOptions{Timeout: 10 * time.Second})
	for i := range 2 {
		r := g.Run(context.Background())
		if want := "FILES OK - 0 files in " + dir; r.State != nagios.OK || r.Output != want {
			t.Fatalf("run %d: got %v %q, want %q", i, r.State, r.Output, want)
		}
		pid := g.Pid()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill plugin %d: %v", pid, err)
		}
		procs.WaitGone(t, pid)
		r = g.Run(context.Background())
		if r.State != nagios.OK {
			t.Fatalf("run %d after kill: got %v %q", i, r.State, r)
		}
		if g.Pid() == pid || g.Pid() == 0 {
			t.Errorf("run %d after kill: plugin process %d, killed %d: not restarted", i, g.Pid(), pid)
		}
	}
}

// TestGoPluginMisbehaves runs a plugin that ignores its deadline, panics or
// exits, and wants a result for each, with the process restarted only when
// it died.
func TestGoPluginMisbehaves(t *testing.T) {
	plugin := filepath.Join(binDir, "testplugin")
	dir := t.TempDir()
	t.Setenv("IMMUNE_TEST", "from the agent")
	tests := []struct {
		name    string
		path    string
		args    []string
		opts    GoOptions
		state   nagios.State
		output  string // the status line, or its start when prefix is set
		prefix  bool
		long    string
		restart bool   // each run finds the process dead
		log     string // in go-plugin's log
	}{{
		name:   "gets the deadline",
		args:   []string{"deadline"},
		opts:   GoOptions{Timeout: 10 * time.Second},
		state:  nagios.OK,
		output: "OK - deadline set",
	}, {
		name:   "ignores the deadline",
		args:   []string{"stubborn"},
		opts:   GoOptions{Timeout: 300 * time.Millisecond, TimeoutState: nagios.Warning},
		state:  nagios.Warning,
		output: "WARNING - plugin " + plugin + " timed out after 0.3 seconds",
	}, {
		name:   "panics",
		args:   []string{"panic"},
		state:  nagios.Unknown,
		output: "UNKNOWN - check panicked: asked to",
	}, {
		name:    "exits during the call",
		args:    []string{"exit"},
		state:   nagios.Unknown,
		output:  "UNKNOWN - plugin " + plugin + " stopped answering: call check.Run: rpc error: code = Unavailable",
		prefix:  true,
		restart: true,
		log:     `plugin process exited: plugin=` + plugin + ` id=`,
	}, {
		name:   "environment and directory",
		args:   []string{"env", "IMMUNE_TEST"},
		opts:   GoOptions{Env: []string{"IMMUNE_TEST=from the check"}, Dir: dir},
		state:  nagios.Warning,
		output: "WARNING - from the check",
		long:   dir,
	}, {
		name:   "not a plugin",
		path:   testdata(t, "perf.sh"),
		state:  nagios.Unknown,
		output: "UNKNOWN - plugin " + testdata(t, "perf.sh") + ": start: ",
		prefix: true,
	}, {
		name:   "missing",
		path:   "/nonexistent/check_missing",
		state:  nagios.Unknown,
		output: "UNKNOWN - plugin /nonexistent/check_missing: start: fork/exec /nonexistent/check_missing: no such file or directory",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.path
			if path == "" {
				path = plugin
			}
			log := &lockedBuffer{}
			tt.opts.Log = log
			g := newGo(t, path, tt.args, tt.opts)
			pid := 0
			for i := range 2 {
				r := g.Run(context.Background())
				ok := r.Output == tt.output
				if tt.prefix {
					ok = strings.HasPrefix(r.Output, tt.output)
				}
				if !ok || r.State != tt.state || r.Long != tt.long {
					t.Errorf("run %d: got %v %q %q, want %v %q %q", i, r.State, r.Output, r.Long, tt.state, tt.output, tt.long)
				}
				if tt.restart {
					procs.WaitGone(t, g.Pid())
				} else if i > 0 && g.Pid() != pid {
					t.Errorf("run %d: plugin process %d, was %d", i, g.Pid(), pid)
				}
				pid = g.Pid()
			}
			if !strings.Contains(log.String(), tt.log) {
				t.Errorf("go-plugin's log has no %q:\n%s", tt.log, log)
			}
		})
	}
}

// TestGoPluginDiesWithAgent starts a fake agent (this test binary again)
// that loads the example plugin, SIGKILLs the agent, and wants the plugin
// gone: nothing was there to Close it, so only Pdeathsig can have ended it.
func TestGoPluginDiesWithAgent(t *testing.T) {
	agent := exec.Command(os.Args[0], "-test.run=^$")
	agent.Env = append(os.Environ(), helperEnv+"="+filepath.Join(binDir, "check_example"), helperEnv+"_DIR="+t.TempDir())
	stdin, err := agent.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := agent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := agent.Start(); err != nil {
		t.Fatalf("start fake agent: %v", err)
	}
	t.Cleanup(func() {
		stdin.Close()
		_ = agent.Process.Kill()
		_ = agent.Wait()
	})
	line, err := firstLine(stdout)
	if err != nil {
		t.Fatalf("fake agent said %q: %v", line, err)
	}
	pidText, state, _ := strings.Cut(line, " ")
	pid, err := strconv.Atoi(pidText)
	if err != nil || pid == 0 || state != nagios.OK.String() {
		t.Fatalf("fake agent said %q", line)
	}
	if s, ppid := procs.Stat(pid); s == 0 || s == 'Z' || ppid != agent.Process.Pid {
		t.Fatalf("plugin %d: state %c, parent %d, want it running under the agent %d", pid, s, ppid, agent.Process.Pid)
	}
	if err := agent.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill fake agent: %v", err)
	}
	_ = agent.Wait()
	procs.WaitGone(t, pid)
}

// TestGoPluginLockHonoursContext: a Run whose deadline passes while another
// Run is starting the process reports its own timeout instead of waiting.
func TestGoPluginLockHonoursContext(t *testing.T) {
	g := newGo(t, filepath.Join(binDir, "check_example"), []string{"-d", t.TempDir()}, GoOptions{TimeoutState: nagios.Critical})
	g.lock <- struct{}{} // as a Run that is starting the process
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	r := g.Run(ctx)
	<-g.lock
	want := fmt.Sprintf("CRITICAL - plugin %s timed out after 0.1 seconds", filepath.Join(binDir, "check_example"))
	if r.State != nagios.Critical || r.Output != want {
		t.Errorf("got %v %q, want %q", r.State, r.Output, want)
	}
}
