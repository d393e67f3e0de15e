package cli

import (
	"bytes"
	"flag"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		args []string
		code int
		done bool
		out  string
	}{
		{[]string{"--help"}, 0, true, ""},
		{[]string{"-h"}, 0, true, ""},
		{[]string{"--version"}, 0, true, "immune-test dev (commit "},
		{[]string{"--nope"}, 2, true, ""},
		{[]string{"--name", "x"}, 0, false, ""},
	} {
		fs := flag.NewFlagSet("immune-test", flag.ContinueOnError)
		var errs, out bytes.Buffer
		fs.SetOutput(&errs)
		fs.String("name", "", "a name")
		code, done := Parse(fs, tt.args, "immune-test", &out)
		if code != tt.code || done != tt.done || !strings.HasPrefix(out.String(), tt.out) {
			t.Errorf("%v: %d %v %q, want %d %v %q", tt.args, code, done, out.String(), tt.code, tt.done, tt.out)
		}
	}
}
