package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestOneCoordinatorADataDir: a second coordinator on the same data_dir
// refuses to start, naming the holder, rather than driving the same push
// and running its revert twice.
func TestOneCoordinatorADataDir(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	os.WriteFile(token, []byte("secret\n"), 0o600)
	config := filepath.Join(dir, "fleet.yaml")
	os.WriteFile(config, []byte(fmt.Sprintf("listen: 127.0.0.1:0\ndata_dir: %s\noperator_token_file: %s\ndeploy_token_file: %s\nagent_token_file: %s\nhosts: [{name: a, address: '127.0.0.1:9', host_type: www}]\n",
		filepath.Join(dir, "data"), token, token, token)), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan int)
	var firstErr bytes.Buffer
	go func() { first <- run(ctx, []string{"--config", config}, &bytes.Buffer{}, &firstErr) }()
	lock := filepath.Join(dir, "data", "lock")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if b, _ := os.ReadFile(lock); len(b) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the first coordinator never took its lock: %s", firstErr.String())
		}
	}
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"--config", config}, &bytes.Buffer{}, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "is in use by another coordinator (pid ") {
		t.Errorf("second coordinator: exit %d: %s", code, stderr.String())
	}
	cancel()
	if code := <-first; code != 0 {
		t.Errorf("first coordinator: exit %d: %s", code, firstErr.String())
	}
}
