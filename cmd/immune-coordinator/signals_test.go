package main

import (
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

func TestMain(m *testing.M) {
	if daemontest.IsMain() {
		main()
	}
	os.Exit(m.Run())
}

// TestSignals: SIGHUP refuses a broken fleet config and keeps the old
// one, puts a good one's limits in force without a restart, SIGUSR1
// reopens the log, SIGTERM stops the coordinator with exit 0.
func TestSignals(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	os.WriteFile(token, []byte("secret\n"), 0o600)
	fleet := func(extra string) []byte {
		return []byte(fmt.Sprintf("listen: 127.0.0.1:0\ndata_dir: %s\noperator_token_file: %s\ndeploy_token_file: %s\nagent_token_file: %s\n"+
			"hosts: [{name: a, address: '127.0.0.1:9', host_type: www}]\nlimits:\n  - {gauge: loadavg1, rise: 50%%}\n%s",
			filepath.Join(dir, "data"), token, token, token, extra))
	}
	config := filepath.Join(dir, "fleet.yaml")
	os.WriteFile(config, fleet(""), 0o644)
	log := filepath.Join(dir, "coordinator.log")
	p := daemontest.Start(t, log, "--config", config, "--log-format", "json", "--log-file", log)
	base := p.WaitLog("coordinator running", 0, 20*time.Second)["listen"].(string)

	os.WriteFile(config, fleet("  - {gauge: fatals_per_min, rise: lots}\nbreach_sample: 3\n"), 0o644)
	p.Signal(syscall.SIGHUP)
	refused := p.WaitLog("SIGHUP: config refused", 0, 10*time.Second)
	if errs := fmt.Sprint(refused["errors"]); refused.Level() != "ERROR" || !strings.Contains(errs, `"lots" is not a change`) || !strings.Contains(errs, `did you mean "breach_samples"`) {
		t.Errorf("refusal: %v", refused)
	}
	if strings.Contains(get(t, base+"/api/limits"), "fatals_per_min") {
		t.Error("a refused config's limit is in force")
	}

	os.WriteFile(config, fleet("  - {gauge: fatals_per_min, rise: 10}\n"), 0o644)
	p.Signal(syscall.SIGHUP)
	p.WaitLog("SIGHUP: config reloaded", 0, 10*time.Second)
	if !strings.Contains(get(t, base+"/api/limits"), "fatals_per_min") {
		t.Error("the reloaded limit is not in force")
	}

	os.Rename(log, log+".1")
	p.Signal(syscall.SIGUSR1)
	p.WaitLog("log file reopened", 0, 10*time.Second)

	p.Signal(syscall.SIGTERM)
	if code := p.Wait(40 * time.Second); code != 0 {
		t.Errorf("SIGTERM: exit %d: %s", code, p.Stderr.String())
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
