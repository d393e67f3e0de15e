package rollback

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/immune-ops/immune/agentapi"
	"github.com/immune-ops/immune/conf"
	"github.com/immune-ops/immune/fixtures/testpki"
)

// standIn is an agent's API in memory: the coordinator's side of the
// protocol is what these tests drive. Gauges depend on the release the host
// runs, as a real app's do; the end-to-end tests run real agents.
type standIn struct {
	name, hostType string
	mu             sync.Mutex
	current, prev  string
	deploys        int
	// gauges gives the host's gauges for a release and a sample number.
	gauges  func(host, hostType, release string, n int) map[string]float64
	samples int
	down    bool
	// refuseRollback answers rollbacks 404, as an agent without the release does.
	refuseRollback bool
	rollbacks      int
	// busy answers this many deploys 409, as an agent whose deploy from
	// before a coordinator restart still runs.
	busy int
	// diesOnRelease: the host stops answering once it runs a release other
	// than v1, and does not come back.
	diesOnRelease bool
}

func (a *standIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	reply := func(v any) { json.NewEncoder(w).Encode(v) }
	release := func() agentapi.Release { return agentapi.Release{Current: a.current, Previous: a.prev} }
	switch r.URL.Path {
	case agentapi.SnapshotPath:
		a.samples++
		snap := agentapi.Snapshot{Host: a.name, HostType: a.hostType, Gauges: map[string]agentapi.Gauge{}}
		for k, v := range a.gauges(a.name, a.hostType, a.current, a.samples) {
			snap.Gauges[k] = agentapi.Gauge{Value: v}
		}
		reply(snap)
	case agentapi.ReleasePath:
		reply(release())
	case agentapi.DeployPath:
		if a.busy > 0 {
			a.busy--
			http.Error(w, "another deploy is running", http.StatusConflict)
			return
		}
		var req agentapi.DeployRequest
		json.NewDecoder(r.Body).Decode(&req)
		if req.Revision != a.current {
			a.prev, a.current = a.current, req.Revision
			a.deploys++
		}
		reply(release())
		a.down = a.diesOnRelease
	case agentapi.RollbackPath:
		var req agentapi.RollbackRequest
		json.NewDecoder(r.Body).Decode(&req)
		a.rollbacks++
		if a.refuseRollback {
			http.Error(w, fmt.Sprintf("rollback to %s: %s is not unpacked here", req.To, req.To), http.StatusNotFound)
			return
		}
		if req.To != a.current {
			a.prev, a.current = a.current, req.To
		}
		reply(release())
	default:
		http.NotFound(w, r)
	}
}

type testFleet struct {
	cfg    *conf.Fleet
	agents map[string]*standIn
	c      *Coordinator
	dir    string
	// checksAgents answer the fleet page's reads (newPagesFleet).
	checksAgents []*checksAgent
}

// newTestFleet starts stand-in agents for hosts "name:type" all on release
// "v1", and a coordinator over them with fast windows.
func newTestFleet(t *testing.T, hosts []string, limits string, gauges func(host, hostType, release string, n int) map[string]float64) *testFleet {
	t.Helper()
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	os.WriteFile(token, []byte("secret\n"), 0o600)
	var yaml strings.Builder
	fmt.Fprintf(&yaml, "listen: 127.0.0.1:0\ndata_dir: %s\ndeploy_token_file: %s\nagent_token_file: %s\n", dir, token, token)
	yaml.WriteString("windows: {baseline: 300ms, observe: 800ms, sample_interval: 100ms, max_wait: 500ms}\nbreach_samples: 3\nhosts:\n")
	f := &testFleet{agents: map[string]*standIn{}, dir: dir}
	for _, h := range hosts {
		name, hostType, _ := strings.Cut(h, ":")
		a := &standIn{name: name, hostType: hostType, current: "v1", gauges: gauges}
		srv := httptest.NewServer(a)
		t.Cleanup(srv.Close)
		f.agents[name] = a
		fmt.Fprintf(&yaml, "  - {name: %s, host_type: %s, address: %q}\n", name, hostType, strings.TrimPrefix(srv.URL, "http://"))
	}
	yaml.WriteString(limits)
	cfg, err := conf.ParseFleet("fleet.yaml", []byte(yaml.String()))
	if err != nil {
		t.Fatal(err)
	}
	f.cfg = cfg
	f.c = f.coordinator(t, context.Background())
	return f
}

// coordinator makes a coordinator over the fleet's store, as after a (re)start.
func (f *testFleet) coordinator(t *testing.T, ctx context.Context) *Coordinator {
	t.Helper()
	store, err := OpenFileStore(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	agents, err := NewAgentClient(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &Coordinator{
		Fleet: f.cfg, Store: store, Agents: agents, Context: ctx,
		Log:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		ArtifactURL: func(_, sum string) string { return "http://artifacts.invalid/" + sum },
		Revert: func(_ context.Context, p *Push) (string, error) {
			return "Revert \"" + p.Revision + "\"\n", nil
		},
	}
}

// wait waits for the push to end and returns it as stored.
func (f *testFleet) wait(t *testing.T, id string) *Push {
	t.Helper()
	f.c.Wait()
	p, err := f.c.Store.Push(id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const sha = "0000000000000000000000000000000000000000000000000000000000000000"

const phpLimits = `limits:
  - gauge: php_errors
    host_types: [www]
    rise: 10
  - gauge: loadavg1
    max: 6
`

// badOnWWW: the release "bad" makes PHP throw fatal errors on web hosts.
func badOnWWW(_, hostType, release string, _ int) map[string]float64 {
	g := map[string]float64{"php_errors": 0.2, "loadavg1": 1}
	if release == "bad" && hostType == "www" {
		g["php_errors"] = 41
	}
	return g
}

var twentyHosts = func() []string {
	var hs []string
	for i := 1; i <= 12; i++ {
		hs = append(hs, fmt.Sprintf("www%02d:www", i))
	}
	for i := 1; i <= 4; i++ {
		hs = append(hs, fmt.Sprintf("chat%d:chat", i))
	}
	return append(hs, "db1:db", "db2:db", "mc1:memcache", "mc2:memcache")
}()

func TestGoodPushGoesLive(t *testing.T) {
	f := newTestFleet(t, twentyHosts, phpLimits, badOnWWW)
	p, err := f.c.Start("good", sha, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(p.Phases[0].Hosts); n != 4 {
		t.Errorf("phase 1 has %d hosts, want one of each of the 4 types (%v)", n, p.Phases[0].Hosts)
	}
	p = f.wait(t, p.ID)
	if p.State != StateLive || p.HostsDone() != 20 {
		t.Fatalf("push %s, %d hosts; events %v", p.State, p.HostsDone(), p.Events)
	}
	for name, a := range f.agents {
		if a.current != "good" {
			t.Errorf("%s runs %q", name, a.current)
		}
	}
	if l, _ := f.c.Store.Locks(); l.Push != "" || l.Commit != nil {
		t.Errorf("locks after a good push: %+v", l)
	}
}

func TestBadPushCaughtInPhaseOne(t *testing.T) {
	f := newTestFleet(t, twentyHosts, phpLimits, badOnWWW)
	p, err := f.c.Start("bad", sha, "bob")
	if err != nil {
		t.Fatal(err)
	}
	p = f.wait(t, p.ID)
	if p.State != StateRolledBack || p.Phase != 0 {
		t.Fatalf("push %s in phase %d; events %v", p.State, p.Phase+1, p.Events)
	}
	if !strings.HasPrefix(p.Reason, "phase 1: php_errors on www rose 20400% against the hosts still on the old release (41 vs 0.2 a sample") {
		t.Errorf("reason %q", p.Reason)
	}
	touched := 0
	for name, a := range f.agents {
		if a.current != "v1" {
			t.Errorf("%s left on %q", name, a.current)
		}
		if a.deploys > 0 {
			touched++
		}
	}
	if touched != 4 || len(p.Touched) != 4 {
		t.Errorf("%d hosts touched (%v), want the 4 of phase 1", touched, p.Touched)
	}
	if p.Revert == nil || p.Revert.Output != "Revert \"bad\"\n" {
		t.Errorf("revert %+v", p.Revert)
	}
	l, _ := f.c.Store.Locks()
	if l.Commit == nil || l.Commit.Revision != "bad" || l.Push != "" {
		t.Fatalf("locks %+v", l)
	}
	// Locked: the next push is refused until a person clears the lock.
	if _, err := f.c.Start("next", sha, "carol"); err == nil || !strings.Contains(err.Error(), "pushes are blocked") {
		t.Errorf("push while locked: %v", err)
	}
	if err := f.c.Unlock("dave", ""); err == nil {
		t.Error("unlock without a reason")
	}
	if err := f.c.Unlock("dave", "fixed the avatar bug in r124"); err != nil {
		t.Fatal(err)
	}
	l, _ = f.c.Store.Locks()
	if l.Commit != nil || len(l.Cleared) != 1 || l.Cleared[0].ClearedBy != "dave" {
		t.Errorf("locks after unlock %+v", l)
	}
}

func TestBadPushCaughtOnlyInPhaseTwo(t *testing.T) {
	// Only the chat hosts beyond the first suffer: phase 1 passes.
	gauges := func(host, hostType, release string, _ int) map[string]float64 {
		g := map[string]float64{"loadavg1": 1}
		if release == "bad" && hostType == "chat" && host != "chat1" {
			g["loadavg1"] = 9
		}
		return g
	}
	f := newTestFleet(t, twentyHosts, "limits:\n  - gauge: loadavg1\n    host_types: [chat]\n    max: 8\n", gauges)
	p, _ := f.c.Start("bad", sha, "erin")
	p = f.wait(t, p.ID)
	// Each of the four types holds one host back as the control.
	if p.State != StateRolledBack || p.Phase != 1 || len(p.Touched) != 16 {
		t.Fatalf("push %s in phase %d, %d touched: %s", p.State, p.Phase+1, len(p.Touched), p.Reason)
	}
	if !strings.HasPrefix(p.Reason, "phase 2: loadavg1 on chat2 is 9, above the limit 8") {
		t.Errorf("reason %q", p.Reason)
	}
	for name, a := range f.agents {
		if a.current != "v1" {
			t.Errorf("%s left on %q", name, a.current)
		}
	}
}

func TestSpikeDoesNotRollBack(t *testing.T) {
	spike := func(_, _, release string, n int) map[string]float64 {
		g := map[string]float64{"loadavg1": 1}
		if release == "spiky" && n%3 == 0 {
			g["loadavg1"] = 50
		}
		return g
	}
	f := newTestFleet(t, []string{"www1:www", "www2:www"}, "limits:\n  - gauge: loadavg1\n    max: 6\n", spike)
	p, _ := f.c.Start("spiky", sha, "frank")
	if p = f.wait(t, p.ID); p.State != StateLive {
		t.Fatalf("push %s: %s", p.State, p.Reason)
	}
}

func TestBusinessGaugeFalls(t *testing.T) {
	regs := func(_, _, release string, _ int) map[string]float64 {
		if release == "bad" {
			return map[string]float64{"registrations": 40}
		}
		return map[string]float64{"registrations": 100}
	}
	f := newTestFleet(t, []string{"www1:www", "www2:www"}, "limits:\n  - gauge: registrations\n    aggregate: {fall: 20%}\n", regs)
	p, _ := f.c.Start("bad", sha, "gina")
	p = f.wait(t, p.ID)
	if p.State != StateRolledBack || !strings.Contains(p.Reason, "registrations on www fell 60% against the hosts still on the old release (40 vs 100 a sample") {
		t.Fatalf("push %s: %q", p.State, p.Reason)
	}
}

func TestMissingGaugePolicies(t *testing.T) {
	none := func(_, _, _ string, _ int) map[string]float64 { return map[string]float64{"loadavg1": 1} }
	for _, tt := range []struct {
		policy string
		want   State
	}{{"fail", StateRolledBack}, {"ignore", StateLive}, {"wait", StateRolledBack}} {
		t.Run(tt.policy, func(t *testing.T) {
			f := newTestFleet(t, []string{"www1:www"}, "limits:\n  - gauge: orders\n    min: 1\n    missing: "+tt.policy+"\n", none)
			p, _ := f.c.Start("r2", sha, "hank")
			if p = f.wait(t, p.ID); p.State != tt.want {
				t.Fatalf("missing: %s gave %s (%s)", tt.policy, p.State, p.Reason)
			}
			if tt.policy == "wait" && !strings.Contains(p.Reason, "no reading after waiting") {
				t.Errorf("reason %q", p.Reason)
			}
		})
	}
}

func TestTwoPushesAtOnce(t *testing.T) {
	f := newTestFleet(t, []string{"www1:www"}, phpLimits, badOnWWW)
	p, err := f.c.Start("one", sha, "ivy")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.Start("two", sha, "jack"); err == nil || !strings.Contains(err.Error(), "is in progress") {
		t.Errorf("second push: %v", err)
	}
	f.wait(t, p.ID)
}

func TestCoordinatorRestartResumesPush(t *testing.T) {
	// The release shows its harm only once the coordinator has been killed
	// mid-observation, so that the restarted one must catch it.
	var harm atomic.Bool
	f := newTestFleet(t, twentyHosts, phpLimits, func(host, hostType, release string, n int) map[string]float64 {
		if !harm.Load() {
			release = "good"
		}
		return badOnWWW(host, hostType, release, n)
	})
	ctx, cancel := context.WithCancel(context.Background())
	f.c = f.coordinator(t, ctx)
	p, err := f.c.Start("bad", sha, "kim")
	if err != nil {
		t.Fatal(err)
	}
	// Killed while observing phase 1, with hosts on the bad release.
	deadline := time.Now().Add(10 * time.Second)
	for {
		stored, _ := f.c.Store.Push(p.ID)
		if stored != nil && stored.State == StateObserving {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("push never reached observing")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	f.c.Wait()
	harm.Store(true)

	f.c = f.coordinator(t, context.Background())
	if err := f.c.Resume(); err != nil {
		t.Fatal(err)
	}
	p = f.wait(t, p.ID)
	if p.State != StateRolledBack {
		t.Fatalf("after restart: %s (%s)", p.State, p.Reason)
	}
	for name, a := range f.agents {
		if a.current != "v1" {
			t.Errorf("%s left on %q", name, a.current)
		}
	}
	if !strings.Contains(fmt.Sprint(p.Events), "coordinator restarted") {
		t.Errorf("events do not say it resumed: %v", p.Events)
	}
}

func TestAgentDownDuringRollbackIsRetried(t *testing.T) {
	f := newTestFleet(t, []string{"www1:www", "www2:www"}, phpLimits, badOnWWW)
	p, _ := f.c.Start("bad", sha, "lee")
	// www1 stops answering once it runs the bad release, and comes back later.
	go func() {
		a := f.agents["www1"]
		for {
			a.mu.Lock()
			if a.current == "bad" {
				a.down = true
				a.mu.Unlock()
				break
			}
			a.mu.Unlock()
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(2500 * time.Millisecond)
		a.mu.Lock()
		a.down = false
		a.mu.Unlock()
	}()
	p = f.wait(t, p.ID)
	if p.State != StateRolledBack || f.agents["www1"].current != "v1" {
		t.Fatalf("push %s, www1 on %q: %s", p.State, f.agents["www1"].current, p.Reason)
	}
}

// TestFirstPushRollsBackFromNothing: hosts that ran no release before a bad
// first push have nothing to switch back to; the push still ends, locked,
// rather than retrying the rollback for ever.
func TestFirstPushRollsBackFromNothing(t *testing.T) {
	f := newTestFleet(t, []string{"www1:www"}, phpLimits, badOnWWW)
	f.agents["www1"].current = ""
	p, _ := f.c.Start("bad", sha, "mo")
	p = f.wait(t, p.ID)
	if p.State != StateRolledBack || !strings.Contains(fmt.Sprint(p.Events), "www1 ran no release before this push") {
		t.Fatalf("push %s: %v", p.State, p.Events)
	}
	// It is a failure, not a success: the host still runs the release.
	if e := p.RolledBack["www1"]; e != noEarlierRelease {
		t.Errorf("rolled back www1: %q, want %q", e, noEarlierRelease)
	}
	if !strings.HasSuffix(p.Reason, "; still runs bad on hosts that had no earlier release: www1") {
		t.Errorf("reason %q", p.Reason)
	}
	if l, _ := f.c.Store.Locks(); l.Commit == nil || l.Commit.Reason != p.Reason || l.Push != "" {
		t.Errorf("locks %+v", l)
	}
}

// TestRollbackRefusedIsGivenUp: a host that refuses the rollback (404: the
// release is not unpacked there) is asked a few times, then recorded as a
// failure; the push reverts and locks rather than holding the push lock.
func TestRollbackRefusedIsGivenUp(t *testing.T) {
	f := newTestFleet(t, []string{"www1:www", "www2:www"}, phpLimits, badOnWWW)
	f.agents["www1"].refuseRollback = true
	var logs bytes.Buffer
	f.c.Log = slog.New(slog.NewJSONHandler(&logs, nil))
	p, _ := f.c.Start("bad", sha, "ola")
	p = f.wait(t, p.ID)
	// The log is as loud as the news: a rollback WARNs, a host left on
	// the bad release is an ERROR.
	levels := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var r struct{ Level, Msg string }
		json.Unmarshal([]byte(line), &r)
		levels[r.Msg] = r.Level
	}
	for prefix, want := range map[string]string{"phase 1: php_errors on www rose": "WARN", "rolled back on 0 of 1 hosts, FAILED on 1": "ERROR",
		"rollback FAILED on www1: refused 3 times": "ERROR", "push of bad by ola": "INFO"} {
		got := ""
		for msg, level := range levels {
			if strings.HasPrefix(msg, prefix) {
				got = level
			}
		}
		if got != want {
			t.Errorf("log %q at %q, want %s", prefix, got, want)
		}
	}
	if p.State != StateRolledBack {
		t.Fatalf("push %s: %s", p.State, p.Reason)
	}
	if a := f.agents["www1"]; a.current != "bad" || a.rollbacks != rollbackRefusals {
		t.Errorf("www1 on %q after %d rollbacks, want bad after %d", a.current, a.rollbacks, rollbackRefusals)
	}
	want := "www1 POST /api/v1/rollback: 404 Not Found: rollback to v1: v1 is not unpacked here"
	if e := p.RolledBack["www1"]; e != want {
		t.Errorf("rolled back www1: %q, want %q", e, want)
	}
	if !strings.HasPrefix(p.Reason, "phase 1: php_errors on www rose") || !strings.HasSuffix(p.Reason, "; rollback FAILED on www1: "+want) {
		t.Errorf("reason %q", p.Reason)
	}
	events := fmt.Sprint(p.Events)
	for _, e := range []string{"rollback FAILED on www1: refused 3 times", "rolled back on 0 of 1 hosts, FAILED on 1; reverting bad"} {
		if !strings.Contains(events, e) {
			t.Errorf("no event %q in %s", e, events)
		}
	}
	l, _ := f.c.Store.Locks()
	if l.Push != "" || l.Commit == nil || !strings.Contains(l.Commit.Reason, "rollback FAILED on www1") {
		t.Errorf("locks %+v", l)
	}
}

// tlsFleet is a fleet of www hosts, each with the extra fields given, and
// with the fleet's agent_tls line.
func tlsFleet(t *testing.T, dir, fleetTLS string, hosts map[string]string) *conf.Fleet {
	t.Helper()
	token := filepath.Join(dir, "token")
	os.WriteFile(token, []byte("secret\n"), 0o600)
	text := fmt.Sprintf("listen: 127.0.0.1:0\ndata_dir: %s\ndeploy_token_file: %s\nagent_token_file: %s\n%shosts:\n", dir, token, token, fleetTLS)
	for name, extra := range hosts {
		text += fmt.Sprintf("  - {name: %s, host_type: www, %s}\n", name, extra)
	}
	cfg, err := conf.ParseFleet("fleet.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// writeCA writes a CA certificate to a PEM file: the test server's own, or
// with other true, one that signed nothing.
func writeCA(t *testing.T, path string, cert *x509.Certificate, other bool) {
	t.Helper()
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	if other {
		certPEM = testpki.NewCA(t, testpki.Options{CommonName: "another CA"}).CertPEM
	}
	if err := os.WriteFile(path, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestAgentTLS: with agent_tls the coordinator speaks https to the agents
// and verifies them against ca_file; a host may override the fleet's.
func TestAgentTLS(t *testing.T) {
	for _, tt := range []struct {
		name      string
		fleetTLS  string // the fleet's agent_tls line
		hostTLS   string // the host's agent_tls field
		wantError string
	}{
		{name: "ca_file", fleetTLS: "agent_tls: {ca_file: {ca}}\n"},
		{name: "host overrides", fleetTLS: "agent_tls: {ca_file: {other}}\n", hostTLS: "agent_tls: {ca_file: {ca}}"},
		{name: "insecure", fleetTLS: "agent_tls: {insecure: true}\n"},
		{name: "wrong CA", fleetTLS: "agent_tls: {ca_file: {other}}\n",
			wantError: "www1 GET /api/v1/release: the agent's certificate does not verify for 127.0.0.1 against agent_tls.ca_file: "},
		{name: "plain http", fleetTLS: "", wantError: "400 Bad Request: Client sent an HTTP request to an HTTPS server."},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			a := &standIn{name: "www1", hostType: "www", current: "v1", gauges: badOnWWW}
			var plain int
			var mu sync.Mutex
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.TLS == nil {
					mu.Lock()
					plain++
					mu.Unlock()
				}
				a.ServeHTTP(w, r)
			}))
			// The refused handshakes are what the failing cases test.
			srv.Config.ErrorLog = log.New(io.Discard, "", 0)
			srv.StartTLS()
			t.Cleanup(srv.Close)
			ca, other := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "other.pem")
			writeCA(t, ca, srv.Certificate(), false)
			writeCA(t, other, srv.Certificate(), true)
			files := strings.NewReplacer("{ca}", ca, "{other}", other)
			host := fmt.Sprintf("address: %q", strings.TrimPrefix(srv.URL, "https://"))
			if tt.hostTLS != "" {
				host += ", " + files.Replace(tt.hostTLS)
			}
			cfg := tlsFleet(t, dir, files.Replace(tt.fleetTLS), map[string]string{"www1": host})
			agents, err := NewAgentClient(cfg)
			if err != nil {
				t.Fatal(err)
			}
			r, err := agents.Release(context.Background(), cfg.Hosts[0])
			if tt.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantError) {
					t.Fatalf("release: %v, want %q", err, tt.wantError)
				}
				return
			}
			if err != nil || r.Current != "v1" {
				t.Fatalf("release %+v: %v", r, err)
			}
			if _, err := agents.Rollback(context.Background(), cfg.Hosts[0], "v0"); err != nil {
				t.Fatal(err)
			}
			if a.current != "v0" || plain != 0 {
				t.Errorf("www1 on %q; %d requests in clear text", a.current, plain)
			}
		})
	}
}

// TestUnreadableHostIsNotDeployed: a host whose release cannot be read is
// not deployed to (it could not be put back): it is skipped, said so, and
// stays on its release, while a good push goes on without it.
func TestUnreadableHostIsNotDeployed(t *testing.T) {
	f := newTestFleet(t, []string{"www1:www", "www2:www", "www3:www"}, phpLimits, badOnWWW)
	f.cfg.Phases = []conf.Percent{100}
	f.c = f.coordinator(t, context.Background())
	f.agents["www2"].down = true
	p, _ := f.c.Start("good", sha, "nia")
	p = f.wait(t, p.ID)
	if p.State != StateLive || f.agents["www2"].deploys != 0 || f.agents["www2"].current != "v1" || f.agents["www1"].current != "good" {
		t.Fatalf("push %s (%s); www2 deploys %d, www1 on %q", p.State, p.Reason, f.agents["www2"].deploys, f.agents["www1"].current)
	}
	if !strings.Contains(fmt.Sprint(p.Events), "www2 skipped: not answering before the deploy") {
		t.Errorf("events %v", p.Events)
	}
}
