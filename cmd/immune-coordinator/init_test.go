package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/immune-ops/immune/conf"
)

// TestInit: coordinator init and agent init (through --tokens-from) make
// configs that pass --check-config, tokens that only their owner reads,
// and keep files that exist unless --force.
func TestInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etc")
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"init", "--host", "web1=127.0.0.1:5667/www", "--host", "db1=127.0.0.2:5667/db", dir}, &stdout, &stderr); code != 0 {
		t.Fatalf("init: exit %d: %s", code, stderr.String())
	}
	f, err := conf.LoadFleet(filepath.Join(dir, "fleet.yaml"))
	if err != nil {
		t.Fatalf("the config init wrote: %v", err)
	}
	if len(f.Hosts) != 2 || f.Hosts[1].HostType != "db" {
		t.Errorf("hosts: %+v", f.Hosts)
	}
	tokens := map[string]string{}
	for _, name := range []string{"operator.token", "deploy.token", "agent.token"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm()&0o077 != 0 && st.Mode().Perm() != 0o640 {
			t.Errorf("%s: mode %v: others may read it", name, st.Mode().Perm())
		}
		b, _ := os.ReadFile(filepath.Join(dir, name))
		tokens[name] = strings.TrimSpace(string(b))
		if len(tokens[name]) != 64 {
			t.Errorf("%s: %q is not a fresh 32-byte token", name, tokens[name])
		}
	}
	if tokens["operator.token"] == tokens["deploy.token"] || tokens["deploy.token"] == tokens["agent.token"] {
		t.Error("two tokens are the same")
	}
	// Again: nothing is overwritten.
	stdout.Reset()
	if code := run(context.Background(), []string{"init", dir}, &stdout, &stderr); code != 0 {
		t.Fatalf("second init: exit %d: %s", code, stderr.String())
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "deploy.token")); strings.TrimSpace(string(b)) != tokens["deploy.token"] {
		t.Error("a second init replaced the deploy token")
	}
	if !strings.Contains(stdout.String(), "kept") {
		t.Errorf("second init does not say it kept the files: %s", stdout.String())
	}
}
