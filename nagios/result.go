package nagios

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Result is what one run of a check reports: its state, one status line, an
// optional long output of further lines, and performance data.
type Result struct {
	State State `json:"state"`
	// Output is the status line, without performance data.
	Output string `json:"output"`
	// Long is the long output: the lines after the status line, without performance data.
	Long string `json:"long_output,omitempty"`
	Perf []Perf `json:"perfdata,omitempty"`
}

// Resultf builds a result with a formatted status line.
func Resultf(state State, format string, args ...any) Result {
	return Result{State: state, Output: fmt.Sprintf(format, args...)}
}

// String is the text the plugin prints: the status line with perfdata after
// a '|', then the long output. A '|' inside Output or Long would be read as
// the start of perfdata, so it is written as '/'.
func (r Result) String() string {
	var b strings.Builder
	first, more, _ := strings.Cut(strings.TrimRight(r.Output, "\n"), "\n")
	b.WriteString(noPipe(first))
	if len(r.Perf) > 0 {
		b.WriteByte('|')
		b.WriteString(FormatPerf(r.Perf))
	}
	b.WriteByte('\n')
	for _, text := range []string{more, r.Long} {
		if text = strings.TrimRight(text, "\n"); text != "" {
			b.WriteString(noPipe(text))
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func noPipe(s string) string { return strings.ReplaceAll(s, "|", "/") }

// Write prints r as a plugin prints it on stdout.
func (r Result) Write(w io.Writer) error {
	_, err := io.WriteString(w, r.String())
	return err
}

// Parse reads a plugin's output: the status line, long output and the
// performance data on the first line and after a second '|' in the long
// output. The state comes from the exit code (StateFromExit), not the text,
// so it is left OK here. Perfdata items that cannot be read are left out
// and reported in the error; everything else is still returned.
func Parse(out string) (Result, error) {
	var r Result
	var perf, long []string
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 0, 4096), len(out)+1)
	inPerf := false
	for n := 0; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), " \t\r")
		switch {
		case n == 0:
			text, p, _ := strings.Cut(line, "|")
			r.Output = strings.TrimSpace(text)
			perf = append(perf, p)
		case inPerf:
			perf = append(perf, line)
		default:
			text, p, found := strings.Cut(line, "|")
			long = append(long, strings.TrimRight(text, " \t\r"))
			if found {
				perf = append(perf, p)
				inPerf = true
			}
		}
	}
	r.Long = strings.TrimRight(strings.Join(long, "\n"), "\n")
	var err error
	r.Perf, err = ParsePerf(strings.Join(perf, " "))
	return r, err
}
