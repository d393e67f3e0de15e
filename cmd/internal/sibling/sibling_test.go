package sibling

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPath(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The test binary's own directory holds only it; one beside it is
	// made there, and a directory of another name must not count.
	beside := filepath.Join(filepath.Dir(self), "immune-sibling-test")
	if err := os.WriteFile(beside, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(beside) })
	dirName := filepath.Join(filepath.Dir(self), "immune-sibling-dir")
	if err := os.Mkdir(dirName, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(dirName) })
	onPath := t.TempDir()
	if err := os.WriteFile(filepath.Join(onPath, "immune-on-path"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", onPath)

	for _, tc := range []struct {
		name, want, err string
	}{
		{name: "immune-sibling-test", want: beside},
		{name: "immune-on-path", want: filepath.Join(onPath, "immune-on-path")},
		{name: "immune-sibling-dir", err: "immune-sibling-dir is not beside " + filepath.Base(self) + " nor on PATH (make build puts it in bin/)"},
		{name: "immune-nowhere", err: "immune-nowhere is not beside"},
	} {
		got, err := Path(tc.name)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Path(%q) = %q, %v; want error %q", tc.name, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Path(%q) = %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}
