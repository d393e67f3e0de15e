package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestManPages: immune-push(1) is as the golden file says, every page
// lists exactly the flags its command parses, and groff reads every page
// without a warning.
func TestManPages(t *testing.T) {
	pages := manPages("immune 1.2.3", "2026-03-02")
	byName := map[string]*bytes.Buffer{}
	for _, p := range pages {
		var b bytes.Buffer
		if err := p.Write(&b); err != nil {
			t.Fatal(err)
		}
		byName[p.FileName()] = &b
	}
	for _, want := range []string{"immune.1", "immune-agent.8", "immune-coordinator.8", "immune-push.1", "immune-pushes.1", "immune-status.1", "immune-check.1"} {
		if byName[want] == nil {
			t.Errorf("no page %s", want)
		}
	}
	if byName["immune-man.1"] != nil {
		t.Errorf("the hidden man command has a page")
	}

	golden := filepath.Join("testdata", "immune-push.1.golden")
	if *update {
		os.MkdirAll("testdata", 0o755)
		os.WriteFile(golden, byName["immune-push.1"].Bytes(), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got := byName["immune-push.1"].String(); got != string(want) {
		t.Errorf("immune-push.1 differs from %s (go test -update rewrites it):\n%s", golden, got)
	}

	// Every flag a command parses is on its page.
	for n, c := range commands {
		if c.hidden || c.flags == nil {
			continue
		}
		name := "immune-" + n + ".1"
		if c.daemon != "" {
			name = c.daemon + ".8"
		}
		page := byName[name].String()
		flagSet("immune "+n, c.flags).VisitAll(func(f *flag.Flag) {
			if !strings.Contains(page, `\fB\-\-`+strings.ReplaceAll(f.Name, "-", `\-`)+`\fR`) {
				t.Errorf("%s lacks --%s", name, f.Name)
			}
		})
	}

	groff, err := exec.LookPath("groff")
	if err != nil {
		t.Skip("groff is not installed (apt-get install groff): the pages are not checked with it")
	}
	for name, b := range byName {
		cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z")
		cmd.Stdin = bytes.NewReader(b.Bytes())
		out, err := cmd.CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("groff -man -ww %s: %v:\n%s", name, err, out)
		}
	}
}

// TestManCommand: immune man DIR writes the pages, and says which.
func TestManCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "man")
	var out, errs bytes.Buffer
	if code := runMan(context.Background(), []string{dir}, &out, &errs); code != 0 {
		t.Fatalf("immune man: exit %d: %s", code, errs.String())
	}
	for _, name := range []string{"immune.1", "immune-agent.8", "immune-push.1"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil || !strings.Contains(out.String(), filepath.Join(dir, name)) {
			t.Errorf("%s: %v; output %q", name, err, out.String())
		}
	}
	if code := runMan(context.Background(), nil, &out, &errs); code != 2 {
		t.Errorf("immune man without DIR: exit %d, want 2", code)
	}
}
