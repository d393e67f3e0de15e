package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/immune-ops/immune/cmd/internal/cmdflags"
	"github.com/immune-ops/immune/rollback"
	"github.com/immune-ops/immune/rollback/client"
)

// status is what `immune status` shows: what the coordinator is doing now.
type status struct {
	// URL is the coordinator's; Version its build, or why it is unknown.
	URL, Version string
	// Push is the push in progress, or nil; Last the newest push when none is.
	Push, Last *rollback.Push
	Locks      rollback.Locks
}

// runStatus prints in one screen what runs now: the push in progress, its
// phase and hosts, the gauges its judge does not pass, the locks, and the
// coordinator's build. It reads only, so it needs no token.
func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("immune status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := cmdflags.ReadFlags(fs)
	var st status
	if _, code, done := read(fs.Name(), fs, f, args, stdout, stderr, func(c *client.Client) error {
		var err error
		st, err = readStatus(ctx, c)
		return err
	}); done {
		return code
	}
	printStatus(stdout, st, time.Now(), time.Local)
	return 0
}

// readStatus asks the coordinator what printStatus shows.
func readStatus(ctx context.Context, c *client.Client) (status, error) {
	st := status{URL: c.URL}
	var err error
	if st.Locks, err = c.Locks(ctx); err != nil {
		return st, fmt.Errorf("read the locks: %w", err)
	}
	if id := st.Locks.Push; id != "" {
		if st.Push, err = c.Push(ctx, id); err != nil {
			return st, fmt.Errorf("read push %s: %w", id, err)
		}
	} else {
		ps, err := c.RecentPushes(ctx, 1)
		if err != nil {
			return st, fmt.Errorf("read the last push: %w", err)
		}
		if len(ps) > 0 {
			st.Last = &ps[0]
		}
	}
	st.Version, err = c.Version(ctx)
	if code := client.StatusCode(err); code == 404 {
		st.Version = "unknown (a coordinator older than /api/v1/version)"
	} else if err != nil {
		return st, fmt.Errorf("read the version: %w", err)
	}
	return st, nil
}

// printStatus writes st for a person at now, times in loc.
func printStatus(w io.Writer, st status, now time.Time, loc *time.Location) {
	when := func(t time.Time) string {
		return fmt.Sprintf("%s (%s ago)", t.In(loc).Format("2006-01-02 15:04:05"), now.Sub(t).Round(time.Second))
	}
	fmt.Fprintf(w, "coordinator  %s: %s\n", st.URL, st.Version)
	switch p := st.Push; {
	case p != nil:
		total := 0
		if n := len(p.Phases); n > 0 {
			total = len(p.Phases[n-1].Hosts)
		}
		fmt.Fprintf(w, "push         %s: %s by %s, since %s\n", p.ID, p.Revision, p.Who, when(p.Created))
		fmt.Fprintf(w, "             %s, phase %d/%d, %d/%d hosts run it", p.State, p.Phase+1, len(p.Phases), p.HostsDone(), total)
		if p.Phase < len(p.Phases) && !p.Phases[p.Phase].Started.IsZero() {
			fmt.Fprintf(w, ", phase since %s", p.Phases[p.Phase].Started.In(loc).Format("15:04:05"))
		}
		fmt.Fprintln(w)
		if p.Held != "" {
			fmt.Fprintf(w, "             HELD by %s\n", p.Held)
		}
		if n := len(p.Events); n > 0 {
			fmt.Fprintf(w, "             last: %s %s\n", p.Events[n-1].At.In(loc).Format("15:04:05"), p.Events[n-1].Msg)
		}
		printGauges(w, p)
	case st.Last != nil:
		l := st.Last
		fmt.Fprintf(w, "push         none running; the last: %s: %s by %s, %s", l.ID, l.Revision, l.Who, l.Outcome())
		if !l.Finished.IsZero() {
			fmt.Fprintf(w, " at %s", when(l.Finished))
		}
		fmt.Fprintln(w)
		if l.Reason != "" {
			fmt.Fprintf(w, "             %s\n", l.Reason)
		}
	default:
		fmt.Fprintln(w, "push         none yet")
	}
	if st.Locks.Push != "" {
		fmt.Fprintf(w, "push lock    held by push %s\n", st.Locks.Push)
	} else {
		fmt.Fprintln(w, "push lock    free")
	}
	if cl := st.Locks.Commit; cl != nil {
		fmt.Fprintf(w, "commit lock  ON since %s, after push %s of %s: %s\n", when(cl.Since), cl.Push, cl.Revision, cl.Reason)
		fmt.Fprintln(w, "             pushes wait until someone runs immune unlock --reason \"what was fixed\"")
	} else {
		fmt.Fprintln(w, "commit lock  off")
	}
}

// printGauges writes the readings of the push's latest verdict that do
// not pass: breaches first, then those the judge cannot decide yet.
func printGauges(w io.Writer, p *rollback.Push) {
	var v *rollback.Verdict
	phase := 0
	for i, ph := range p.Phases {
		if ph.Verdict != nil {
			v, phase = ph.Verdict, i
		}
	}
	if v == nil {
		fmt.Fprintln(w, "gauges       not judged yet")
		return
	}
	var breached, unsure []rollback.Reading
	for _, r := range v.Readings {
		switch {
		case r.DryRun:
		case r.Breached:
			breached = append(breached, r)
		case r.Inconclusive || r.Waiting:
			unsure = append(unsure, r)
		}
	}
	fmt.Fprintf(w, "gauges       phase %d: %s at look %d, evidence %d%%", phase+1, v.Outcome, v.Look, int(math.Round(100*v.Evidence)))
	if len(breached)+len(unsure) == 0 {
		fmt.Fprintln(w, ", none breaching")
		return
	}
	fmt.Fprintln(w)
	const most = 10 // one screen: the push's page has the rest
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	shown := 0
	for _, rs := range []struct {
		word     string
		readings []rollback.Reading
	}{{"BREACH", breached}, {"unsure", unsure}} {
		for _, r := range rs.readings {
			if shown == most {
				fmt.Fprintf(tw, "  ... and %d more\n", len(breached)+len(unsure)-most)
				return
			}
			shown++
			fmt.Fprintf(tw, "  %s\t%s\t%s\teffect %s\tlimit %s\t%s\n", rs.word, r.Gauge, readingOf(r), effect(r), orDash(r.Threshold), r.Why)
		}
	}
}

// readingOf says what a reading is of: a host, or a host type's hosts of a phase.
func readingOf(r rollback.Reading) string {
	if r.Host != "" {
		return r.Host + " (" + r.HostType + ")"
	}
	if r.Phase > 0 {
		return r.HostType + " (phase " + strconv.Itoa(r.Phase) + ")"
	}
	return r.HostType
}

// effect is a reading's change, in its units and in percent when known.
func effect(r rollback.Reading) string {
	if r.Delta == nil {
		return "-"
	}
	s := signedNum(*r.Delta)
	if r.DeltaPct != nil {
		s += " (" + signedNum(*r.DeltaPct) + "%)"
	}
	return s
}

// signedNum writes x with its sign and at most three decimals.
func signedNum(x float64) string {
	s := strconv.FormatFloat(math.Round(x*1000)/1000, 'f', -1, 64)
	if s == "-0" {
		return "0"
	}
	if !strings.HasPrefix(s, "-") && s != "0" {
		s = "+" + s
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
