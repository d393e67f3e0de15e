package checks

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/immune-ops/immune/nagios"
)

func TestParseLoadTriplet(t *testing.T) {
	tests := []struct {
		in      string
		want    [3]float64
		wantErr bool
	}{
		{"5", [3]float64{5, 5, 5}, false},
		{"5,4", [3]float64{5, 4, 4}, false},
		{"5,4,3", [3]float64{5, 4, 3}, false},
		{"0.5,1.25,2", [3]float64{0.5, 1.25, 2}, false},
		{"", [3]float64{}, true},
		{"abc", [3]float64{}, true},
		{"1,2,3,4", [3]float64{}, true},
		{"-1", [3]float64{}, true},
	}
	for _, tt := range tests {
		got, err := parseLoadTriplet(tt.in)
		if (err != nil) != tt.wantErr || (!tt.wantErr && got != tt.want) {
			t.Errorf("parseLoadTriplet(%q) = %v, %v; want %v, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// writeLoadavg makes a fixture /proc holding only loadavg.
func writeLoadavg(t *testing.T, content string) string {
	t.Helper()
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "loadavg"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestLoadFromFixture(t *testing.T) {
	ctx := WithProcRoot(context.Background(), writeLoadavg(t, "3.50 2.25 1.00 2/719 19737\n"))
	tests := []struct {
		args  []string
		state nagios.State
		want  string
	}{
		{[]string{"-w", "5,4,3", "-c", "10,8,6"}, nagios.OK,
			"LOAD OK - total load average: 3.50, 2.25, 1.00|load1=3.500;5.000;10.000;0.000 load5=2.250;4.000;8.000;0.000 load15=1.000;3.000;6.000;0.000\n"},
		{[]string{"-w", "3", "-c", "10"}, nagios.Warning,
			"LOAD WARNING - total load average: 3.50, 2.25, 1.00|load1=3.500;3.000;10.000;0.000 load5=2.250;3.000;10.000;0.000 load15=1.000;3.000;10.000;0.000\n"},
		{[]string{"-w1,1,1", "-c2,3,3"}, nagios.Critical,
			"LOAD CRITICAL - total load average: 3.50, 2.25, 1.00|load1=3.500;1.000;2.000;0.000 load5=2.250;1.000;3.000;0.000 load15=1.000;1.000;3.000;0.000\n"},
		// The threshold is exceeded only strictly above it, as in check_load.
		{[]string{"--warning=3.5", "--critical=4"}, nagios.OK,
			"LOAD OK - total load average: 3.50, 2.25, 1.00|load1=3.500;3.500;4.000;0.000 load5=2.250;3.500;4.000;0.000 load15=1.000;3.500;4.000;0.000\n"},
	}
	for _, tt := range tests {
		c, err := newLoad(tt.args)
		if err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		r := c.Run(ctx)
		if r.State != tt.state || r.String() != tt.want {
			t.Errorf("%v:\n got %s %q\nwant %s %q", tt.args, r.State, r.String(), tt.state, tt.want)
		}
	}
}

func TestLoadBadArguments(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-w", "5"},
		{"-w", "abc", "-c", "5"},
		{"-w", "10,5", "-c", "5"},
		{"-w", "1", "-c", "2", "-n", "-1"},
		{"--bogus"},
	} {
		var out strings.Builder
		if code := Main(context.Background(), "check_load", args, &out); code != 3 {
			t.Errorf("%v: exit %d, want 3 (UNKNOWN)\n%s", args, code, out.String())
		}
	}
}

func TestLoadTwin(t *testing.T) {
	for _, args := range [][]string{
		{"-w", "5,4,3", "-c", "10,8,6"},
		{"-r", "-w", "5,4,3", "-c", "10,8,6"},
		{"-w", "0,0,0", "-c", "100"},
		{"-w", "0", "-c", "0"},
		{"-w", "1,2", "-c", "3,4"},
	} {
		theirs := runTheirs(t, "check_load", args...)
		ours := runOurs(t, context.Background(), "check_load", args...)
		// The load average moves between the two readings.
		assertTwins(t, ours, theirs, tolerance{Abs: 0.3, Rel: 0.1})
	}
}
