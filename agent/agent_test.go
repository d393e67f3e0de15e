package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/immune-ops/immune/agentapi"
	"github.com/immune-ops/immune/conf"
	"github.com/immune-ops/immune/nagios"
)

// agentConfig is a config for a test agent on loopback ports the kernel picks.
func agentConfig(t *testing.T, dataDir string) *conf.Agent {
	t.Helper()
	testdata, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf(`
host: test1
host_type: www
data_dir: %s
checks:
  - name: check_load
    builtin: check_load
    args: [-w, "1000", -c, "2000"]
    interval: 1s
  - name: always_critical
    plugin: %s/check_always_critical
    interval: 1s
    retry_interval: 1s
    max_check_attempts: 3
  - name: sleepy
    plugin: %s/check_sleepy
    interval: 1s
    timeout: 1s
    timeout_state: WARNING
gauges:
  - name: temperature
    check: always_critical
    label: temp
nrpe:
  listen: 127.0.0.1:0
http:
  listen: 127.0.0.1:0
`, dataDir, testdata, testdata)
	cfg, err := conf.ParseAgent("test.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startAgent runs an agent until the test ends.
func startAgent(t *testing.T, cfg *conf.Agent) *Agent {
	t.Helper()
	a, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent stopped with %v", err)
		}
	})
	return a
}

// apiGet reads an API path with the agent's token into v.
func apiGet(t *testing.T, a *Agent, path string, v any) int {
	t.Helper()
	token, err := os.ReadFile(filepath.Join(a.cfg.DataDir, "api.token"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "http://"+a.HTTPAddr().String()+path, nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("decode %s: %v", path, err)
		}
	}
	return resp.StatusCode
}

// waitFor polls the store until cond holds for the named check.
func waitFor(t *testing.T, a *Agent, name string, within time.Duration, cond func(Status) bool) Status {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st, ok := a.store.Get(name)
		if ok && cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: condition not met within %v; last status %+v", name, within, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAgentSchedulesAndKeepsState(t *testing.T) {
	dataDir := t.TempDir()
	a := startAgent(t, agentConfig(t, dataDir))

	// A problem is soft, re-checked on the retry interval, then hard at 3/3.
	st := waitFor(t, a, "always_critical", 20*time.Second, func(s Status) bool { return s.StateType == agentapi.Hard })
	if st.State != nagios.Critical || st.AttemptText() != "3/3" || st.Output != "ALWAYS CRITICAL - disk on fire" {
		t.Errorf("always_critical: %s %s %s %q", st.State, st.StateType, st.AttemptText(), st.Output)
	}

	// A plugin over its timeout gives the configured state and says so.
	st = waitFor(t, a, "sleepy", 15*time.Second, func(s Status) bool { return s.Checked() })
	if st.State != nagios.Warning || !strings.Contains(st.Output, "timed out after 1s") {
		t.Errorf("sleepy: %s %q", st.State, st.Output)
	}
	if st.Duration > 5*time.Second {
		t.Errorf("sleepy took %v: the timeout did not stop it", st.Duration)
	}

	var checks agentapi.Checks
	if code := apiGet(t, a, "/api/v1/checks", &checks); code != 200 || checks.Host != "test1" || len(checks.Checks) != 3 {
		t.Errorf("/api/v1/checks: %d %+v", code, checks)
	}
	var snap agentapi.Snapshot
	apiGet(t, a, "/api/v1/snapshot", &snap)
	if g, ok := snap.Gauges["temperature"]; !ok || g.Value != 451 || g.Source != "check always_critical" {
		t.Errorf("snapshot temperature: %+v (missing: %v)", g, snap.Missing)
	}
	if _, ok := snap.Gauges["loadavg1"]; !ok {
		t.Errorf("snapshot has no loadavg1: %+v", snap)
	}
}

func TestAgentStateSurvivesRestart(t *testing.T) {
	dataDir := t.TempDir()
	cfg := agentConfig(t, dataDir)
	a, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	first := waitFor(t, a, "always_critical", 20*time.Second, func(s Status) bool { return s.StateType == agentapi.Hard })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	b := startAgent(t, agentConfig(t, dataDir))
	st, ok := b.store.Get("always_critical")
	if !ok || st.StateType != agentapi.Hard || st.Attempt != 3 || !st.LastHardStateChange.Equal(first.LastHardStateChange) {
		t.Errorf("after restart: %+v, want hard 3/3 since %v", st, first.LastHardStateChange)
	}
}

func TestAgentAPINeedsCredential(t *testing.T) {
	a := startAgent(t, agentConfig(t, t.TempDir()))
	base := "http://" + a.HTTPAddr().String()
	for path, want := range map[string]int{"/healthz": 200, "/api/v1/checks": 401, "/api/v1/snapshot": 401, "/metrics": 401, "/api/v1/checks/check_load": 401} {
		req, _ := http.NewRequest("GET", base+path, nil)
		if path == "/metrics" {
			req.Header.Set("Authorization", "Bearer wrong")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s without a credential: %d, want %d", path, resp.StatusCode, want)
		}
	}
	if code := apiGet(t, a, "/api/v1/checks/nope", nil); code != 404 {
		t.Errorf("unknown check: %d", code)
	}
}

// agentNRPE runs Debian's check_nrpe against the agent.
func agentNRPE(t *testing.T, a *Agent, args ...string) (int, string) {
	t.Helper()
	host, port, _ := strings.Cut(a.NRPEAddr().String(), ":")
	return runCheckNRPE(t, append([]string{"-H", host, "-p", port}, args...)...)
}

func TestAgentAnswersCheckNRPE(t *testing.T) {
	a := startAgent(t, agentConfig(t, t.TempDir()))
	code, out := agentNRPE(t, a, "-c", "check_load")
	if code != 0 || !strings.HasPrefix(out, "LOAD OK - total load average: ") || !strings.Contains(out, "|load1=") {
		t.Errorf("check_load over NRPE: %d %q", code, out)
	}
	code, out = agentNRPE(t, a, "-c", "always_critical")
	if code != 2 || out != "ALWAYS CRITICAL - disk on fire|temp=451;100;200;0\n" {
		t.Errorf("always_critical over NRPE: %d %q", code, out)
	}
	code, out = agentNRPE(t, a, "-c", "nope")
	if code != 3 || !strings.Contains(out, "NRPE: Command 'nope' not defined") {
		t.Errorf("undefined command: %d %q", code, out)
	}
	// The query counts as a check run, as in Nagios: the status moved.
	if st, _ := a.store.Get("always_critical"); !st.Checked() {
		t.Error("the NRPE query left no status")
	}
}

// TestAgentSubmitsPassiveResults: every result goes to the Nagios command
// file as it comes (the spool and the real Nagios are tested in passive_test.go).
func TestAgentSubmitsPassiveResults(t *testing.T) {
	dataDir := t.TempDir()
	fifo := filepath.Join(t.TempDir(), "nagios.cmd")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// A reader holds the pipe open, as Nagios does.
	r, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cfg := agentConfig(t, dataDir)
	cfg.Passive.CommandFile = fifo
	startAgent(t, cfg)
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	want := "PROCESS_SERVICE_CHECK_RESULT;test1;always_critical;2;ALWAYS CRITICAL - disk on fire|temp=451;100;200;0"
	deadline := time.After(20 * time.Second)
	for {
		select {
		case line := <-lines:
			if _, rest, ok := strings.Cut(line, "] "); ok && rest == want {
				return
			}
		case <-deadline:
			t.Fatalf("no %q in the command file", want)
		}
	}
}
