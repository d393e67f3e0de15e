package rollback_test

// End-to-end tests: real agent processes on 127.0.0.X, a real coordinator
// process, real artifacts and a real git repository (package demo). The
// push_test.go tests drive the state machine against stand-ins; these prove
// that the parts, as built, work together and survive crashes.

import (
	"context"
	"fmt"
	"io/fs"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/immune-ops/immune/demo"
	"github.com/immune-ops/immune/fixtures/real"
	"github.com/immune-ops/immune/rollback"
	"github.com/immune-ops/immune/rollback/client"
)

// pushTimeout bounds the wait for one push: far above the ~15 s a push of
// two phases takes, so only a push that never ends hits it.
const pushTimeout = 2 * time.Minute

// binDir is where the binaries under test are built, once, by the first
// end-to-end test that needs them: the unit tests of this package do not
// wait for a build.
var (
	binDir    string
	buildOnce sync.Once
	buildErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "immune-e2e-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "make a dir for the binaries: %v\n", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// binaries builds bin/immune-agent and bin/immune-coordinator as make build
// does (static, CGO_ENABLED=0) and returns their paths.
func binaries(t *testing.T) (agent, coordinator string) {
	t.Helper()
	buildOnce.Do(func() {
		cmd := exec.Command("go", "build", "-o", binDir+string(filepath.Separator),
			"github.com/immune-ops/immune/cmd/immune-agent", "github.com/immune-ops/immune/cmd/immune-coordinator")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "immune-agent"), filepath.Join(binDir, "immune-coordinator")
}

// requireGit skips without git, unless IMMUNE_REQUIRE_REAL is set (make
// test sets it), so the suite cannot pass by skipping what it proves.
func requireGit(t *testing.T) {
	t.Helper()
	real.Command(t, "git", "git")
}

// startFleet starts a fleet of hosts agents, stopped when the test ends;
// when the test failed, the coordinator's log is shown.
func startFleet(t *testing.T, hosts int) *demo.Fleet {
	t.Helper()
	return startFleetWith(t, demo.Options{Hosts: hosts})
}

// startFleetWith is startFleet with more options.
func startFleetWith(t *testing.T, o demo.Options) *demo.Fleet {
	t.Helper()
	requireGit(t)
	o.AgentBin, o.CoordinatorBin = binaries(t)
	o.Dir, o.Baseline = t.TempDir(), 2*time.Second
	f, err := demo.Start(t.Context(), o)
	if err != nil {
		t.Fatalf("start fleet: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if log, err := os.ReadFile(f.CoordinatorLog); err == nil {
				t.Logf("coordinator log (end):\n%s", log[max(0, len(log)-6000):])
			}
		}
		if err := f.Close(); err != nil {
			t.Errorf("stop fleet: %v", err)
		}
	})
	return f
}

// push starts a push of r and waits for it to end.
func push(t *testing.T, f *demo.Fleet, r demo.Release) *rollback.Push {
	t.Helper()
	p, err := f.Push(t.Context(), r, "e2e")
	if err != nil {
		t.Fatalf("push %s: %v", r.Short(), err)
	}
	return follow(t, f, p.ID)(func(p *rollback.Push) bool { return p.State.Done() })
}

// follow returns a function that waits until the push satisfies until;
// the push's progress is logged once across the calls.
func follow(t *testing.T, f *demo.Fleet, id string) func(until func(*rollback.Push) bool) *rollback.Push {
	progress := rollback.Progress(tlog{t})
	return func(until func(*rollback.Push) bool) *rollback.Push {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), pushTimeout)
		defer cancel()
		p, err := f.Watch(ctx, id, func(p *rollback.Push) bool {
			progress(p)
			return until(p)
		})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
}

// tlog writes progress lines to the test log.
type tlog struct{ t *testing.T }

func (l tlog) Write(b []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// assertAllOn checks every agent's current release.
func assertAllOn(t *testing.T, f *demo.Fleet, want demo.Release) {
	t.Helper()
	cur, err := f.Currents(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range f.Hosts {
		if cur[h.Name] != want.Revision {
			t.Errorf("%s runs %q, want %s (%s)", h.Name, cur[h.Name], want.Revision, want.Subject)
		}
	}
}

// assertRevertedAndLocked checks that the repository's newest commit reverts r and
// that pushes are locked because of it.
func assertRevertedAndLocked(t *testing.T, f *demo.Fleet, p *rollback.Push, r demo.Release) {
	t.Helper()
	if p.Revert == nil || p.Revert.Error != "" {
		t.Errorf("revert record %+v, want one without error", p.Revert)
	}
	head, err := f.Head(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !head.IsRevertOf(r) {
		t.Errorf("git log -1 is %s %q (%s), want the revert of %s", head.SHA, head.Subject, head.Body, r.Revision)
	}
	l, err := f.Locks(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if l.Commit == nil || l.Commit.Revision != r.Revision || l.Commit.Push != p.ID {
		t.Errorf("commit lock %+v, want one for push %s of %s", l.Commit, p.ID, r.Revision)
	}
	if l.Push != "" {
		t.Errorf("push lock still held by %s after the push ended", l.Push)
	}
}

// wwwHost is the web host of a phase: the only type the PHP limit watches.
func wwwHost(t *testing.T, f *demo.Fleet, ph rollback.PushPhase) *demo.Host {
	t.Helper()
	for _, name := range ph.Hosts {
		if h := f.Host(name); h != nil && h.Type == demo.TypeWWW {
			return h
		}
	}
	t.Fatalf("no www host in phase hosts %v", ph.Hosts)
	return nil
}

// TestE2EGoodThenBadPush is the demo's story on a fleet of the demo's size:
// a good push goes live everywhere; a bad one is caught in phase 1, rolled
// back on every host it touched, reverted and locked; a push while locked
// is refused, and only the operator token clears the lock.
func TestE2EGoodThenBadPush(t *testing.T) {
	f := startFleet(t, 20)
	ctx := t.Context()

	good, err := f.Commit(ctx, "checkout: show the order total with tax", demo.App{})
	if err != nil {
		t.Fatal(err)
	}
	p := push(t, f, good)
	if p.State != rollback.StateLive {
		t.Fatalf("good push ended %s: %s", p.State, p.Reason)
	}
	if n := p.HostsDone(); n != len(f.Hosts) {
		t.Errorf("good push done on %d hosts, want %d", n, len(f.Hosts))
	}
	assertAllOn(t, f, good)

	bad, err := f.Commit(ctx, "checkout: call the new pricing service", demo.App{PHPFatalsPerMinute: 600, CPU: 0.05})
	if err != nil {
		t.Fatal(err)
	}
	p = push(t, f, bad)
	if p.State != rollback.StateRolledBack || p.Phase != 0 {
		t.Fatalf("bad push ended %s in phase %d, want rolled back in phase 1: %s", p.State, p.Phase+1, p.Reason)
	}
	if v := p.Phases[0].Verdict; v == nil || v.Outcome != rollback.Fail || !strings.Contains(v.Reason, "php_errors") {
		t.Errorf("phase 1 verdict %+v, want a php_errors failure", v)
	}
	if !slices.Equal(p.Touched, p.Phases[0].Hosts) {
		t.Errorf("touched %v, want phase 1's hosts %v only", p.Touched, p.Phases[0].Hosts)
	}
	for _, name := range p.Touched {
		rel, err := f.Release(ctx, f.Host(name))
		if err != nil {
			t.Fatal(err)
		}
		if rel.Current != good.Revision || rel.Previous != bad.Revision {
			t.Errorf("%s: current %q previous %q, want %s back and %s previous", name, rel.Current, rel.Previous, good.Short(), bad.Short())
		}
		if e := p.RolledBack[name]; e != "" {
			t.Errorf("%s: rollback recorded error %q", name, e)
		}
	}
	assertAllOn(t, f, good)
	assertRevertedAndLocked(t, f, p, bad)

	fix, err := f.Commit(ctx, "checkout: pricing service behind a flag", demo.App{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Push(ctx, fix, "e2e"); client.StatusCode(err) != http.StatusConflict || !strings.Contains(err.Error(), "locked") {
		t.Errorf("push while locked: %v, want 409 locked", err)
	}

	for _, tc := range []struct {
		name, token string
		want        int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"deploy token", f.DeployToken(), http.StatusUnauthorized},
		{"operator token", f.OperatorToken, http.StatusOK},
	} {
		l, err := f.Unlock(ctx, tc.token, "e2e", "pricing service fixed")
		switch {
		case tc.want == http.StatusOK && err != nil:
			t.Errorf("unlock with %s: %v", tc.name, err)
		case tc.want == http.StatusOK && (l.Commit != nil || len(l.Cleared) != 1 || l.Cleared[0].ClearedBy != "e2e"):
			t.Errorf("unlock with %s: locks %+v, want the lock cleared by e2e", tc.name, l)
		case tc.want != http.StatusOK && client.StatusCode(err) != tc.want:
			t.Errorf("unlock with %s: %v, want %d", tc.name, err, tc.want)
		}
	}
}

// TestE2EAgentKilledMidPush kills phase 1's web host while phase 1 is
// observed. Its gauges go missing, and php_errors' missing policy is fail
// (the default): a host that stops answering after a deploy is the worst
// reading there is, so the push is rolled back. The rollback is retried
// until the dead host answers, as a host that comes back on the new release
// is what the immune system exists to prevent; when its agent is started
// again, as its service manager would, the push ends rolled back.
func TestE2EAgentKilledMidPush(t *testing.T) {
	f := startFleet(t, 6)
	ctx := t.Context()
	next, err := f.Commit(ctx, "checkout: show the order total with tax", demo.App{})
	if err != nil {
		t.Fatal(err)
	}
	started, err := f.Push(ctx, next, "e2e")
	if err != nil {
		t.Fatal(err)
	}
	watch := follow(t, f, started.ID)
	p := watch(func(p *rollback.Push) bool { return p.State == rollback.StateObserving })
	victim := wwwHost(t, f, p.Phases[0])
	if err := f.KillAgent(victim); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed the agent of %s", victim.Name)

	p = watch(func(p *rollback.Push) bool {
		return p.State.Done() || p.State == rollback.StateRollingBack && p.RolledBack[victim.Name] != ""
	})
	if p.State != rollback.StateRollingBack {
		t.Fatalf("with %s dead the push is %s (%s), want it retrying the rollback", victim.Name, p.State, p.Reason)
	}
	if !strings.Contains(p.Reason, "no reading") {
		t.Errorf("reason %q, want the missing readings", p.Reason)
	}
	breached := false
	for _, r := range p.Phases[0].Verdict.Readings {
		breached = breached || r.Host == victim.Name && r.Breached
	}
	if !breached {
		t.Errorf("no breached reading of %s in the verdict %+v", victim.Name, p.Phases[0].Verdict)
	}
	for _, name := range p.Touched {
		if name == victim.Name {
			continue
		}
		rel, err := f.Release(ctx, f.Host(name))
		if err != nil {
			t.Fatal(err)
		}
		if rel.Current != f.Base.Revision {
			t.Errorf("%s runs %s while %s is down, want it rolled back to %s", name, rel.Current, victim.Name, f.Base.Short())
		}
	}

	if err := f.StartAgent(ctx, victim); err != nil {
		t.Fatal(err)
	}
	p = watch(func(p *rollback.Push) bool { return p.State.Done() })
	if p.State != rollback.StateRolledBack {
		t.Fatalf("push ended %s, want rolled back", p.State)
	}
	for name, e := range p.RolledBack {
		if e != "" {
			t.Errorf("%s: rollback left error %q", name, e)
		}
	}
	assertAllOn(t, f, f.Base)
	assertRevertedAndLocked(t, f, p, next)
}

// TestE2ECoordinatorKilledDuringObserve kills the coordinator process while
// it observes phase 1 of a bad push and starts it again: it resumes the
// push from its store and rolls it back; no host is left on the bad release.
func TestE2ECoordinatorKilledDuringObserve(t *testing.T) {
	f := startFleet(t, 6)
	ctx := t.Context()
	bad, err := f.Commit(ctx, "checkout: call the new pricing service", demo.App{PHPFatalsPerMinute: 600})
	if err != nil {
		t.Fatal(err)
	}
	started, err := f.Push(ctx, bad, "e2e")
	if err != nil {
		t.Fatal(err)
	}
	watch := follow(t, f, started.ID)
	watch(func(p *rollback.Push) bool { return p.State == rollback.StateObserving })
	// Some of the window's samples are taken, and lost with the process.
	time.Sleep(2 * time.Second)
	if err := f.KillCoordinator(); err != nil {
		t.Fatal(err)
	}
	if err := f.StartCoordinator(ctx); err != nil {
		t.Fatal(err)
	}
	p := watch(func(p *rollback.Push) bool { return p.State.Done() })
	if p.State != rollback.StateRolledBack || p.Phase != 0 {
		t.Fatalf("push ended %s in phase %d, want rolled back in phase 1: %s", p.State, p.Phase+1, p.Reason)
	}
	resumed := slices.ContainsFunc(p.Events, func(e rollback.Event) bool {
		return strings.Contains(e.Msg, "resuming in state observing")
	})
	if !resumed {
		t.Errorf("no event says the push was resumed while observing: %+v", p.Events)
	}
	assertAllOn(t, f, f.Base)
	assertRevertedAndLocked(t, f, p, bad)
}

// TestE2EMaliciousArtifact pushes an artifact with an entry that climbs out
// of the release dir: every agent refuses it (422) and unpacks nothing, so
// the release never went live: the push fails, with nothing to roll back,
// no revert and no commit lock.
func TestE2EMaliciousArtifact(t *testing.T) {
	f := startFleet(t, 4)
	ctx := t.Context()
	evil, err := f.CommitMalicious(ctx, "checkout: vendor the pricing SDK")
	if err != nil {
		t.Fatal(err)
	}
	p := push(t, f, evil)
	if p.State != rollback.StateFailed || p.Phase != 0 {
		t.Fatalf("push ended %s in phase %d, want failed in phase 1: %s", p.State, p.Phase+1, p.Reason)
	}
	if !strings.Contains(p.Reason, "deploy failed") || !strings.Contains(p.Reason, "422") {
		t.Errorf("reason %q, want the deploy refused with 422", p.Reason)
	}
	for _, name := range p.Phases[0].Hosts {
		if e := p.Phases[0].Deployed[name]; !strings.Contains(e, "422") || !strings.Contains(e, "..") {
			t.Errorf("%s: deploy result %q, want a 422 naming the '..' entry", name, e)
		}
	}
	assertAllOn(t, f, f.Base)
	for _, h := range f.Hosts {
		rel, err := f.Release(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(rel.Releases, evil.Revision) {
			t.Errorf("%s unpacked the refused release: %v", h.Name, rel.Releases)
		}
	}
	err = filepath.WalkDir(filepath.Join(f.Dir, "hosts"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "escaped.php" {
			t.Errorf("the artifact wrote %s", path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.Revert != nil {
		t.Errorf("a push that never went live was reverted: %+v", p.Revert)
	}
	if l, err := f.Locks(ctx); err != nil || l.Commit != nil || l.Push != "" {
		t.Errorf("locks %+v (%v), want none", l, err)
	}
}

// TestE2EBadOnlyInPhaseTwo: the release breaks the chat servers, but not
// the first of them, the one phase 1 takes: phase 1 passes, phase 2 is
// caught against the chat server held back, and every host touched goes
// back.
func TestE2EBadOnlyInPhaseTwo(t *testing.T) {
	f := startFleetWith(t, demo.Options{Hosts: 20})
	bad, err := f.Commit(t.Context(), "chat: new presence protocol", demo.App{PHPFatalsPerMinute: 600, OnTypes: []string{demo.TypeChat}, SpareFirst: true})
	if err != nil {
		t.Fatal(err)
	}
	p := push(t, f, bad)
	if p.State != rollback.StateRolledBack || p.Phase != 1 {
		t.Fatalf("push ended %s in phase %d, want rolled back in phase 2: %s", p.State, p.Phase+1, p.Reason)
	}
	if !strings.HasPrefix(p.Reason, "phase 2: php_errors on chat") {
		t.Errorf("reason %q, want the chat servers' PHP errors in phase 2", p.Reason)
	}
	// One host of each of the four types is held back as the control.
	if len(p.Touched) != len(f.Hosts)-4 {
		t.Errorf("%d hosts touched, want all %d but the 4 held back", len(p.Touched), len(f.Hosts))
	}
	assertAllOn(t, f, f.Base)
	assertRevertedAndLocked(t, f, p, bad)
}

// TestE2EMissingGauge: a limit on a gauge no agent reports, under each
// policy; and a second push while one runs is refused.
func TestE2EMissingGauge(t *testing.T) {
	for _, tt := range []struct {
		policy string
		want   rollback.State
	}{{"ignore", rollback.StateLive}, {"fail", rollback.StateRolledBack}} {
		t.Run(tt.policy, func(t *testing.T) {
			f := startFleetWith(t, demo.Options{Hosts: 4, ExtraLimits: "  - gauge: orders\n    min: 1\n    missing: " + tt.policy})
			good, err := f.Commit(t.Context(), "checkout: show the order total with tax", demo.App{})
			if err != nil {
				t.Fatal(err)
			}
			p, err := f.Push(t.Context(), good, "e2e")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Push(t.Context(), good, "e2e"); err == nil || !strings.Contains(err.Error(), "in progress") {
				t.Errorf("a second push while one runs: %v, want it refused", err)
			}
			p = follow(t, f, p.ID)(func(p *rollback.Push) bool { return p.State.Done() })
			if p.State != tt.want {
				t.Fatalf("missing: %s: push ended %s (%s), want %s", tt.policy, p.State, p.Reason, tt.want)
			}
			if tt.want == rollback.StateLive {
				assertAllOn(t, f, good)
			} else {
				assertAllOn(t, f, f.Base)
			}
		})
	}
}

// readings are a push's readings of one gauge over every phase judged.
func readings(p *rollback.Push, gauge string) []rollback.Reading {
	var out []rollback.Reading
	for _, ph := range p.Phases {
		if ph.Verdict == nil {
			continue
		}
		for _, r := range ph.Verdict.Readings {
			if r.Gauge == gauge {
				out = append(out, r)
			}
		}
	}
	return out
}

// TestE2ERegistrationsFall: a business gauge, not an error count, catches
// the release. The base release registers 600 users a minute on every host,
// the bad one 30: the web hosts' registrations fall by far more than the
// 50% the limit allows against the web hosts still on the old release, so
// the push is rolled back in phase 1.
func TestE2ERegistrationsFall(t *testing.T) {
	f := startFleetWith(t, demo.Options{
		Hosts:       10,
		BaseApp:     demo.App{RegistrationsPerMinute: 600},
		ExtraLimits: "  - gauge: registrations\n    host_types: [www]\n    aggregate: {fall: 50%}\n    missing: wait",
	})
	bad, err := f.Commit(t.Context(), "signup: ask for a phone number first", demo.App{RegistrationsPerMinute: 30})
	if err != nil {
		t.Fatal(err)
	}
	p := push(t, f, bad)
	if p.State != rollback.StateRolledBack || p.Phase != 0 {
		for _, r := range readings(p, "registrations") {
			t.Logf("%s %s %s: pre %v post %v control %v: %s", r.HostType, r.Host, r.Test, optVal(r.Pre), optVal(r.Post), optVal(r.Control), r.Why)
		}
		t.Fatalf("push ended %s in phase %d, want rolled back in phase 1: %s", p.State, p.Phase+1, p.Reason)
	}
	if !strings.HasPrefix(p.Reason, "phase 1: registrations on www fell ") {
		t.Errorf("reason %q, want registrations falling in phase 1", p.Reason)
	}
	for _, r := range readings(p, "registrations") {
		if r.Breached && (r.Pre == nil || r.Post == nil || *r.Post > *r.Pre/2) {
			t.Errorf("breached reading %+v: want a baseline and a value below half of it", r)
		}
	}
	assertAllOn(t, f, f.Base)
	assertRevertedAndLocked(t, f, p, bad)
}

func optVal(x *float64) any {
	if x == nil {
		return "-"
	}
	return *x
}

// TestE2ESpikeOnce: every host of the release logs one burst of events,
// far above the limit for one sample, and is quiet otherwise. A breach
// takes three bad samples in a row, so the push goes live; the judge saw
// the burst and let it pass.
func TestE2ESpikeOnce(t *testing.T) {
	const limit = 20
	f := startFleetWith(t, demo.Options{
		Hosts:       4,
		Events:      true,
		ExtraLimits: fmt.Sprintf("  - gauge: events\n    max: %d\n    missing: ignore", limit),
	})
	spiky, err := f.Commit(t.Context(), "search: warm the cache at start", demo.App{SpikeOnce: 200})
	if err != nil {
		t.Fatal(err)
	}
	p := push(t, f, spiky)
	if p.State != rollback.StateLive {
		t.Fatalf("push ended %s, want live: %s", p.State, p.Reason)
	}
	assertAllOn(t, f, spiky)
	spikes := 0
	for _, r := range readings(p, "events") {
		run, longest := 0, 0
		for _, x := range r.Samples {
			if x > limit {
				spikes++
				run++
				longest = max(longest, run)
			} else if !math.IsNaN(x) {
				run = 0
			}
		}
		if r.Breached || longest >= 3 {
			t.Errorf("reading %+v: breached %v with %d samples above %d in a row, want one spike that passes", r, r.Breached, longest, limit)
		}
	}
	if spikes == 0 {
		t.Errorf("no sample of events above %d: the judge never saw a burst (readings %+v)", limit, readings(p, "events"))
	}
}

// TestE2EMissingWait: a limit on the events gauge, which the release makes
// exist only a few seconds after it starts. With missing: wait the samples
// without it are neither good nor bad: the push goes live when the reading
// arrives, and is rolled back, saying it waited, when it never does.
func TestE2EMissingWait(t *testing.T) {
	for _, tt := range []struct {
		name string
		app  demo.App
		want rollback.State
	}{
		{"arrives", demo.App{EventsPerMinute: 120, EventsAfter: 1}, rollback.StateLive},
		{"never", demo.App{}, rollback.StateRolledBack},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := startFleetWith(t, demo.Options{
				Hosts:       4,
				Events:      true,
				MaxWait:     2 * time.Second,
				ExtraLimits: "  - gauge: events\n    max: 1000\n    missing: wait",
			})
			next, err := f.Commit(t.Context(), "analytics: report events", tt.app)
			if err != nil {
				t.Fatal(err)
			}
			p := push(t, f, next)
			if p.State != tt.want {
				t.Fatalf("push ended %s (%s), want %s", p.State, p.Reason, tt.want)
			}
			if tt.want == rollback.StateRolledBack {
				if p.Phase != 0 || !strings.HasPrefix(p.Reason, "phase 1: waiting for a reading of events on ") ||
					!strings.Contains(p.Reason, "(no reading after waiting ") {
					t.Errorf("reason %q in phase %d, want phase 1 rolled back after waiting for events", p.Reason, p.Phase+1)
				}
				assertAllOn(t, f, f.Base)
				assertRevertedAndLocked(t, f, p, next)
				return
			}
			assertAllOn(t, f, next)
			// Phase 1's hosts lacked the gauge at first, then read it.
			rs := 0
			for _, r := range p.Phases[0].Verdict.Readings {
				if r.Gauge != "events" {
					continue
				}
				rs++
				s := r.Samples
				if len(s) < 2 || !math.IsNaN(s[0]) || math.IsNaN(s[len(s)-1]) || r.Waiting || r.Breached {
					t.Errorf("phase 1 reading %+v: want it missing at first, then read within limits", r)
				}
			}
			if rs == 0 {
				t.Errorf("phase 1 has no reading of events: %+v", p.Phases[0].Verdict.Readings)
			}
		})
	}
}

// TestE2EBisectFindsTheCulprit: real agents, a push of three commits whose
// middle one breaks checkout (the one after it carries its code): the push
// is rolled back, bisect finds the middle commit in short pushes to the
// first phase's hosts, only it is reverted, and the lock names it.
func TestE2EBisectFindsTheCulprit(t *testing.T) {
	f := startFleet(t, 20)
	ctx := t.Context()
	if _, err := f.Commit(ctx, "search: faster product index", demo.App{}); err != nil {
		t.Fatal(err)
	}
	bad, err := f.Commit(ctx, "checkout: call the new pricing service", demo.App{PHPFatalsPerMinute: 600})
	if err != nil {
		t.Fatal(err)
	}
	tip, err := f.Commit(ctx, "signup: a shorter form", demo.App{PHPFatalsPerMinute: 600})
	if err != nil {
		t.Fatal(err)
	}
	p := push(t, f, tip)
	if p.State != rollback.StateRolledBack || len(p.Range) != 3 {
		t.Fatalf("push ended %s, range %d: %s", p.State, len(p.Range), p.Reason)
	}
	if b := p.Bisect; b == nil || b.Culprit == nil || b.Culprit.SHA != bad.Revision || len(b.Steps) != 2 {
		t.Fatalf("bisect %+v", p.Bisect)
	}
	assertAllOn(t, f, f.Base)
	head, err := f.Head(ctx)
	if err != nil || !head.IsRevertOf(bad) {
		t.Errorf("git log -1: %+v %v, want the revert of %s alone", head, err, bad.Short())
	}
	l, err := f.Locks(ctx)
	if err != nil || l.Commit == nil || len(l.Commit.Range) != 1 || l.Commit.Range[0].SHA != bad.Revision ||
		!strings.Contains(l.Commit.Reason, "culprit: "+bad.Short()) {
		t.Errorf("lock %+v (%v)", l.Commit, err)
	}
}
