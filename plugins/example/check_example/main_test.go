package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/immune-ops/immune/nagios"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a", "b", ".hidden"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	const usage = "\nUsage:\ncheck_example -d DIRECTORY [-w RANGE] [-c RANGE]\n"
	tests := []struct {
		name  string
		args  []string
		state nagios.State
		want  string
	}{
		{"no thresholds", []string{"-d", dir}, nagios.OK, "FILES OK - 3 files in " + dir + "|files=3;;;0\n"},
		{"ok", []string{"-d", dir, "-w", "5", "-c", "10"}, nagios.OK, "FILES OK - 3 files in " + dir + "|files=3;5;10;0\n"},
		{"warning", []string{"--directory=" + dir, "-w2", "-c", "10"}, nagios.Warning, "FILES WARNING - 3 files in " + dir + "|files=3;2;10;0\n"},
		{"critical", []string{"-d", dir, "-w", "2", "-c", "@3:5"}, nagios.Critical, "FILES CRITICAL - 3 files in " + dir + "|files=3;2;@3:5;0\n"},
		{"too few", []string{"-d", dir, "-c", "5:"}, nagios.Critical, "FILES CRITICAL - 3 files in " + dir + "|files=3;;5:;0\n"},
		{"help", []string{"-h"}, nagios.Unknown, "check_example counts the regular files in a directory" + usage + "\nOptions:\n" +
			"  -d, --directory string   directory whose files are counted\n" +
			"  -w, --warning string     WARNING when the count is outside this range\n" +
			"  -c, --critical string    CRITICAL when the count is outside this range\n"},
		{"no directory flag", nil, nagios.Unknown, "FILES UNKNOWN - check_example: -d/--directory is required" + usage},
		{"bad warning", []string{"-d", dir, "-w", "x"}, nagios.Unknown, `FILES UNKNOWN - check_example: invalid range "x" for -w: end "x" is not a number` + usage},
		{"unknown flag", []string{"-d", dir, "-z"}, nagios.Unknown, "FILES UNKNOWN - check_example: unknown shorthand flag: 'z' in -z" + usage},
		{"stray argument", []string{"-d", dir, "extra"}, nagios.Unknown, `FILES UNKNOWN - check_example: unexpected argument "extra"` + usage},
		{"missing directory", []string{"-d", filepath.Join(dir, "nope")}, nagios.Unknown, "FILES UNKNOWN - count files: open " + filepath.Join(dir, "nope") + ": no such file or directory\n"},
		{"not a directory", []string{"-d", filepath.Join(dir, "a")}, nagios.Unknown, "FILES UNKNOWN - count files in " + filepath.Join(dir, "a") + ": readdirent " + filepath.Join(dir, "a") + ": not a directory\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(context.Background(), tt.args)
			if r.State != tt.state || r.String() != tt.want {
				t.Errorf("got %v\n%s\nwant %v\n%s", r.State, r, tt.state, tt.want)
			}
		})
	}
}

func TestRunHonoursDeadline(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	r := run(ctx, []string{"-d", dir})
	if want := "FILES UNKNOWN - count files in " + dir + ": context canceled"; r.State != nagios.Unknown || r.Output != want {
		t.Errorf("got %v %q, want %q", r.State, r.Output, want)
	}
}
