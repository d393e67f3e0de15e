package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/immune-ops/immune/cmd/internal/daemontest"
)

func TestMain(m *testing.M) { daemontest.Main(m, main) }

// agentConfig is a config with the checks named, an API on a free port
// and the token given.
func agentConfig(dataDir, token string, checks ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "host_type: www\ndata_dir: %s\nhttp:\n  listen: 127.0.0.1:0\n  token_file: %s\nchecks:\n", dataDir, token)
	for _, c := range checks {
		fmt.Fprintf(&b, "  - {name: %s, builtin: check_load, args: [-w, '90,90,90', -c, '99,99,99'], interval: 1s}\n", c)
	}
	fmt.Fprintf(&b, "gauges:\n  - {name: %s_load, check: %s}\n", checks[len(checks)-1], checks[len(checks)-1])
	return b.String()
}

// TestSignals: SIGHUP refuses a broken config and keeps the old one,
// SIGHUP with a good one adds a check without a restart, SIGUSR1 reopens
// the log file logrotate moved, SIGTERM stops the agent with exit 0.
func TestSignals(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "api.token")
	os.WriteFile(token, []byte("reader-token\n"), 0o600)
	config := filepath.Join(dir, "agent.yaml")
	data := filepath.Join(dir, "data")
	os.WriteFile(config, []byte(agentConfig(data, token, "first")), 0o644)
	log := filepath.Join(dir, "agent.log")
	p := daemontest.Start(t, log, "--config", config, "--log-format", "json", "--log-file", log)

	running := p.WaitLog("agent running", 0, 20*time.Second)
	api := "http://" + running["http"].(string)
	waitCheck(t, api, "first")

	// A config with mistakes is refused whole, with an ERROR naming them.
	os.WriteFile(config, []byte(agentConfig(data, token, "first", "second")+"max_concurent: 4\nnrpe:\n  listen: 127.0.0.1:99999\n"), 0o644)
	p.Signal(syscall.SIGHUP)
	refused := p.WaitLog("SIGHUP: config refused", 0, 10*time.Second)
	if refused.Level() != "ERROR" || !strings.Contains(fmt.Sprint(refused["errors"]), `did you mean "max_concurrent"`) ||
		!strings.Contains(fmt.Sprint(refused["errors"]), "99999") {
		t.Errorf("refusal: %v", refused)
	}
	time.Sleep(1500 * time.Millisecond)
	if names := checkNames(t, api); names["second"] {
		t.Errorf("a refused config's check runs: %v", names)
	}

	// A good one is in force at once; a setting bound to the start is named.
	os.WriteFile(config, []byte(agentConfig(filepath.Join(dir, "elsewhere"), token, "first", "second")), 0o644)
	p.Signal(syscall.SIGHUP)
	p.WaitLog("SIGHUP: config reloaded", 0, 10*time.Second)
	if w := p.WaitLog("SIGHUP: these settings changed", 0, 5*time.Second); w.Level() != "WARN" || w["settings"] != "data_dir" {
		t.Errorf("restart warning: %v", w)
	}
	waitCheck(t, api, "second")
	var snap struct{ Gauges, Missing map[string]any }
	getJSON(t, api+"/api/v1/snapshot", &snap)
	if _, ok := snap.Gauges["second_load"]; !ok {
		if _, ok := snap.Missing["second_load"]; !ok {
			t.Errorf("the reloaded gauge second_load is not in the snapshot: %+v", snap)
		}
	}

	// logrotate moves the file, SIGUSR1 starts a new one.
	if err := os.Rename(log, log+".1"); err != nil {
		t.Fatal(err)
	}
	p.Signal(syscall.SIGUSR1)
	p.WaitLog("log file reopened", 0, 10*time.Second)

	p.Signal(syscall.SIGTERM)
	if code := p.Wait(30 * time.Second); code != 0 {
		t.Errorf("SIGTERM: exit %d: %s", code, p.Stderr.String())
	}
	p.WaitLog("stopped", 0, time.Second)
}

func waitCheck(t *testing.T, api, name string) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if checkNames(t, api)[name] {
			return
		}
	}
	t.Fatalf("check %s never ran", name)
}

func checkNames(t *testing.T, api string) map[string]bool {
	t.Helper()
	var checks struct{ Checks []struct{ Name string } }
	getJSON(t, api+"/api/v1/checks", &checks)
	names := map[string]bool{}
	for _, c := range checks.Checks {
		names[c.Name] = true
	}
	return names
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer reader-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, b)
	}
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}
