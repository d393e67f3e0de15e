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
