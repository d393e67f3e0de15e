package nagios

import (
	"strings"
	"testing"
)

// Seeds also live in testdata/fuzz/<FuzzName>/, where `go test -fuzz` keeps
// what it finds.

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"10", "10:", "~:10", "10:20", "@10:20", "@~:", ":", "1e308:", "-0:0", "@", "10:5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		r, err := ParseRange(text)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "invalid range ") {
				t.Fatalf("error %q does not say what was invalid", err)
			}
			return
		}
		if r.Start > r.End {
			t.Fatalf("%q parsed to start %v > end %v", text, r.Start, r.End)
		}
		back, err := ParseRange(r.String())
		if err != nil || back != r {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", text, r, r.String(), back, err)
		}
	})
}

func FuzzParsePerf(f *testing.F) {
	for _, s := range []string{
		"load1=0.280;5.000;10.000;0; load5=0.160;4.000;8.000;0;",
		"'C:\\ used'=12GB;40;45;0;50 'it''s'=1",
		"time=0.000823s;;;0.000000;10.000000 size=350B;;;0",
		"a=U b=1e3B;~:5;@1:2;-1;1",
		"'unterminated=1", "=1", "a==1", "a=1;2;3;4;5;6",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		items, _ := ParsePerf(text)
		for _, p := range items {
			if p.Label == "" {
				t.Fatalf("%q gave an empty label", text)
			}
			back, err := ParsePerf(p.String())
			if err != nil || len(back) != 1 || back[0].String() != p.String() {
				t.Fatalf("%q: item %q reads back as %v, %v", text, p.String(), back, err)
			}
		}
	})
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"OK - fine|a=1\nlong\nmore|b=2\nc=3\n",
		"CRITICAL\r\n\r\n|",
		"|||",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, out string) {
		r, _ := Parse(out)
		if strings.ContainsAny(r.Output, "\n|") {
			t.Fatalf("status line %q holds a newline or a pipe", r.Output)
		}
		if strings.Contains(r.Long, "|") {
			t.Fatalf("long output %q holds a pipe", r.Long)
		}
		// Whatever we read, we write so that it reads back the same.
		back, _ := Parse(r.String())
		if back.String() != r.String() {
			t.Fatalf("%q -> %q -> %q", out, r.String(), back.String())
		}
	})
}
