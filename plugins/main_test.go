package plugins

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
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

// firstLine reads one line from r, for a helper's report.
func firstLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	return strings.TrimSpace(line), err
}
