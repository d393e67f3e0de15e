package nagios

import (
	"math"
	"testing"
)

var inf = math.Inf(1)

func TestParseRange(t *testing.T) {
	tests := []struct {
		text string
		want Range
	}{
		{"10", Range{Start: 0, End: 10}},
		{"10:", Range{Start: 10, End: inf}},
		{"~:10", Range{Start: -inf, End: 10}},
		{"10:20", Range{Start: 10, End: 20}},
		{"@10:20", Range{Start: 10, End: 20, Inside: true}},
		{"@10", Range{Start: 0, End: 10, Inside: true}},
		{":10", Range{Start: 0, End: 10}},
		{"~:", Range{Start: -inf, End: inf}},
		{"-5:-1", Range{Start: -5, End: -1}},
		{"0.5:1.5", Range{Start: 0.5, End: 1.5}},
		{"1e3", Range{Start: 0, End: 1000}},
		{" 5 ", Range{Start: 0, End: 5}},
		{"10:10", Range{Start: 10, End: 10}},
	}
	for _, tt := range tests {
		got, err := ParseRange(tt.text)
		if err != nil || got != tt.want {
			t.Errorf("ParseRange(%q) = %+v, %v; want %+v", tt.text, got, err, tt.want)
		}
	}
}

func TestParseRangeErrors(t *testing.T) {
	tests := []struct{ flag, text, want string }{
		{"-w", "10:5", `invalid range "10:5" for -w: start > end`},
		{"-c", "", `invalid range "" for -c: empty`},
		{"-c", "@", `invalid range "@" for -c: empty`},
		{"-w", "abc", `invalid range "abc" for -w: end "abc" is not a number`},
		{"-w", "x:10", `invalid range "x:10" for -w: start "x" is not a number`},
		{"-w", "1:2:3", `invalid range "1:2:3" for -w: end "2:3" is not a number`},
		{"-w", "NaN", `invalid range "NaN" for -w: end "NaN" is not a number`},
		{"-w", "inf", `invalid range "inf" for -w: end "inf" is not a number`},
		{"", "5:~", `invalid range "5:~": end "~" is not a number`},
	}
	for _, tt := range tests {
		_, err := ParseRangeFlag(tt.flag, tt.text)
		if err == nil || err.Error() != tt.want {
			t.Errorf("ParseRangeFlag(%q, %q) error = %v; want %s", tt.flag, tt.text, err, tt.want)
		}
	}
}

func TestRangeAlerts(t *testing.T) {
	tests := []struct {
		text   string
		value  float64
		alerts bool
	}{
		{"10", -1, true}, {"10", 0, false}, {"10", 10, false}, {"10", 10.01, true},
		{"10:", 9.99, true}, {"10:", 10, false}, {"10:", 1e9, false},
		{"~:10", -1e9, false}, {"~:10", 10, false}, {"~:10", 11, true},
		{"10:20", 9, true}, {"10:20", 10, false}, {"10:20", 20, false}, {"10:20", 21, true},
		{"@10:20", 9, false}, {"@10:20", 10, true}, {"@10:20", 20, true}, {"@10:20", 21, false},
		{"~:", -1e300, false},
		{"@~:", 0, true},
	}
	for _, tt := range tests {
		r, err := ParseRange(tt.text)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Alerts(tt.value); got != tt.alerts {
			t.Errorf("%q.Alerts(%v) = %v; want %v", tt.text, tt.value, got, tt.alerts)
		}
	}
}

func TestRangeStringRoundTrip(t *testing.T) {
	tests := []struct{ in, want string }{
		{"10", "10"}, {"0:10", "10"}, {"10:", "10:"}, {"~:10", "~:10"}, {"10:20", "10:20"},
		{"@10:20", "@10:20"}, {"@10", "@0:10"}, {"~:", "~:"}, {"0.5", "0.5"}, {"-1:1", "-1:1"},
	}
	for _, tt := range tests {
		r, err := ParseRange(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.String(); got != tt.want {
			t.Errorf("ParseRange(%q).String() = %q; want %q", tt.in, got, tt.want)
		}
		back, err := ParseRange(r.String())
		if err != nil || back != r {
			t.Errorf("%q does not read back: %+v, %v", r.String(), back, err)
		}
	}
	if got := (Range{End: 5}).Format(3); got != "5.000" {
		t.Errorf("Format(3) = %q", got)
	}
}

func TestThresholds(t *testing.T) {
	tests := []struct {
		warn, crit string
		value      float64
		want       State
	}{
		{"10", "20", 5, OK},
		{"10", "20", 15, Warning},
		{"10", "20", 25, Critical},
		// Critical is tested before warning, even when the ranges overlap oddly.
		{"20", "10", 15, Critical},
		{"", "", 1e9, OK},
		{"5", "", 6, Warning},
		{"", "5", 6, Critical},
		{"10:", "5:", 7, Warning},
		{"10:", "5:", 3, Critical},
		{"@0:0", "", 0, Warning},
	}
	for _, tt := range tests {
		th, err := ParseThresholds(tt.warn, tt.crit)
		if err != nil {
			t.Fatal(err)
		}
		if got := th.State(tt.value); got != tt.want {
			t.Errorf("-w %q -c %q at %v = %s; want %s", tt.warn, tt.crit, tt.value, got, tt.want)
		}
	}
	if _, err := ParseThresholds("1", "5:1"); err == nil || err.Error() != `invalid range "5:1" for -c: start > end` {
		t.Errorf("bad -c: %v", err)
	}
}
