// Package daemontest runs a daemon's main as a process of its own for
// tests that send it signals: the test binary starts itself again with an
// environment variable that its TestMain turns into a call of main.
package daemontest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mainEnv is the variable that makes the test binary run main.
const mainEnv = "IMMUNE_DAEMONTEST_MAIN"

// IsMain reports whether the test binary was started to run main.
func IsMain() bool { return os.Getenv(mainEnv) == "1" }

// Main is a daemon's TestMain: it runs main when Start asked for it,
// else the tests.
func Main(m *testing.M, main func()) {
	if IsMain() {
		main()
	}
	os.Exit(m.Run())
}

// Proc is the daemon running, logging JSON lines to Log.
type Proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	Log  string
	done chan error
	// Stderr is what the daemon printed to stderr.
	Stderr bytes.Buffer
}

// Start runs main with args, which should log JSON to log (--log-format
// json --log-file log). The process is killed at the end of the test.
func Start(t *testing.T, log string, args ...string) *Proc {
	t.Helper()
	p := &Proc{t: t, Log: log, done: make(chan error, 1)}
	p.cmd = exec.Command(os.Args[0], args...)
	p.cmd.Env = append(os.Environ(), mainEnv+"=1")
	p.cmd.Stderr = &p.Stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start daemon: %v", err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		p.done <- nil
	})
	return p
}

// Signal sends sig to the daemon.
func (p *Proc) Signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

// Record is one JSON log line.
type Record map[string]any

// Msg is the record's message.
func (r Record) Msg() string { s, _ := r["msg"].(string); return s }

// Level is the record's level (INFO, WARN, ERROR).
func (r Record) Level() string { s, _ := r["level"].(string); return s }

// Records reads every record logged so far (in the file Log names now).
func (p *Proc) Records() []Record {
	b, _ := os.ReadFile(p.Log)
	var out []Record
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r Record
		if json.Unmarshal(sc.Bytes(), &r) == nil {
			out = append(out, r)
		}
	}
	return out
}

// WaitLog waits for the (after+1)th record whose message starts with msg,
// failing the test after timeout or when the daemon exits first.
func (p *Proc) WaitLog(msg string, after int, timeout time.Duration) Record {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		n := 0
		for _, r := range p.Records() {
			if strings.HasPrefix(r.Msg(), msg) {
				if n == after {
					return r
				}
				n++
			}
		}
		select {
		case err := <-p.done:
			p.done <- err
			p.t.Fatalf("the daemon exited (%v) before logging %q; stderr:\n%s", err, msg, p.Stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("no log %q within %s; log:\n%s\nstderr:\n%s", msg, timeout, readFile(p.Log), p.Stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Wait waits for the daemon to exit and returns its exit code.
func (p *Proc) Wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		if err != nil {
			p.t.Fatalf("wait: %v", err)
		}
		return 0
	case <-time.After(timeout):
		p.t.Fatalf("the daemon did not exit within %s", timeout)
		return -1
	}
}

// Alive reports whether the daemon still runs.
func (p *Proc) Alive() bool {
	select {
	case err := <-p.done:
		p.done <- err
		return false
	default:
		return true
	}
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}
