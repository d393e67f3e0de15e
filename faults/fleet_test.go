package faults

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/immune-ops/immune/agentapi"
	"github.com/immune-ops/immune/rollback"
	"github.com/immune-ops/immune/rollback/client"
)

// The binaries TestMain builds.
var agentBin, coordinatorBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "immune-faults-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	agentBin, coordinatorBin = filepath.Join(dir, "immune-agent"), filepath.Join(dir, "immune-coordinator")
	for pkg, out := range map[string]string{"../cmd/immune-agent": agentBin, "../cmd/immune-coordinator": coordinatorBin} {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", pkg, err, b)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// needNetns skips the test, saying why, where network namespaces cannot
// be made (not root, no CAP_NET_ADMIN, a kernel or container that refuses).
func needNetns(t *testing.T) {
	t.Helper()
	if err := Supported(t.Context()); err != nil {
		t.Skipf("fault tests need network namespaces (root or CAP_NET_ADMIN, iproute2); this machine refuses: %v", err)
	}
	if err := RemoveStale(t.Context()); err != nil {
		t.Logf("remove stale namespaces of dead test runs: %v", err)
	}
}

// Windows of a lab's pushes.
type windows struct {
	baseline, observe, sample time.Duration
	rollbackTimeout           time.Duration
}

// lab is a fleet on a test network: agents, each in a namespace of its
// own, and a coordinator in the root namespace on the bridge's address.
type lab struct {
	t      *testing.T
	net    *Net
	dir    string
	hosts  []*agentHost
	tokens map[string]string // operator, deploy, agent
	http   *http.Client
	base   release
}

type agentHost struct {
	name string
	ns   *Host
	addr string // the API, ip:port
	root string // the deploy root
	log  string
	proc *proc
}

// release is an artifact whose check.sh prints the app_errors gauge.
type release struct {
	revision, sha256, path string
}

// proc is a process a lab started; it is killed with its group at cleanup.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func start(t *testing.T, cmd *exec.Cmd, logPath string) *proc {
	t.Helper()
	log, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		t.Fatalf("start %s: %v", cmd.Args, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		log.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop() })
	return p
}

// stop sends SIGTERM to the process group, SIGKILL after 5 s, and waits.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// newLab makes the network and n agents in namespaces, and writes the
// tokens and the base release; the coordinators are the scenario's.
func newLab(t *testing.T, n int) *lab {
	t.Helper()
	ctx := t.Context()
	nw, err := NewNet(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := nw.Close(); err != nil {
			t.Errorf("remove test network: %v", err)
		}
	})
	// Not t.TempDir: the agents run as root and leave files the test's
	// cleanup must remove all the same; and socket paths stay short.
	dir, err := os.MkdirTemp("", "immune-faults-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs kept in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	l := &lab{t: t, net: nw, dir: dir, tokens: map[string]string{}, http: &http.Client{Timeout: 10 * time.Second}}
	t.Cleanup(l.http.CloseIdleConnections)
	for _, name := range []string{"operator", "deploy", "agent"} {
		l.tokens[name] = rand.Text()
		if err := os.WriteFile(l.tokenFile(name), []byte(l.tokens[name]+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	l.base = l.release("r1-base", 0)
	for i := range n {
		ns, err := nw.AddHost(ctx)
		if err != nil {
			t.Fatal(err)
		}
		h := &agentHost{name: fmt.Sprintf("www%d", i+1), ns: ns, addr: net.JoinHostPort(ns.Addr, "5667")}
		hdir := filepath.Join(dir, h.name)
		h.root, h.log = filepath.Join(hdir, "www"), filepath.Join(hdir, "agent.log")
		if err := os.MkdirAll(hdir, 0o755); err != nil {
			t.Fatal(err)
		}
		cfg := filepath.Join(hdir, "agent.yaml")
		if err := os.WriteFile(cfg, []byte(l.agentConfig(h, hdir)), 0o600); err != nil {
			t.Fatal(err)
		}
		h.proc = start(t, ns.Command(agentBin, "--config", cfg), h.log)
		l.hosts = append(l.hosts, h)
	}
	for _, h := range l.hosts {
		l.waitHealthy(h.addr, h.proc, h.log)
	}
	return l
}

func (l *lab) tokenFile(name string) string { return filepath.Join(l.dir, name+".token") }

// agentConfig runs check.sh of the current release every second as the
// app_errors gauge: what the release does shows in its own check.
func (l *lab) agentConfig(h *agentHost, dir string) string {
	q := strconv.Quote
	return fmt.Sprintf(`host: %s
host_type: www
data_dir: %s
max_concurrent: 2
checks:
  - name: check_app
    plugin: /bin/sh
    args: [%s]
    interval: 1s
    max_check_attempts: 1
gauges:
  - {name: app_errors, check: check_app, label: app_errors}
http:
  listen: %s
  token_file: %s
deploy:
  root: %s
  keep: 3
  token_file: %s
`, h.name, q(filepath.Join(dir, "data")), q(filepath.Join(h.root, "current", "check.sh")), q(h.addr),
		q(l.tokenFile("agent")), q(h.root), q(l.tokenFile("deploy")))
}

// coordinatorConfig is fleet.yaml for a coordinator listening on listen,
// with mysql as its store when set. The revert appends the revision to
// reverts.log, which counts the reverts run.
func (l *lab) coordinatorConfig(name, listen, mysql string, w windows) string {
	q := strconv.Quote
	var b strings.Builder
	// The namespaces are a private network the test made: releases may
	// cross it over plain http.
	fmt.Fprintf(&b, "allow_plain_http: true\nlisten: %s\ndata_dir: %s\noperator_token_file: %s\ndeploy_token_file: %s\nagent_token_file: %s\n",
		q(listen), q(filepath.Join(l.dir, name, "data")), q(l.tokenFile("operator")), q(l.tokenFile("deploy")), q(l.tokenFile("agent")))
	if mysql != "" {
		fmt.Fprintf(&b, "mysql: %s\n", q(mysql))
	}
	b.WriteString("hosts:\n")
	for _, h := range l.hosts {
		fmt.Fprintf(&b, "  - {name: %s, address: %s, host_type: www}\n", h.name, q(h.addr))
	}
	fmt.Fprintf(&b, `phases: [5%%, 100%%]
windows:
  baseline: %s
  observe: %s
  sample_interval: %s
  warmup: 0s
breach_samples: 3
limits:
  - {gauge: app_errors, max: 10}
  - {gauge: loadavg1, max: 1000}
rollback:
  timeout: %s
revert:
  repo: %s
  command: [/bin/sh, -c, 'echo "$0" >> %s', "{revision}"]
  push: []
  timeout: 10s
`, w.baseline, w.observe, w.sample, w.rollbackTimeout, q(l.dir), filepath.Join(l.dir, "reverts.log"))
	return b.String()
}

// startCoordinator writes the config and starts a coordinator, in the
// root namespace or in ns, and waits until it answers.
func (l *lab) startCoordinator(name, listen, mysql string, w windows, ns *Host) (*proc, string) {
	l.t.Helper()
	if err := os.MkdirAll(filepath.Join(l.dir, name), 0o700); err != nil {
		l.t.Fatal(err)
	}
	cfg := filepath.Join(l.dir, name, "fleet.yaml")
	if err := os.WriteFile(cfg, []byte(l.coordinatorConfig(name, listen, mysql, w)), 0o600); err != nil {
		l.t.Fatal(err)
	}
	cmd := exec.Command(coordinatorBin, "--config", cfg)
	if ns != nil {
		cmd = ns.Command(coordinatorBin, "--config", cfg)
	}
	log := filepath.Join(l.dir, name, "coordinator.log")
	p := start(l.t, cmd, log)
	l.waitHealthy(listen, p, log)
	return p, log
}

// waitHealthy polls /healthz at addr until it answers 200.
func (l *lab) waitHealthy(addr string, p *proc, log string) {
	l.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := l.http.Get("http://" + addr + agentapi.HealthPath)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.done:
			l.t.Fatalf("%s exited before answering at %s: %s", p.cmd.Args, addr, tail(log))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("nothing answers at %s after 30 s (last error %v): %s", addr, err, tail(log))
		}
	}
}

func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 1500 {
		b = b[len(b)-1500:]
	}
	return string(b)
}

// release writes an artifact whose check.sh reports errors app errors.
func (l *lab) release(revision string, errors int) release {
	l.t.Helper()
	state, code := "OK", 0
	if errors > 10 {
		state, code = "CRITICAL", 2
	}
	script := fmt.Sprintf("#!/bin/sh\necho 'APP %s - release %s | app_errors=%d'\nexit %d\n", state, revision, errors, code)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: "check.sh", Mode: 0o755, Size: int64(len(script)), Typeflag: tar.TypeReg, ModTime: time.Now()})
	tw.Write([]byte(script))
	tw.Close()
	zw.Close()
	r := release{revision: revision, path: filepath.Join(l.dir, revision+".tar.gz")}
	if err := os.WriteFile(r.path, buf.Bytes(), 0o644); err != nil {
		l.t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	r.sha256 = hex.EncodeToString(sum[:])
	return r
}

// api is the coordinator at addr with the operator token.
func (l *lab) api(addr string) *client.Client {
	return client.New("http://"+addr, l.tokens["operator"], l.http)
}

func (l *lab) agent(h *agentHost) *client.Client {
	return client.New("http://"+h.addr, l.tokens["deploy"], l.http)
}

// upload puts the release's artifact on the coordinator at addr.
func (l *lab) upload(addr string, r release) {
	l.t.Helper()
	f, err := os.Open(r.path)
	if err != nil {
		l.t.Fatal(err)
	}
	defer f.Close()
	if _, err := l.api(addr).Upload(l.t.Context(), f); err != nil {
		l.t.Fatalf("upload %s to %s: %v", r.revision, addr, err)
	}
}

// seed installs the base release on every agent, as the push before the
// first would have, from the coordinator at addr, and waits for each
// agent's gauge.
func (l *lab) seed(addr string) {
	l.t.Helper()
	l.upload(addr, l.base)
	ctx, cancel := context.WithTimeout(l.t.Context(), 30*time.Second)
	defer cancel()
	// Agents fetch with a link the coordinator signs, never a token.
	link, err := l.api(addr).ArtifactLink(ctx, l.base.sha256)
	if err != nil {
		l.t.Fatalf("seed: %v", err)
	}
	body := agentapi.DeployRequest{Revision: l.base.revision, ArtifactURL: link.URL, SHA256: l.base.sha256}
	for _, h := range l.hosts {
		var r agentapi.Release
		if err := l.agent(h).Call(ctx, http.MethodPost, agentapi.DeployPath, body, &r); err != nil {
			l.t.Fatalf("seed %s: %v", h.name, err)
		}
	}
	for _, h := range l.hosts {
		for {
			var snap agentapi.Snapshot
			err := client.New("http://"+h.addr, l.tokens["agent"], l.http).Call(ctx, http.MethodGet, agentapi.SnapshotPath, nil, &snap)
			if _, ok := snap.Gauges["app_errors"]; err == nil && ok {
				break
			}
			select {
			case <-ctx.Done():
				l.t.Fatalf("%s has no app_errors gauge (last error %v): %s", h.name, err, tail(h.log))
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// watch reads the push from the coordinators at addrs (whichever answers)
// every 100 ms until until says stop or timeout passes.
func (l *lab) watch(addrs []string, id string, timeout time.Duration, until func(*rollback.Push) bool) *rollback.Push {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(l.t.Context(), timeout)
	defer cancel()
	var last *rollback.Push
	var lastErr error
	for {
		for _, a := range addrs {
			rctx, done := context.WithTimeout(ctx, 2*time.Second)
			p, err := l.api(a).Push(rctx, id)
			done()
			if err != nil {
				lastErr = err
				continue
			}
			last = p
			if until(p) {
				return p
			}
			break
		}
		select {
		case <-ctx.Done():
			state := "never read"
			if last != nil {
				state = fmt.Sprintf("%s: %s", last.State, events(last))
			}
			l.t.Fatalf("push %s: waited %s (last error %v); last seen %s", id, timeout, lastErr, state)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func events(p *rollback.Push) string {
	var b strings.Builder
	for _, e := range p.Events {
		fmt.Fprintf(&b, "\n  %s %s", e.At.Format("15:04:05.000"), e.Msg)
	}
	return b.String()
}

// audit compares every host's release, as its agent answers it, with what
// the push record says it runs. It returns the hosts on a release the
// record does not account for (or that do not answer), and the record's
// holes: hosts the push acted on without a result recorded for them.
func (l *lab) audit(p *rollback.Push) (unknown, lost []string) {
	l.t.Helper()
	want := expected(p, l.base.revision, l.hostNames())
	lost = holes(p)
	ctx, cancel := context.WithTimeout(l.t.Context(), 20*time.Second)
	defer cancel()
	for _, h := range l.hosts {
		var r agentapi.Release
		err := l.agent(h).Call(ctx, http.MethodGet, agentapi.ReleasePath, nil, &r)
		switch {
		case err != nil:
			unknown = append(unknown, fmt.Sprintf("%s (no answer: %v)", h.name, err))
		case r.Current != want[h.name]:
			unknown = append(unknown, fmt.Sprintf("%s runs %q, the record says %q", h.name, r.Current, want[h.name]))
		}
	}
	return unknown, lost
}

func (l *lab) hostNames() []string {
	var out []string
	for _, h := range l.hosts {
		out = append(out, h.name)
	}
	return out
}

// expected is the release the push record says each host runs: the
// revision on every host a phase deployed to, unless the rollback put it
// back (RolledBack "" : Previous); the release before on every other host.
func expected(p *rollback.Push, base string, hosts []string) map[string]string {
	want := map[string]string{}
	for _, h := range hosts {
		want[h] = base
	}
	for _, ph := range p.Phases {
		for h, e := range ph.Deployed {
			if e == "" {
				want[h] = p.Revision
			}
		}
	}
	for h, e := range p.RolledBack {
		if e == "" {
			want[h] = p.Previous[h]
		}
	}
	return want
}

// holes are the push record's missing results: a host sent the release
// with no deploy result, a touched host of a rolled-back push with no
// rollback result, a push that did not end, a revert without its end.
func holes(p *rollback.Push) []string {
	var out []string
	if !p.State.Done() {
		out = append(out, "push "+p.ID+" did not end ("+string(p.State)+")")
	}
	for _, h := range p.Touched {
		found := false
		for _, ph := range p.Phases {
			if _, ok := ph.Deployed[h]; ok {
				found = true
			}
		}
		if !found {
			out = append(out, h+": sent the release, no deploy result")
		}
		if p.State == rollback.StateRolledBack {
			if _, ok := p.RolledBack[h]; !ok {
				out = append(out, h+": touched, no rollback result")
			}
		}
	}
	if p.Revert != nil && p.Revert.Finished.IsZero() {
		out = append(out, "revert started, never finished")
	}
	return out
}

// reverts counts the reverts the coordinators ran.
func (l *lab) reverts() int {
	b, err := os.ReadFile(filepath.Join(l.dir, "reverts.log"))
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		l.t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

// freePort is a port free on ip now.
func freePort(t *testing.T, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// relay forwards TCP connections from a listener to target: the path from
// the bridge to the test's MariaDB, which listens on loopback only.
func relay(t *testing.T, listen, target string) string {
	t.Helper()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, up)
			mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(up, c); up.(*net.TCPConn).CloseWrite() }()
			go func() { defer wg.Done(); io.Copy(c, up); c.(*net.TCPConn).CloseWrite() }()
		}
	}()
	return ln.Addr().String()
}
