package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

// TestCheckConfig: --check-config validates built-in checks' names and
// arguments with the checks themselves, which conf's own tests stand in for.
func TestCheckConfig(t *testing.T) {
	golden, err := os.ReadFile("../../conf/testdata/bad/bad_args.golden")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		file, stdout, stderr string
		code                 int
	}{
		{file: "../../conf/agent.yaml", stdout: "../../conf/agent.yaml: ok\n"},
		{file: "../../conf/testdata/bad/bad_args.yaml", code: 1,
			stderr: strings.ReplaceAll(string(golden), "testdata/", "../../conf/testdata/")},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := runAgent(context.Background(), []string{"--check-config", tt.file}, &stdout, &stderr)
		if code != tt.code || stdout.String() != tt.stdout || stderr.String() != tt.stderr {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want %d, %q, %q", tt.file, code, stdout.String(), stderr.String(), tt.code, tt.stdout, tt.stderr)
		}
	}
}

// TestInit: agent init writes a config that passes the check, a fresh API
// token, and with --tokens-from the coordinator's deploy token, 0600.
func TestInit(t *testing.T) {
	coord := t.TempDir()
	os.WriteFile(coord+"/agent.token", []byte("shared-reader\n"), 0o600)
	os.WriteFile(coord+"/deploy.token", []byte("deployer\n"), 0o600)
	dir := t.TempDir() + "/etc"
	var stdout, stderr bytes.Buffer
	if code := runAgent(context.Background(), []string{"init", "--host-type", "chat", "--deploy-root", t.TempDir(), "--tokens-from", coord, dir}, &stdout, &stderr); code != 0 {
		t.Fatalf("init: exit %d: %s", code, stderr.String())
	}
	cfg, err := loader.Load(dir + "/agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HostType != "chat" || cfg.Deploy == nil || len(cfg.Checks) == 0 {
		t.Errorf("config: %+v", cfg)
	}
	for name, want := range map[string]string{"agent.token": "shared-reader\n", "deploy.token": "deployer\n"} {
		b, _ := os.ReadFile(dir + "/" + name)
		st, _ := os.Stat(dir + "/" + name)
		if string(b) != want || st.Mode().Perm()&0o007 != 0 {
			t.Errorf("%s: %q, mode %v", name, b, st.Mode().Perm())
		}
	}
	// Without the coordinator's tokens, deploys stay off and the API
	// token is fresh.
	dir2 := t.TempDir() + "/etc"
	if code := runAgent(context.Background(), []string{"init", dir2}, &stdout, &stderr); code != 0 {
		t.Fatalf("init: exit %d: %s", code, stderr.String())
	}
	if cfg, err := loader.Load(dir2 + "/agent.yaml"); err != nil || cfg.Deploy != nil {
		t.Errorf("config without deploys: %+v, %v", cfg, err)
	}
	if code := runAgent(context.Background(), []string{"init", "--deploy-root", "/srv/app", dir2}, &stdout, &stderr); code != 2 {
		t.Errorf("--deploy-root without --tokens-from: exit %d, want 2", code)
	}
}
