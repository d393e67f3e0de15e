package checks

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/immune-ops/immune/nagios"
)

// Version is printed by every check's -V.
var Version = "0.1.0"

// UsageError is a bad command line: the check cannot run, and the state is UNKNOWN.
type UsageError struct {
	Check string
	Err   error
	Usage string
}

func (e *UsageError) Error() string { return e.Check + ": " + e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// HelpError is returned for -h and -V: the text is printed and the plugin
// exits UNKNOWN, as the plugin guidelines ask.
type HelpError struct{ Text string }

func (e *HelpError) Error() string { return e.Text }

// flagSet parses options the way monitoring-plugins' getopt_long does:
// "-w 10", "-w10", "--warning=10" and "--warning 10" all work, and options
// may follow positional arguments. pflag does this for us.
type flagSet struct {
	*pflag.FlagSet
	name, usage, about string
}

// newFlags starts the options of a check. usage is its synopsis without the
// program name; about is one paragraph for -h.
func newFlags(name, usage, about string) *flagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(discard{})
	fs.SortFlags = false
	fs.SetInterspersed(true)
	f := &flagSet{FlagSet: fs, name: name, usage: usage, about: about}
	fs.BoolP("help", "h", false, "Print detailed help screen")
	fs.BoolP("version", "V", false, "Print version information")
	return f
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// parse reads args, then checks run the validation of their own.
func (f *flagSet) parse(args []string) error {
	if err := f.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return &HelpError{Text: f.help()}
		}
		return f.fail(err)
	}
	if help, _ := f.GetBool("help"); help {
		return &HelpError{Text: f.help()}
	}
	if v, _ := f.GetBool("version"); v {
		return &HelpError{Text: fmt.Sprintf("%s v%s (immune)\n", f.name, Version)}
	}
	return nil
}

// parseNoArgs is parse for a check that takes options only: a stray
// argument is a usage error rather than silently ignored.
func (f *flagSet) parseNoArgs(args []string) error {
	if err := f.parse(args); err != nil {
		return err
	}
	if f.NArg() > 0 {
		return f.failf("unexpected argument %q", f.Arg(0))
	}
	return nil
}

// fail wraps a validation error of this check's arguments.
func (f *flagSet) fail(err error) error {
	return &UsageError{Check: f.name, Err: err, Usage: "Usage:\n" + f.name + " " + f.usage}
}

// failf is fail with a formatted message.
func (f *flagSet) failf(format string, args ...any) error {
	return f.fail(fmt.Errorf(format, args...))
}

func (f *flagSet) help() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s v%s (immune)\n\n", f.name, Version)
	if f.about != "" {
		b.WriteString(f.about)
		b.WriteString("\n\n")
	}
	fmt.Fprintf(&b, "Usage:\n%s %s\n\nOptions:\n", f.name, f.usage)
	b.WriteString(f.FlagUsages())
	return b.String()
}

// thresholds reads the -w and -c ranges, naming the flag in any error.
func (f *flagSet) thresholds(warn, crit string) (nagios.Thresholds, error) {
	t, err := nagios.ParseThresholds(warn, crit)
	if err != nil {
		return t, f.fail(err)
	}
	return t, nil
}

// maxTimeout bounds -t: a check that may run for more than a day is a
// mistake, and larger values would overflow a time.Duration.
const maxTimeout = 24 * time.Hour

// timeoutFlag is the -t option: seconds, optionally with the state a timeout
// gives ("10" or "10:UNKNOWN"), as monitoring-plugins accepts it.
type timeoutFlag struct {
	d     time.Duration
	state nagios.State
}

func (t *timeoutFlag) String() string {
	return strconv.FormatFloat(t.d.Seconds(), 'f', -1, 64) + ":" + t.state.String()
}
func (t *timeoutFlag) Type() string { return "seconds" }
func (t *timeoutFlag) Set(s string) error {
	secs, state, hasState := strings.Cut(s, ":")
	n, err := strconv.ParseFloat(secs, 64)
	if err != nil || n <= 0 {
		return fmt.Errorf("timeout %q is not a positive number of seconds", s)
	}
	if n > maxTimeout.Seconds() {
		return fmt.Errorf("timeout %q is more than a day", s)
	}
	t.d = time.Duration(n * float64(time.Second))
	if hasState {
		st, err := nagios.ParseState(state)
		if err != nil {
			return fmt.Errorf("timeout %q: %w", s, err)
		}
		t.state = st
	}
	return nil
}

// timeout registers -t/--timeout with a default number of seconds and the
// state a timeout gives unless the option names another.
func (f *flagSet) timeout(seconds int, state nagios.State) *timeoutFlag {
	t := &timeoutFlag{d: time.Duration(seconds) * time.Second, state: state}
	f.VarP(t, "timeout", "t", "Seconds before the check times out; SECONDS:STATE also sets the state a timeout gives")
	return t
}

// parseBuild parses args with f, then makes the check with build, which
// reads what the flags were given: the second half of a constructor whose
// flags are declared into a struct of their own.
func parseBuild[C Check](f *flagSet, args []string, build func(*flagSet) (C, error)) (Check, error) {
	if err := f.parse(args); err != nil {
		return nil, err
	}
	c, err := build(f)
	if err != nil {
		// Not c: a nil pointer in a Check is not a nil Check.
		return nil, err
	}
	return c, nil
}
