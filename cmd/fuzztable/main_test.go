package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

// TestParseOutput reads go test -fuzz's output as it prints it: the last
// progress line counts, and a crash names the input it wrote.
func TestParseOutput(t *testing.T) {
	for _, tt := range []struct {
		file    string
		execs   int64
		elapsed time.Duration
		crashed bool
		input   string
	}{
		{"testdata/pass.txt", 613, 61 * time.Second, false, ""},
		{"testdata/crash.txt", 55936, 14 * time.Second, true, "testdata/fuzz/FuzzParseAgent/9f73b4d211d3cd95"},
	} {
		t.Run(tt.file, func(t *testing.T) {
			f, err := os.Open(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			r := parseOutput(f)
			if r.execs != tt.execs || r.elapsed != tt.elapsed || r.crashed != tt.crashed || r.input != tt.input {
				t.Errorf("parseOutput = execs %d, elapsed %v, crashed %v, input %q; want %d, %v, %v, %q",
					r.execs, r.elapsed, r.crashed, r.input, tt.execs, tt.elapsed, tt.crashed, tt.input)
			}
		})
	}
}

// TestPrintTable: one row per target, the crash column naming the input.
func TestPrintTable(t *testing.T) {
	var b bytes.Buffer
	printTable(&b, []result{
		{target: target{pkg: "example/a", name: "FuzzA"}, execs: 1000, elapsed: 10 * time.Second},
		{target: target{pkg: "example/b", name: "FuzzB"}, execs: 50, elapsed: 2 * time.Second, crashed: true, input: "b/testdata/fuzz/FuzzB/1"},
	})
	want := []string{
		"package    target  execs  execs/s  crashes",
		"example/a  FuzzA   1000   100      0",
		"example/b  FuzzB   50     25       1 b/testdata/fuzz/FuzzB/1",
	}
	got := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	for i := range got {
		got[i] = strings.TrimRight(got[i], " ")
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("table:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
