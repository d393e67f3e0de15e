package main

import (
	"crypto/tls"
	"crypto/x509"
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
	"github.com/immune-ops/immune/fixtures/testpki"
)

func TestMain(m *testing.M) { daemontest.Main(m, main) }

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

// TestTLSListener: with tls set, the coordinator answers https with its
// certificate, which a client holding the CA verifies, and plain http
// gets nothing useful.
func TestTLSListener(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	os.WriteFile(token, []byte("secret\n"), 0o600)
	ca := testpki.NewCA(t, testpki.Options{})
	cert := ca.Issue(t, testpki.Options{Hosts: []string{"127.0.0.1"}})
	cert.WriteFiles(t, filepath.Join(dir, "c.crt"), filepath.Join(dir, "c.key"))
	config := filepath.Join(dir, "fleet.yaml")
	os.WriteFile(config, []byte(fmt.Sprintf("listen: 127.0.0.1:0\ndata_dir: %s\noperator_token_file: %s\ndeploy_token_file: %s\nagent_token_file: %s\n"+
		"tls: {cert_file: %s, key_file: %s}\nhosts: [{name: a, address: '127.0.0.1:9', host_type: www}]\n",
		filepath.Join(dir, "data"), token, token, token, filepath.Join(dir, "c.crt"), filepath.Join(dir, "c.key"))), 0o644)
	log := filepath.Join(dir, "coordinator.log")
	p := daemontest.Start(t, log, "--config", config, "--log-format", "json", "--log-file", log)
	base := p.WaitLog("coordinator running", 0, 20*time.Second)["listen"].(string)
	if !strings.HasPrefix(base, "https://") {
		t.Fatalf("listening at %s", base)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert.Cert)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get(base + "/healthz")
	if err != nil {
		t.Fatalf("https with the CA: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("https: %s", resp.Status)
	}
	if resp, err := http.Get(base + "/healthz"); err == nil {
		resp.Body.Close()
		t.Error("a client without the CA trusted the coordinator")
	}
	if resp, err := http.Get("http://" + strings.TrimPrefix(base, "https://") + "/healthz"); err == nil && resp.StatusCode == 200 {
		t.Error("plain http answered")
	}
}
