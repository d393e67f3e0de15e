package plugins

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/immune-ops/immune/checks"
)

// Both kinds of plugin are checks the agent schedules like its own.
var (
	_ checks.Check     = (*Exec)(nil)
	_ checks.Timeouter = (*Exec)(nil)
	_ checks.Check     = (*GoPlugin)(nil)
	_ checks.Timeouter = (*GoPlugin)(nil)
)

// helperEnv, when set to a plugin's path, makes the test binary the agent
// in TestGoPluginDiesWithAgent instead of running tests.
const helperEnv = "IMMUNE_PLUGINS_TEST_AGENT"

// binDir holds the Go plugins TestMain builds.
var binDir string

func TestMain(m *testing.M) {
	if path := os.Getenv(helperEnv); path != "" {
		os.Exit(fakeAgent(path, os.Getenv(helperEnv+"_DIR")))
	}
	dir, err := os.MkdirTemp("", "immune-plugins-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "make plugin dir:", err)
		os.Exit(1)
	}
	binDir = dir
	// go test puts its own go first in PATH.
	build := exec.Command("go", "build", "-o", dir+string(filepath.Separator),
		"./example/check_example", "./testdata/testplugin")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build test plugins: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fakeAgent loads the Go plugin at path, runs it once, prints its pid and
// then waits for stdin to close, as an agent that is about to be killed.
func fakeAgent(path, dir string) int {
	g, err := NewGo(path, []string{"-d", dir}, GoOptions{Timeout: 10 * time.Second})
	if err != nil {
		fmt.Println("0", err)
		return 1
	}
	r := g.Run(context.Background())
	fmt.Println(g.Pid(), r.State)
	_, _ = io.Copy(io.Discard, os.Stdin)
	g.Close()
	return 0
}

// testdata is the absolute path of a file under testdata/.
func testdata(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// procStat reads a process's state letter and parent from /proc; state is 0
// when there is no such process.
func procStat(pid int) (state byte, ppid int) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	// "pid (comm) S ppid ...": comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 2 {
		return 0, 0
	}
	ppid, _ = strconv.Atoi(fields[1])
	return fields[0][0], ppid
}

// gone reports that pid no longer runs and is no zombie of ours. A zombie
// of someone else's is dead: in a container whose init never reaps, killed
// orphans stay as zombies of it.
func gone(pid int) bool {
	state, ppid := procStat(pid)
	return state == 0 || (state == 'Z' && ppid != os.Getpid())
}

// waitGone waits, within a generous bound, for pid to be gone.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if gone(pid) {
			return
		}
	}
	state, ppid := procStat(pid)
	t.Fatalf("process %d still there: state %c, parent %d (we are %d)", pid, state, ppid, os.Getpid())
}

// readPids reads the "pid grandchild-pid" line a test script wrote.
func readPids(t *testing.T, file string) (child, grandchild int) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("read pids: %v", err)
	}
	if _, err := fmt.Sscan(string(b), &child, &grandchild); err != nil {
		t.Fatalf("read pids from %q: %v", b, err)
	}
	return child, grandchild
}

// firstLine reads one line from r, for a helper's report.
func firstLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	return strings.TrimSpace(line), err
}
