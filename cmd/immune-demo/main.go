// Command immune-demo shows the cluster immune system at work on this
// machine alone; `immune demo` runs it. It starts a fleet of real agents on
// loopback and a coordinator, pushes a good revision that goes live on
// every host, then a bad one that phase 1 catches: the release is rolled
// back, the commit reverted and pushes locked. Each of those is checked,
// not only shown.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/immune-ops/immune/cmd/internal/cli"
	"github.com/immune-ops/immune/cmd/internal/cmdflags"
	"github.com/immune-ops/immune/cmd/internal/sibling"
	"github.com/immune-ops/immune/demo"
	"github.com/immune-ops/immune/rollback"
)

// pushTimeout bounds one push of the demo, far above what it takes.
const pushTimeout = 2 * time.Minute

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("immune demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	flags := cmdflags.DemoFlags(fs)
	exit, hosts := flags.Exit, flags.Hosts
	if code, done := cli.Parse(fs, args, "immune-demo", stdout); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "immune demo: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *hosts < demo.MinHosts || *hosts > demo.MaxHosts {
		fmt.Fprintf(stderr, "immune demo: --hosts %d: want %d (one host of each type) to %d\n", *hosts, demo.MinHosts, demo.MaxHosts)
		return 2
	}
	if _, err := exec.LookPath("git"); err != nil {
		fmt.Fprintln(stderr, "immune demo: git is not installed: the demo reverts the bad commit in a local git repository; install it (apt-get install git) and run the demo again")
		return 1
	}
	agentBin, err := sibling.Path("immune-agent")
	if err != nil {
		fmt.Fprintf(stderr, "immune demo: %v\n", err)
		return 1
	}
	coordBin, err := sibling.Path("immune-coordinator")
	if err != nil {
		fmt.Fprintf(stderr, "immune demo: %v\n", err)
		return 1
	}

	// The demo's own directory, so that the logs stay for a look when a
	// step did not hold.
	dir, err := os.MkdirTemp("", "immune-demo-")
	if err != nil {
		fmt.Fprintf(stderr, "immune demo: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "immune demo: starting %d agents (%s) and a coordinator (%s) on loopback...\n", *hosts, agentBin, coordBin)
	began := time.Now()
	f, err := demo.Start(ctx, demo.Options{AgentBin: agentBin, CoordinatorBin: coordBin, Hosts: *hosts, Dir: dir})
	if err != nil && ctx.Err() != nil {
		fmt.Fprintln(stdout, "immune demo: interrupted while the fleet started")
		os.RemoveAll(dir)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "immune demo: start the fleet: %v\n(its files are in %s)\n", err, dir)
		return 1
	}
	d := &story{f: f, out: stdout}
	d.intro(time.Since(began))
	d.run(ctx)
	if d.finished {
		d.summary()
		if !*exit {
			d.stayUp()
			<-ctx.Done()
		}
	}
	fmt.Fprintln(stdout, "\nstopping the fleet...")
	if err := f.Close(); err != nil {
		fmt.Fprintf(stderr, "immune demo: stop the fleet: %v\n", err)
	}
	if len(d.failed) > 0 {
		fmt.Fprintf(stdout, "the fleet's files and logs stay in %s\n", dir)
		return 1
	}
	if err := os.RemoveAll(dir); err != nil {
		fmt.Fprintf(stderr, "immune demo: %v\n", err)
	}
	if !d.finished {
		fmt.Fprintln(stdout, "immune demo: interrupted before every step was checked")
		return 1
	}
	return 0
}

// story runs the demo's pushes and keeps what did not hold.
type story struct {
	f      *demo.Fleet
	out    io.Writer
	failed []string
	// finished is set when every step ran, whether or not it held: an
	// interrupted demo proved nothing.
	finished bool
}

func (d *story) printf(format string, args ...any) { fmt.Fprintf(d.out, format, args...) }

// check prints one verified fact, and keeps it when it did not hold.
func (d *story) check(ok bool, what string, whyNot string) {
	if ok {
		d.printf("  ok    %s\n", what)
		return
	}
	d.printf("  FAIL  %s: %s\n", what, whyNot)
	d.failed = append(d.failed, what+": "+whyNot)
}

// fail keeps a step that could not be carried out at all; a step cut
// short by Ctrl-C is no failure of the system.
func (d *story) fail(ctx context.Context, what string, err error) {
	if ctx.Err() != nil {
		return
	}
	d.printf("  FAIL  %s: %v\n", what, err)
	d.failed = append(d.failed, fmt.Sprintf("%s: %v", what, err))
}

func (d *story) intro(took time.Duration) {
	f := d.f
	count := map[string]int{}
	for _, h := range f.Hosts {
		count[h.Type]++
	}
	first, _, _ := strings.Cut(f.Hosts[0].Addr, ":")
	last, _, _ := strings.Cut(f.Hosts[len(f.Hosts)-1].Addr, ":")
	d.printf("fleet up in %s: %d agents (%d www, %d chat, %d db, %d memcache) on %s to %s\n",
		took.Round(100*time.Millisecond), len(f.Hosts), count[demo.TypeWWW], count[demo.TypeChat], count[demo.TypeDB], count[demo.TypeMemcache], first, last)
	d.printf("  hosts        %s (each its own deploy root, PHP log and agent log)\n", filepath.Join(f.Dir, "hosts"))
	d.printf("  coordinator  %s\n", f.URL)
	d.printf("  pushes       %s/api/v1/pushes\n", f.URL)
	d.printf("  locks        %s/api/v1/locks\n", f.URL)
	d.printf("  repository   %s\n", f.Repo)
	d.printf("every host runs %s %q (0 PHP fatal errors a minute)\n", f.Base.Short(), f.Base.Subject)
}

// run pushes the good revision, then the bad one, checking each outcome
// through the agents' and the coordinator's APIs and the repository.
func (d *story) run(ctx context.Context) {
	good, err := d.f.Commit(ctx, "checkout: show the order total with tax", demo.App{})
	if err != nil {
		d.fail(ctx, "commit the good revision", err)
		return
	}
	d.printf("\n== push 1: %s %q, which logs no PHP fatal errors\n", good.Short(), good.Subject)
	p, ok := d.push(ctx, good)
	if !ok {
		return
	}
	d.check(p.State == rollback.StateLive, "the push went live", fmt.Sprintf("it ended %s: %s", p.State, p.Reason))
	d.checkAllOn(ctx, good, "")

	// Push 2 brings three commits; the middle one breaks checkout, and the
	// one after it still carries its code.
	if _, err := d.f.Commit(ctx, "search: faster product index", demo.App{}); err != nil {
		d.fail(ctx, "commit", err)
		return
	}
	bad, err := d.f.Commit(ctx, "checkout: call the new pricing service", demo.App{PHPFatalsPerMinute: 600, CPU: 0.05})
	if err != nil {
		d.fail(ctx, "commit the bad revision", err)
		return
	}
	tip, err := d.f.Commit(ctx, "signup: a shorter form", demo.App{PHPFatalsPerMinute: 600, CPU: 0.05})
	if err != nil {
		d.fail(ctx, "commit", err)
		return
	}
	d.printf("\n== push 2: %s, three commits; %s %q logs 600 PHP fatal errors a minute\n", tip.Short(), bad.Short(), bad.Subject)
	p, ok = d.push(ctx, tip)
	if !ok {
		return
	}
	caught := p.State == rollback.StateRolledBack && p.Phase == 0 && len(p.Phases) > 0 &&
		p.Phases[0].Verdict != nil && p.Phases[0].Verdict.Outcome == rollback.Fail
	d.check(caught, "phase 1 caught it and the push was rolled back", fmt.Sprintf("it ended %s in phase %d: %s", p.State, p.Phase+1, p.Reason))
	d.checkTouched(ctx, p, good)
	d.checkAllOn(ctx, good, "no host is left on the push: ")
	found := p.Bisect != nil && p.Bisect.Culprit != nil && p.Bisect.Culprit.SHA == bad.Revision
	d.check(found, fmt.Sprintf("bisect found the culprit in %d short pushes: %s %q", len(stepsOf(p)), bad.Short(), bad.Subject),
		fmt.Sprintf("bisect: %+v", p.Bisect))
	head, err := d.f.Head(ctx)
	switch {
	case err != nil:
		d.fail(ctx, "read git log -1", err)
	default:
		d.check(head.IsRevertOf(bad), fmt.Sprintf("git log -1 reverts the culprit alone: %s %s", shortSHA(head.SHA), head.Subject),
			fmt.Sprintf("it is %s %s; the revert said: %s", shortSHA(head.SHA), head.Subject, revertText(p)))
	}
	l, err := d.f.Locks(ctx)
	switch {
	case err != nil:
		d.fail(ctx, "read the locks", err)
	default:
		d.check(l.Commit != nil && l.Commit.Revision == tip.Revision && len(l.Commit.Range) == 1, "the commit lock is on, naming the culprit: pushes wait until someone runs immune unlock",
			fmt.Sprintf("the locks are %+v", l))
	}
	d.finished = ctx.Err() == nil
}

// push pushes a release and prints its progress until it ends.
func (d *story) push(ctx context.Context, r demo.Release) (*rollback.Push, bool) {
	pctx, cancel := context.WithTimeout(ctx, pushTimeout)
	defer cancel()
	p, err := d.f.Push(pctx, r, "demo")
	if err != nil {
		d.fail(ctx, "start the push", err)
		return nil, false
	}
	p, err = d.f.Watch(pctx, p.ID, rollback.Progress(d.out))
	if err != nil {
		d.fail(ctx, "follow the push", err)
		return nil, false
	}
	return p, true
}

// checkAllOn checks on every agent that it runs r; lead begins the line.
func (d *story) checkAllOn(ctx context.Context, r demo.Release, lead string) {
	cur, err := d.f.Currents(ctx)
	if err != nil {
		d.fail(ctx, "read every agent's release", err)
		return
	}
	var off []string
	for name, rev := range cur {
		if rev != r.Revision {
			off = append(off, fmt.Sprintf("%s runs %q", name, shortSHA(rev)))
		}
	}
	sort.Strings(off)
	d.check(len(off) == 0, fmt.Sprintf("%s%s runs on %d/%d hosts (GET /api/v1/release on each agent)", lead, r.Short(), len(cur)-len(off), len(d.f.Hosts)),
		strings.Join(off, ", "))
}

// checkTouched checks that every host the push touched is back on r.
func (d *story) checkTouched(ctx context.Context, p *rollback.Push, r demo.Release) {
	var back, off []string
	for _, name := range p.Touched {
		h := d.f.Host(name)
		if h == nil {
			off = append(off, name+" is not in the fleet")
			continue
		}
		rel, err := d.f.Release(ctx, h)
		switch {
		case err != nil:
			off = append(off, err.Error())
		case rel.Current != r.Revision:
			off = append(off, fmt.Sprintf("%s runs %s", name, shortSHA(rel.Current)))
		default:
			back = append(back, name)
		}
	}
	d.check(len(p.Touched) > 0 && len(off) == 0, fmt.Sprintf("rolled back to %s on the %d hosts it touched: %s", r.Short(), len(back), strings.Join(back, " ")),
		fmt.Sprintf("touched %v; %s", p.Touched, strings.Join(off, ", ")))
}

func revertText(p *rollback.Push) string {
	if p.Revert == nil {
		return "(no revert recorded)"
	}
	return strings.TrimSpace(p.Revert.Output + " " + p.Revert.Error)
}

func shortSHA(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

func (d *story) summary() {
	if len(d.failed) == 0 {
		d.printf("\nimmune demo: every step held: the good push went live, the bad one was caught in phase 1, rolled back, its culprit found and reverted, and pushes locked\n")
		return
	}
	d.printf("\nimmune demo: %d step(s) did not hold:\n", len(d.failed))
	for _, msg := range d.failed {
		d.printf("  - %s\n", msg)
	}
	d.printf("logs: %s and %s/*/agent.log\n", d.f.CoordinatorLog, filepath.Join(d.f.Dir, "hosts"))
}

// stayUp says how to look around the fleet that stays up.
func (d *story) stayUp() {
	d.printf("\nthe fleet stays up until Ctrl-C. Look around with:\n")
	env := fmt.Sprintf("IMMUNE_COORDINATOR=%s IMMUNE_TOKEN_FILE=%s", d.f.URL, d.f.OperatorTokenFile)
	for _, c := range []string{"pushes", "locks", `unlock --reason "pricing service fixed"`} {
		d.printf("  %s bin/immune %s\n", env, c)
	}
	d.printf("  curl %s/api/v1/pushes\n", d.f.URL)
}

func stepsOf(p *rollback.Push) []rollback.BisectStep {
	if p.Bisect == nil {
		return nil
	}
	return p.Bisect.Steps
}
