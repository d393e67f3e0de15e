package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/immune-ops/immune/agentapi"
	"github.com/immune-ops/immune/conf"
	"github.com/immune-ops/immune/rollback"
)

// standInMode runs simulated agents in a process of their own, so that the
// coordinator's memory is measured alone.
const standInMode = "standin-fleet"

// hostsPerListener: simulated hosts share loopback listeners, told apart by
// a path prefix, as 10,000 listeners and their connections would pass the
// machine's limit on open files.
const hostsPerListener = 20

// runStandIns serves n simulated agents until stdin closes: snapshots whose
// php_errors rise on the release "bad", and deploys and rollbacks that
// only switch a name (a no-op activation).
func runStandIns(args []string) int {
	n, _ := strconv.Atoi(args[0])
	type host struct {
		mu            sync.Mutex
		current, prev string
	}
	hosts := make([]host, n)
	for i := range hosts {
		hosts[i].current = "v1"
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		idx, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/h"), "/")
		i, err := strconv.Atoi(idx)
		if err != nil || i < 0 || i >= n {
			http.NotFound(w, r)
			return
		}
		h := &hosts[i]
		h.mu.Lock()
		defer h.mu.Unlock()
		switch "/" + rest {
		case agentapi.SnapshotPath:
			php := 0.2
			if h.current == "bad" {
				php = 50
			}
			json.NewEncoder(w).Encode(agentapi.Snapshot{Gauges: map[string]agentapi.Gauge{"php_errors": {Value: php}, "loadavg1": {Value: 1}}})
			return
		case agentapi.DeployPath:
			var req agentapi.DeployRequest
			json.NewDecoder(r.Body).Decode(&req)
			if req.Revision != h.current {
				h.prev, h.current = h.current, req.Revision
			}
		case agentapi.RollbackPath:
			var req agentapi.RollbackRequest
			json.NewDecoder(r.Body).Decode(&req)
			if req.To != h.current {
				h.prev, h.current = h.current, req.To
			}
		}
		json.NewEncoder(w).Encode(agentapi.Release{Current: h.current, Previous: h.prev})
	})
	out := bufio.NewWriter(os.Stdout)
	for l := 0; l < (n+hostsPerListener-1)/hostsPerListener; l++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		go http.Serve(ln, handler)
		fmt.Fprintln(out, ln.Addr())
	}
	out.Flush()
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// standInFleet starts n simulated agents and returns their hosts.
func standInFleet(ctx context.Context, n int, tokenFile string) ([]conf.Host, func(), error) {
	self, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.CommandContext(ctx, self, standInMode, strconv.Itoa(n))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	stop := func() { stdin.Close(); cmd.Wait() }
	sc := bufio.NewScanner(stdout)
	var addrs []string
	for len(addrs) < (n+hostsPerListener-1)/hostsPerListener && sc.Scan() {
		addrs = append(addrs, sc.Text())
	}
	if len(addrs) == 0 {
		stop()
		return nil, nil, fmt.Errorf("simulated agents did not start")
	}
	hosts := make([]conf.Host, n)
	types := []string{"www", "www", "www", "chat", "db", "memcache"}
	for i := range hosts {
		hosts[i] = conf.Host{Name: fmt.Sprintf("h%05d", i), HostType: types[i%len(types)],
			Address: fmt.Sprintf("%s/h%d", addrs[i/hostsPerListener], i), TokenFile: tokenFile}
	}
	return hosts, stop, nil
}

// coordinatorTable is issue 4's table: one snapshot of 1,000 and 10,000
// simulated hosts, both deploy phases on 1,000 hosts with a no-op
// activation, the time from a breach to every touched host rolled back, and
// the coordinator's memory at 10,000 hosts.
func coordinatorTable(ctx context.Context, w io.Writer) error {
	dir, err := os.MkdirTemp("", "benchtable-coordinator-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	token := dir + "/token"
	if err := os.WriteFile(token, []byte("bench\n"), 0o600); err != nil {
		return err
	}
	// Each window is one round of samples: the sample interval (the time a
	// host has to answer) is longer than the windows.
	coordinator := func(hosts []conf.Host, phases []conf.Percent) (*rollback.Coordinator, error) {
		f := &conf.Fleet{Hosts: hosts, DeployTokenFile: token, AgentTokenFile: token, Phases: phases, BreachSamples: 1,
			Windows: conf.Windows{Baseline: conf.Duration(time.Millisecond), Observe: conf.Duration(time.Millisecond),
				SampleInterval: conf.Duration(5 * time.Second), MaxWait: conf.Duration(time.Millisecond)},
			Limits: []conf.Limit{{Gauge: "php_errors", Rise: &conf.Change{Value: 10}, Missing: conf.MissingFail}}}
		store, err := rollback.OpenFileStore(fmt.Sprintf("%s/store-%d-%d", dir, len(hosts), time.Now().UnixNano()))
		if err != nil {
			return nil, err
		}
		agents, err := rollback.NewAgentClient(f)
		if err != nil {
			return nil, err
		}
		return &rollback.Coordinator{Fleet: f, Store: store, Agents: agents, Context: ctx,
			Log:         slog.New(slog.NewTextHandler(io.Discard, nil)),
			ArtifactURL: func(string, string) string { return "http://127.0.0.1:1/none" },
			Revert:      func(context.Context, *rollback.Push) (string, error) { return "", nil }}, nil
	}
	type row struct{ what, measured, target string }
	var rows []row
	for _, n := range []int{1000, 10000} {
		hosts, stop, err := standInFleet(ctx, n, token)
		if err != nil {
			return err
		}
		c, err := coordinator(hosts, []conf.Percent{5, 100})
		if err != nil {
			stop()
			return err
		}
		c.Snapshot(ctx) // connections up, as during a push
		began := time.Now()
		samples, err := c.Snapshot(ctx)
		took := time.Since(began)
		if err != nil {
			stop()
			return err
		}
		target := ""
		if n == 10000 {
			target = "< 3s"
			runtime.GC()
			rss, _ := rssBytes(os.Getpid())
			rows = append(rows, row{fmt.Sprintf("snapshot of %d hosts", n), fmt.Sprintf("%s (%d answered)", took.Round(time.Millisecond), answered(samples)), target})
			rows = append(rows, row{"coordinator RSS at 10,000 hosts", mb(rss), "< 200.0 MB"})
			stop()
			continue
		}
		rows = append(rows, row{fmt.Sprintf("snapshot of %d hosts", n), fmt.Sprintf("%s (%d answered)", took.Round(time.Millisecond), answered(samples)), target})

		// Both phases of a good push, then a bad one on all 1,000 at once.
		p, err := c.Start("good", strings.Repeat("0", 64), "bench")
		if err != nil {
			stop()
			return err
		}
		c.Wait()
		p, _ = c.Store.Push(p.ID)
		deploy := phaseTime(p, "deploying phase 1", "live on all")
		rows = append(rows, row{"push of 1,000 hosts, both phases, no-op activation", fmt.Sprintf("%s (%s)", p.Finished.Sub(p.Created).Round(time.Millisecond), p.State), ""})
		rows = append(rows, row{"  of which deploying and judging", deploy.Round(time.Millisecond).String(), ""})
		bad, err := coordinator(hosts, []conf.Percent{100})
		if err != nil {
			stop()
			return err
		}
		p, err = bad.Start("bad", strings.Repeat("0", 64), "bench")
		if err != nil {
			stop()
			return err
		}
		bad.Wait()
		p, _ = bad.Store.Push(p.ID)
		rows = append(rows, row{"breach to every touched host rolled back, 1,000 hosts", phaseTime(p, "rolling back", "rolled back on").Round(time.Millisecond).String(), "< 5s"})
		stop()
	}
	fmt.Fprintf(w, "\nCoordinator: simulated agents in another process (%d per loopback listener), up to 256 calls in flight\n\n", hostsPerListener)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "measure\tmeasured\ttarget\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t\n", r.what, r.measured, r.target)
	}
	return tw.Flush()
}

func answered(samples map[string][]rollback.Sample) int {
	n := 0
	for _, ss := range samples {
		if len(ss) > 0 && len(ss[0].Gauges) > 0 {
			n++
		}
	}
	return n
}

// phaseTime is the time from the first event containing from to the first
// later one containing to.
func phaseTime(p *rollback.Push, from, to string) time.Duration {
	var start time.Time
	for _, e := range p.Events {
		switch {
		case start.IsZero() && strings.Contains(e.Msg, from):
			start = e.At
		case !start.IsZero() && strings.Contains(e.Msg, to):
			return e.At.Sub(start)
		}
	}
	return 0
}
