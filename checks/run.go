package checks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sync"
	"time"

	"github.com/immune-ops/immune/nagios"
)

// graceAfterTimeout is how long Run waits past a check's deadline for it to
// report before giving up on it.
const graceAfterTimeout = time.Second

// Run runs c once under ctx and its own timeout, and turns a panic or a check
// that ignores its deadline into an UNKNOWN result, so no check can take
// its caller down or hang it.
func Run(ctx context.Context, name string, c Check) nagios.Result {
	if t, ok := c.(Timeouter); ok && t.Timeout() > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.Timeout())
		defer cancel()
	}
	done := make(chan nagios.Result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- nagios.Resultf(nagios.Unknown, "UNKNOWN - %s failed: %v", name, p)
			}
		}()
		done <- c.Run(ctx)
	}()
	select {
	case r := <-done:
		return r
	case <-ctx.Done():
	}
	select {
	case r := <-done:
		return r
	case <-time.After(graceAfterTimeout):
		return nagios.Resultf(nagios.Unknown, "UNKNOWN - %s did not stop after its deadline: %v", name, ctx.Err())
	}
}

type standaloneKey struct{}

// Standalone reports whether the check runs in a process started to run it
// once (Main), rather than inside a long-lived one such as the agent.
func Standalone(ctx context.Context) bool {
	b, _ := ctx.Value(standaloneKey{}).(bool)
	return b
}

// Main runs the check named name as a plugin: it parses args, runs the check,
// prints the result on stdout and returns the exit code.
func Main(ctx context.Context, name string, args []string, stdout io.Writer) int {
	ctx = context.WithValue(ctx, standaloneKey{}, true)
	spec, ok := Lookup(name)
	if !ok {
		fmt.Fprintf(stdout, "UNKNOWN - no check named %q (immune check --list shows them)\n", name)
		return nagios.Unknown.ExitCode()
	}
	c, err := spec.New(args)
	if err != nil {
		var help *HelpError
		var usage *UsageError
		switch {
		case errors.As(err, &help):
			fmt.Fprint(stdout, help.Text)
		case errors.As(err, &usage):
			fmt.Fprintf(stdout, "UNKNOWN - %v\n%s\n", usage, usage.Usage)
		default:
			fmt.Fprintf(stdout, "UNKNOWN - %s: %v\n", name, err)
		}
		return nagios.Unknown.ExitCode()
	}
	r := Run(ctx, name, c)
	if err := r.Write(stdout); err != nil {
		return nagios.Unknown.ExitCode()
	}
	return r.State.ExitCode()
}

// timedOut reports whether ctx has ended or its deadline has passed. A
// network call can fail on the deadline a moment before the context's own
// timer marks it done, and that failure is still a timeout.
func timedOut(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// lazyRegexp compiles expr on first use. Checks are one binary, so a
// regexp compiled at init would slow the start of every plugin run.
func lazyRegexp(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}
