package nagios

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// describe renders a parsed result field by field, for golden files.
func describe(r Result, err error) string {
	var b strings.Builder
	fmt.Fprintf(&b, "output: %q\nlong: %q\n", r.Output, r.Long)
	for _, p := range r.Perf {
		fmt.Fprintf(&b, "perf: label=%q value=%v unknown=%v uom=%q warn=%s crit=%s min=%s max=%s\n",
			p.Label, p.Value, p.Unknown, p.UOM, rangeText(p.Warn), rangeText(p.Crit), floatText(p.Min), floatText(p.Max))
	}
	if err != nil {
		fmt.Fprintf(&b, "error: %v\n", err)
	}
	return b.String()
}

func rangeText(r *Range) string {
	if r == nil {
		return "-"
	}
	return r.String()
}

func floatText(f *float64) string {
	if f == nil {
		return "-"
	}
	return fmt.Sprint(*f)
}

// TestParseGolden parses real and awkward plugin outputs from
// testdata/outputs/*.txt and compares with the .golden files beside them.
func TestParseGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/outputs/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no outputs in testdata: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			in, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			got := describe(Parse(string(in)))
			golden := strings.TrimSuffix(file, ".txt") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./nagios -update to write it)", err)
			}
			if got != string(want) {
				t.Errorf("parse %s:\n got:\n%s\nwant:\n%s", file, got, want)
			}
		})
	}
}

func TestResultString(t *testing.T) {
	tests := []struct {
		name string
		r    Result
		want string
	}{
		{"status only", Result{State: OK, Output: "OK - fine"}, "OK - fine\n"},
		{"perf", Result{Output: "LOAD OK - x", Perf: []Perf{{Label: "load1", Value: 0.28, Precision: 3, Warn: &Range{End: 5}, Crit: &Range{End: 10}, Min: Float(0)}}},
			"LOAD OK - x|load1=0.280;5.000;10.000;0.000\n"},
		{"long", Result{Output: "WARNING - a", Long: "line 1\nline 2\n", Perf: []Perf{{Label: "a b", Value: 1}}},
			"WARNING - a|'a b'=1\nline 1\nline 2\n"},
		{"newline in output goes to long", Result{Output: "OK - a\nmore", Long: "long"}, "OK - a\nmore\nlong\n"},
		{"pipes cannot start perfdata", Result{Output: "OK - a|b", Long: "c|d"}, "OK - a/b\nc/d\n"},
		{"unknown value", Result{Output: "X", Perf: []Perf{{Label: "t", Unknown: true, UOM: "s"}}}, "X|t=U\n"},
		{"empty fields kept between set ones", Result{Output: "X", Perf: []Perf{{Label: "t", Value: 2, UOM: "s", Max: Float(10)}}}, "X|t=2s;;;;10\n"},
		{"quote in label", Result{Output: "X", Perf: []Perf{{Label: "it's", Value: 1}}}, "X|'it''s'=1\n"},
	}
	for _, tt := range tests {
		var b strings.Builder
		if err := tt.r.Write(&b); err != nil {
			t.Fatal(err)
		}
		if b.String() != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, b.String(), tt.want)
		}
	}
}

// TestWriteParseRoundTrip: what we write, any Nagios-side parser (ours
// included) reads back unchanged.
func TestWriteParseRoundTrip(t *testing.T) {
	r := Result{
		Output: "DISK WARNING - free space: / 100 MB (5%)",
		Long:   "/ 100 MB (5%)\n/var 900 MB (90%)",
		Perf: []Perf{
			{Label: "/", Value: 1900, UOM: "MB", Warn: &Range{End: 1800}, Crit: &Range{End: 1900}, Min: Float(0), Max: Float(2000)},
			{Label: "free space 'var'", Value: 90, UOM: "%", Warn: &Range{Start: 10, End: inf}},
			{Label: "rate", Unknown: true},
			{Label: "x", Value: -1.5e-7, Crit: &Range{Start: -inf, End: 3, Inside: true}},
		},
	}
	back, err := Parse(r.String())
	if err != nil {
		t.Fatal(err)
	}
	if back.Output != r.Output || back.Long != r.Long || FormatPerf(back.Perf) != FormatPerf(r.Perf) {
		t.Errorf("round trip:\n wrote %q\n  read %q", r.String(), back.String())
	}
}

func TestParsePerfErrorsKeepGoodItems(t *testing.T) {
	items, err := ParsePerf("a=1 b=x c=3;1:0 d=4")
	if err == nil {
		t.Fatal("no error for bad items")
	}
	var labels []string
	for _, p := range items {
		labels = append(labels, p.Label)
	}
	if strings.Join(labels, ",") != "a,d" {
		t.Errorf("kept %v; want a,d", labels)
	}
	for _, want := range []string{`perfdata "b": value "x" is not a number`, `perfdata "c": invalid range "1:0": start > end`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestResultJSONRoundTrip(t *testing.T) {
	r := Result{State: Warning, Output: "X", Long: "y", Perf: []Perf{
		{Label: "a", Value: 1.5, UOM: "s", Warn: &Range{Start: 10, End: inf}, Crit: &Range{Start: -inf, End: 3, Inside: true}, Min: Float(0)},
		{Label: "b", Unknown: true},
	}}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"state":"WARNING","output":"X","long_output":"y","perfdata":[{"label":"a","value":1.5,"uom":"s","warn":"10:","crit":"@~:3","min":0},{"label":"b","value":0,"unknown":true}]}`
	if string(b) != want {
		t.Errorf("marshal:\n got %s\nwant %s", b, want)
	}
	var back Result
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.String() != r.String() || back.State != r.State {
		t.Errorf("round trip: %q, want %q", back.String(), r.String())
	}
}
