package faults

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/immune-ops/immune/fixtures/mariadb"
	"github.com/immune-ops/immune/rollback"
)

// row is one line of the faults table.
type row struct {
	fault, expected, observed string
	lost, unknown             int
}

var table struct {
	sync.Mutex
	rows []row
}

func record(r row) {
	table.Lock()
	table.rows = append(table.rows, r)
	table.Unlock()
}

// writeTable writes the table where IMMUNE_FAULTS_TABLE says (make faults
// prints it), and to the test log.
func writeTable(t *testing.T) {
	table.Lock()
	rows := append([]row(nil), table.rows...)
	table.Unlock()
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "fault\texpected\tobserved\tresults lost\thosts on an unknown release")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\n", r.fault, r.expected, r.observed, r.lost, r.unknown)
	}
	tw.Flush()
	b.WriteString("\nresults lost: results the push record lacks for what the coordinators did: a host sent the\n" +
		"release without a deploy result, a touched host of a rolled-back push without a rollback\n" +
		"result, a push that never ended, a revert started and never finished, a revert run twice.\n" +
		"hosts on an unknown release: hosts whose agent, asked after the fault healed, runs a release\n" +
		"other than the one the push record says (or does not answer).\n")
	t.Log("\n" + b.String())
	if path := os.Getenv("IMMUNE_FAULTS_TABLE"); path != "" {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Errorf("write faults table: %v", err)
		}
	}
}

// TestFaults runs each fault against real agents in network namespaces
// and a real coordinator, and checks that every host ends on a release
// the push record accounts for.
func TestFaults(t *testing.T) {
	needNetns(t)
	t.Cleanup(func() { writeTable(t) })
	t.Run("partitioned canary", testPartitionedCanary)
	t.Run("slow link", testSlowLink)
	t.Run("leader partitioned from MySQL", testLeaderPartitioned)
}

// check fills a row from the audit and fails the test on any loss.
func check(t *testing.T, l *lab, p *rollback.Push, r row, extraLost ...string) {
	t.Helper()
	unknown, lost := l.audit(p)
	lost = append(lost, extraLost...)
	r.lost, r.unknown = len(lost), len(unknown)
	record(r)
	for _, u := range unknown {
		t.Errorf("unknown release: %s", u)
	}
	for _, x := range lost {
		t.Errorf("result lost: %s", x)
	}
	if t.Failed() {
		t.Logf("push %s %s: %s%s", p.ID, p.State, p.Reason, events(p))
	}
}

// testPartitionedCanary cuts the phase-1 host off while its phase is
// observed, and heals it while the rollback is retrying it.
func testPartitionedCanary(t *testing.T) {
	t.Parallel()
	l := newLab(t, 6)
	addr := freePort(t, l.net.Gateway)
	w := windows{baseline: 1500 * time.Millisecond, observe: 4 * time.Second, sample: 500 * time.Millisecond, rollbackTimeout: time.Minute}
	l.startCoordinator("coordinator", addr, "", w, nil)
	l.seed(addr)
	good := l.release("r2-good", 0)
	l.upload(addr, good)
	p, err := l.api(addr).StartPush(t.Context(), good.revision, good.sha256, "faults")
	if err != nil {
		t.Fatal(err)
	}
	coords := []string{addr}
	p = l.watch(coords, p.ID, 30*time.Second, func(p *rollback.Push) bool {
		return p.State == rollback.StateObserving || p.State.Done()
	})
	if p.State != rollback.StateObserving || len(p.Phases[0].Hosts) == 0 {
		t.Fatalf("push %s never observed phase 1: %s%s", p.ID, p.State, events(p))
	}
	canary := p.Phases[0].Hosts[0]
	h := l.host(canary)
	if err := h.ns.Partition(t.Context()); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	p = l.watch(coords, p.ID, 30*time.Second, func(p *rollback.Push) bool {
		return p.State == rollback.StateRollingBack || p.State.Done()
	})
	noticed := time.Since(cut)
	// The rollback retries the host that does not answer; it heals a few
	// seconds in.
	time.Sleep(3 * time.Second)
	if err := h.ns.Heal(t.Context()); err != nil {
		t.Fatal(err)
	}
	healed := time.Now()
	p = l.watch(coords, p.ID, 60*time.Second, func(p *rollback.Push) bool { return p.State.Done() })
	obs := fmt.Sprintf("rolling back %.1fs after the cut (%s); %s %.1fs after healing; %d revert",
		noticed.Seconds(), short(p.Reason), p.State, p.Finished.Sub(healed).Seconds(), l.reverts())
	var extra []string
	if p.State != rollback.StateRolledBack {
		t.Errorf("push ended %s, want rolled_back: %s", p.State, p.Reason)
	}
	if e, ok := p.RolledBack[canary]; !ok || e != "" {
		t.Errorf("the record has %q for the partitioned host %s's rollback, want it rolled back", e, canary)
	}
	if n := l.reverts(); n != 1 {
		extra = append(extra, fmt.Sprintf("%d reverts run, want 1", n))
	}
	check(t, l, p, row{
		fault:    "canary partitioned (link down) mid-observe, healed 3s into the rollback",
		expected: "rolled back (no readings); host retried until healed, then rolled back; 1 revert",
		observed: obs,
	}, extra...)
}

// testSlowLink makes the links of a third of the fleet slow and lossy,
// the phase-1 host and the held-back control among them, and pushes a
// good release.
func testSlowLink(t *testing.T) {
	t.Parallel()
	l := newLab(t, 6)
	addr := freePort(t, l.net.Gateway)
	w := windows{baseline: 3 * time.Second, observe: 5 * time.Second, sample: 1500 * time.Millisecond, rollbackTimeout: time.Minute}
	l.startCoordinator("coordinator", addr, "", w, nil)
	l.seed(addr)
	var how string
	for _, name := range []string{"www1", "www6"} {
		var err error
		if how, err = l.host(name).ns.Slow(t.Context(), 300*time.Millisecond, 0.05); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("slow links by %s", how)
	slowRTT, fastRTT := l.connectTime("www1"), l.connectTime("www2")
	if slowRTT < 500*time.Millisecond {
		t.Fatalf("a TCP connect to www1 took %s, to www2 %s: the link is not slow", slowRTT, fastRTT)
	}
	good := l.release("r2-good", 0)
	l.upload(addr, good)
	began := time.Now()
	p, err := l.api(addr).StartPush(t.Context(), good.revision, good.sha256, "faults")
	if err != nil {
		t.Fatal(err)
	}
	p = l.watch([]string{addr}, p.ID, 90*time.Second, func(p *rollback.Push) bool { return p.State.Done() })
	if p.State != rollback.StateLive {
		t.Errorf("push ended %s, want live (a false rollback): %s", p.State, p.Reason)
	}
	check(t, l, p, row{
		fault:    "2 of 6 links (www1 canary, www6 control) 300ms delay, 5% loss each way",
		expected: "live on all 6, no false rollback",
		observed: fmt.Sprintf("%s on %d hosts in %.1fs; %d reverts (TCP connect %.0fms slow, %.1fms fast)", p.State, p.HostsDone(), time.Since(began).Seconds(),
			l.reverts(), ms(slowRTT), ms(fastRTT)),
	})
}

// testLeaderPartitioned runs two coordinators on one MySQL store: the
// leader, in a namespace of its own, is cut off from MySQL while it
// observes a bad release's first phase; the standby must take over and
// finish the rollback, once.
func testLeaderPartitioned(t *testing.T) {
	t.Parallel()
	if _, _, err := mariadb.Binaries(); err != nil {
		t.Skipf("needs MariaDB's server: %v", err)
	}
	dbDir, err := os.MkdirTemp("", "immune-faults-db-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dbDir) })
	srv, err := mariadb.Start(t.Context(), dbDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	l := newLab(t, 4)
	dbAddr := relay(t, l.net.Gateway+":0", srv.Addr())
	dsn := fmt.Sprintf("%s:%s@tcp(%s)/%s", mariadb.User, mariadb.Password, dbAddr, mariadb.Database)
	leaderNS, err := l.net.AddHost(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	w := windows{baseline: time.Second, observe: 4 * time.Second, sample: 500 * time.Millisecond, rollbackTimeout: time.Minute}
	leader := leaderNS.Addr + ":5680"
	_, leaderLog := l.startCoordinator("leader", leader, dsn, w, leaderNS)
	waitLog(t, leaderLog, "leading: this coordinator drives pushes", 20*time.Second)
	standby := freePort(t, l.net.Gateway)
	_, standbyLog := l.startCoordinator("standby", standby, dsn, w, nil)
	waitLog(t, standbyLog, "standby: waiting for the leader lock", 20*time.Second)
	l.seed(leader)
	bad := l.release("r2-bad", 100)
	// Artifacts are each coordinator's own: the standby needs it to deploy.
	l.upload(leader, bad)
	l.upload(standby, bad)
	p, err := l.api(leader).StartPush(t.Context(), bad.revision, bad.sha256, "faults")
	if err != nil {
		t.Fatal(err)
	}
	coords := []string{standby, leader}
	p = l.watch(coords, p.ID, 30*time.Second, func(p *rollback.Push) bool {
		return p.State == rollback.StateObserving || p.State.Done()
	})
	if p.State != rollback.StateObserving {
		t.Fatalf("push %s never observed phase 1: %s%s", p.ID, p.State, events(p))
	}
	if err := leaderNS.Blackhole(t.Context(), l.net.Gateway); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	p = l.watch([]string{standby}, p.ID, 75*time.Second, func(p *rollback.Push) bool { return p.State.Done() })
	took := time.Since(cut)
	if err := leaderNS.Unblackhole(t.Context(), l.net.Gateway); err != nil {
		t.Fatal(err)
	}
	lost := logHas(leaderLog, "lost the leader lock") || logHas(leaderLog, "standby: waiting for the leader lock")
	led := logHas(standbyLog, "leading: this coordinator drives pushes")
	if !led {
		t.Errorf("the standby never took the lead: %s", tail(standbyLog))
	}
	if p.State != rollback.StateRolledBack {
		t.Errorf("push ended %s, want rolled_back: %s", p.State, p.Reason)
	}
	var extra []string
	if n := l.reverts(); n != 1 {
		extra = append(extra, fmt.Sprintf("%d reverts run, want 1", n))
	}
	locks, err := l.api(standby).Locks(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if locks.Push != "" || locks.Commit == nil || locks.Commit.Push != p.ID {
		extra = append(extra, fmt.Sprintf("locks after the push: push %q, commit %+v", locks.Push, locks.Commit))
	}
	check(t, l, p, row{
		fault:    "leading coordinator cut from MySQL (blackhole route) while observing a bad phase 1",
		expected: "leader stops; standby takes the lock, resumes, rolls back; 1 revert, commit lock set",
		observed: fmt.Sprintf("%s %.1fs after the cut; leader stepped down: %v; standby led: %v; %d revert", p.State, took.Seconds(), lost, led, l.reverts()),
	}, extra...)
}

// connectTime is the fastest of three TCP connects to a host's agent: a
// round trip on its link.
func (l *lab) connectTime(name string) time.Duration {
	best := time.Hour
	for range 3 {
		began := time.Now()
		c, err := net.DialTimeout("tcp", l.host(name).addr, 5*time.Second)
		if err != nil {
			continue
		}
		c.Close()
		best = min(best, time.Since(began))
	}
	return best
}

func (l *lab) host(name string) *agentHost {
	for _, h := range l.hosts {
		if h.name == name {
			return h
		}
	}
	l.t.Fatalf("no host %s", name)
	return nil
}

func short(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}

func logHas(path, s string) bool {
	b, _ := os.ReadFile(path)
	return strings.Contains(string(b), s)
}

// waitLog waits until the log has s.
func waitLog(t *testing.T, path, s string, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	for !logHas(path, s) {
		select {
		case <-ctx.Done():
			t.Fatalf("%s never logged %q: %s", filepath.Base(filepath.Dir(path)), s, tail(path))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
