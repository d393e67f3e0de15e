package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/immune-ops/immune/agent"
	"github.com/immune-ops/immune/nagios/nrpe"
)

// nrpeConcurrency is how many queries are in flight at once, as from a
// Nagios server checking many services of one host.
const nrpeConcurrency = 16

// nrpeLoadArgs are the check_load flags both servers run for each query:
// thresholds far above any load so every answer is OK.
var nrpeLoadArgs = []string{"-w", "15,10,5", "-c", "30,25,20"}

// startNRPE starts an NRPE server on addr with its files in dir, and
// returns it with how to read the CPU it and its helpers used so far.
type startNRPE func(ctx context.Context, dir, addr, certFile, keyFile string) (*server, func() (time.Duration, error), error)

// nrpeTarget is one NRPE server to put under load.
type nrpeTarget struct {
	name     string
	requests int
	start    startNRPE
}

// nrpeLoad is what drive measured for one server.
type nrpeLoad struct {
	requests, errors int
	firstErr         error
	wall, cpu        time.Duration
	// client is the CPU this program spent making the queries.
	client time.Duration
}

// nrpeThroughput is issue 3's first table: queries per second and CPU per
// query, each on a new TLS connection as check_nrpe makes them, for our
// agent and Debian's nrpe serving the same check_load.
func nrpeThroughput(ctx context.Context, w io.Writer, bin, ref string, ours, theirs int) error {
	dir, err := os.MkdirTemp("", "benchtable-nrpe-")
	if err != nil {
		return fmt.Errorf("nrpe bench: %w", err)
	}
	defer os.RemoveAll(dir)
	// Debian's nrpe reads its files as root, then runs as nrpe_user.
	if err := os.Chmod(dir, 0o755); err != nil {
		return fmt.Errorf("nrpe bench: %w", err)
	}
	tlsDir := filepath.Join(dir, "tls")
	if _, err := agent.SelfSignedTLS(tlsDir); err != nil {
		return fmt.Errorf("nrpe bench: %w", err)
	}
	certFile := filepath.Join(tlsDir, agent.SelfSignedCertFile)
	keyFile := filepath.Join(tlsDir, agent.SelfSignedKeyFile)

	targets := []nrpeTarget{
		{"immune agent", ours, startOurNRPE(bin)},
		{"Debian nrpe 4 + check_load", theirs, startDebianNRPE(ref)},
	}
	results := make([]nrpeLoad, len(targets))
	defer pinClient()()
	for i, t := range targets {
		if results[i], err = benchNRPE(ctx, t, dir, certFile, keyFile); err != nil {
			return err
		}
	}

	fmt.Fprintf(w, "\nNRPE throughput: check_load %s, a new TLS connection per query, %d in flight (target: immune >= 20x Debian's nrpe)\n\n",
		strings.Join(nrpeLoadArgs, " "), nrpeConcurrency)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "server\trequests\terrors\treq/s\tCPU per request\treq/s per server core\treq/s ratio\tper-core ratio\tclient CPU per request\t")
	base := results[len(results)-1]
	for i, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%s\t%.0f\t%.1fx\t%.1fx\t%s\t\n", targets[i].name, r.requests, r.errors, r.rate(), round(r.perRequest()),
			1/max(r.perRequest().Seconds(), 1e-9), r.rate()/max(base.rate(), 1e-9), float64(base.perRequest())/float64(max(r.perRequest(), 1)),
			round(r.client/time.Duration(max(r.requests, 1))))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "CPU per request: the server's, with every process it forked (nrpe's per-connection children, check_load).")
	fmt.Fprintln(w, "req/s per server core is 1 / CPU per request: what one core of the host can serve.")
	fmt.Fprintln(w, "Ratios: immune's over Debian's. The client's own TLS handshakes cost as much as the server's,")
	fmt.Fprintln(w, "so on a small machine the measured req/s is the client's limit; the per-core ratio is the server's.")
	if canPin() {
		fmt.Fprintf(w, "Each server ran alone on core %d, the client on the other %d core(s).\n", serverCPU, runtime.NumCPU()-1)
	} else {
		// The client shares the cores with the server, so even a server
		// that cost nothing would be held to cores / client CPU.
		ceiling := float64(runtime.NumCPU()) / max(results[0].client.Seconds()/float64(max(results[0].requests, 1)), 1e-9)
		fmt.Fprintf(w, "req/s here is bounded by the client sharing the %d cores: a server costing no CPU at all would top out near %.0f req/s, %.1fx Debian's.\n",
			runtime.NumCPU(), ceiling, ceiling/max(base.rate(), 1e-9))
	}
	for i, r := range results {
		if r.firstErr != nil {
			fmt.Fprintf(w, "%s: first error: %v\n", targets[i].name, r.firstErr)
		}
	}
	return nil
}

func (r nrpeLoad) rate() float64 {
	return float64(r.requests-r.errors) / max(r.wall.Seconds(), 1e-9)
}

func (r nrpeLoad) perRequest() time.Duration {
	return r.cpu / time.Duration(max(r.requests, 1))
}

// benchNRPE starts t's server, drives it and stops it again.
func benchNRPE(ctx context.Context, t nrpeTarget, dir, certFile, keyFile string) (nrpeLoad, error) {
	addr, err := freeAddr()
	if err != nil {
		return nrpeLoad{}, err
	}
	sdir, err := os.MkdirTemp(dir, "server-")
	if err != nil {
		return nrpeLoad{}, fmt.Errorf("nrpe bench %s: %w", t.name, err)
	}
	if err := os.Chmod(sdir, 0o755); err != nil {
		return nrpeLoad{}, fmt.Errorf("nrpe bench %s: %w", t.name, err)
	}
	srv, cpuUsed, err := t.start(ctx, sdir, addr, certFile, keyFile)
	if err != nil {
		return nrpeLoad{}, err
	}
	defer srv.stop()
	if err := srv.waitListening(ctx, addr); err != nil {
		return nrpeLoad{}, err
	}
	client := checkNRPEClient()
	q := nrpe.Packet{Version: nrpe.V4, Type: nrpe.Query, Buffer: "check_load"}
	// One query first, so a misconfigured server fails the run with its
	// own words rather than as a count of errors.
	if _, err := nrpeQuery(ctx, addr, client, q); err != nil {
		return nrpeLoad{}, fmt.Errorf("nrpe bench %s: first query: %w: %s", t.name, err, tail(srv.log))
	}
	before, err := cpuUsed()
	if err != nil {
		return nrpeLoad{}, err
	}
	self := cpuTime(syscall.RUSAGE_SELF)
	load := drive(ctx, addr, client, q, t.requests)
	load.client = cpuTime(syscall.RUSAGE_SELF) - self
	if err := ctx.Err(); err != nil {
		return nrpeLoad{}, err
	}
	after, err := cpuUsed()
	if err != nil {
		return nrpeLoad{}, err
	}
	load.cpu = after - before
	return load, nil
}

// drive sends n queries from nrpeConcurrency clients and counts the
// failures; an answer of UNKNOWN is one (nrpe's own errors come as that).
func drive(ctx context.Context, addr string, client *tls.Config, q nrpe.Packet, n int) nrpeLoad {
	var (
		next, failed atomic.Int64
		once         sync.Once
		first        error
		wg           sync.WaitGroup
	)
	start := time.Now()
	for range nrpeConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) && ctx.Err() == nil {
				p, err := nrpeQuery(ctx, addr, client, q)
				if err == nil && (p.ResultCode < 0 || p.ResultCode > 2) {
					err = fmt.Errorf("answer %d %q", p.ResultCode, p.Buffer)
				}
				if err != nil {
					failed.Add(1)
					once.Do(func() { first = err })
				}
			}
		}()
	}
	wg.Wait()
	return nrpeLoad{requests: n, errors: int(failed.Load()), firstErr: first, wall: time.Since(start)}
}

// checkNRPEClient offers what Debian's check_nrpe does with OpenSSL 3.0:
// no certificate check, and OpenSSL's default key exchange groups, so no
// post-quantum hybrid (Go's default), whose extra key exchange would add
// work to both ends that check_nrpe never asks for.
func checkNRPEClient() *tls.Config {
	return &tls.Config{
		InsecureSkipVerify: true,
		CurvePreferences:   []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP521, tls.CurveP384},
	}
}

// nrpeQuery makes one query on a new connection, as check_nrpe does.
func nrpeQuery(ctx context.Context, addr string, cfg *tls.Config, q nrpe.Packet) (nrpe.Packet, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nrpe.Packet{}, fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer raw.Close()
	dl, _ := ctx.Deadline()
	if err := raw.SetDeadline(dl); err != nil {
		return nrpe.Packet{}, fmt.Errorf("set deadline: %w", err)
	}
	conn := tls.Client(raw, cfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		return nrpe.Packet{}, fmt.Errorf("TLS handshake with %s: %w", addr, err)
	}
	if _, err := q.WriteTo(conn); err != nil {
		return nrpe.Packet{}, fmt.Errorf("send query to %s: %w", addr, err)
	}
	p, err := nrpe.ReadPacket(conn, 0)
	if err != nil {
		return nrpe.Packet{}, fmt.Errorf("read answer from %s: %w", addr, err)
	}
	return p, nil
}

// startOurNRPE runs `immune agent` with check_load as its one check. fresh
// 0 makes every query run the check, as Debian's nrpe must.
func startOurNRPE(bin string) startNRPE {
	return func(ctx context.Context, dir, addr, certFile, keyFile string) (*server, func() (time.Duration, error), error) {
		cfg := fmt.Sprintf(`host: bench
host_type: bench
data_dir: %q
checks:
  - name: check_load
    builtin: check_load
    args: [%s]
    interval: 1h
    fresh: 0
nrpe:
  listen: %q
  allowed_hosts: [127.0.0.1]
  cert_file: %q
  key_file: %q
  max_connections: 64
`, filepath.Join(dir, "data"), quoteList(nrpeLoadArgs), addr, certFile, keyFile)
		path := filepath.Join(dir, "agent.yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			return nil, nil, fmt.Errorf("write agent config: %w", err)
		}
		path, args := onServerCPU(filepath.Join(bin, "immune"), "agent", "--config", path)
		srv, err := startServer("immune agent", filepath.Join(dir, "agent.log"), path, args...)
		if err != nil {
			return nil, nil, fmt.Errorf("%w (make build first)", err)
		}
		pid := srv.cmd.Process.Pid
		return srv, func() (time.Duration, error) { return cpu(pid) }, nil
	}
}

// startDebianNRPE runs Debian's nrpe in the foreground under a subreaper
// wrapper (see runSubreaper), so that the CPU of the processes it forks
// per connection, orphaned on purpose, is counted.
func startDebianNRPE(ref string) startNRPE {
	return func(ctx context.Context, dir, addr, certFile, keyFile string) (*server, func() (time.Duration, error), error) {
		const daemon = "/usr/sbin/nrpe"
		if _, err := os.Stat(daemon); err != nil {
			return nil, nil, fmt.Errorf("look for Debian's nrpe: %w (make bench-deps installs nagios-nrpe-server)", err)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, nil, fmt.Errorf("split %s: %w", addr, err)
		}
		// nrpe refuses to run as root and drops to nrpe_user when started
		// as root; the package makes the nagios user.
		runAs := "nagios"
		if _, err := user.Lookup(runAs); err != nil {
			runAs = "nobody"
		}
		pidFile := filepath.Join(dir, "nrpe.pid")
		// listen_queue_size is raised from 5: with 16 clients a short
		// backlog drops SYNs, and a retransmit costs a second, which would
		// measure the backlog rather than nrpe.
		cfg := fmt.Sprintf(`pid_file=%s
server_address=%s
server_port=%s
listen_queue_size=128
nrpe_user=%s
nrpe_group=%s
allowed_hosts=127.0.0.1
dont_blame_nrpe=0
allow_bash_command_substitution=0
command_timeout=60
connection_timeout=300
debug=0
disable_syslog=1
ssl_use_adh=0
ssl_cert_file=%s
ssl_privatekey_file=%s
ssl_client_certs=0
command[check_load]=%s %s
`, pidFile, host, port, runAs, groupOf(runAs), certFile, keyFile, filepath.Join(ref, "check_load"), strings.Join(nrpeLoadArgs, " "))
		path := filepath.Join(dir, "nrpe.cfg")
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			return nil, nil, fmt.Errorf("write nrpe config: %w", err)
		}
		self, err := os.Executable()
		if err != nil {
			return nil, nil, fmt.Errorf("find benchtable's own binary: %w", err)
		}
		bin, args := onServerCPU(self, subreaperMode, daemon, "-c", path, "-f")
		srv, err := startServer("Debian's nrpe", filepath.Join(dir, "nrpe.log"), bin, args...)
		if err != nil {
			return nil, nil, err
		}
		wrapper := srv.cmd.Process.Pid
		return srv, func() (time.Duration, error) { return debianCPU(ctx, wrapper, pidFile) }, nil
	}
}

// debianCPU is the CPU nrpe and everything it forked used: nrpe's own
// account plus what the subreaper wrapper reaped. It first waits (briefly)
// for the last connections' processes to be reaped, or their CPU would be
// missing.
func debianCPU(ctx context.Context, wrapper int, pidFile string) (time.Duration, error) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, fmt.Errorf("read nrpe's pid: %w", err)
	}
	daemon, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("read nrpe's pid from %s: %w", pidFile, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		kids, err := childrenOf(wrapper, daemon)
		if err != nil {
			return 0, err
		}
		if len(kids) == 1 && kids[0] == daemon {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	d, err := cpu(daemon)
	if err != nil {
		return 0, err
	}
	st, err := readStat(wrapper)
	if err != nil {
		return 0, err
	}
	return d + st.children, nil
}

// groupOf is the name of u's primary group, or u itself when that is unknown.
func groupOf(u string) string {
	if acct, err := user.Lookup(u); err == nil {
		if g, err := user.LookupGroupId(acct.Gid); err == nil {
			return g.Name
		}
	}
	return u
}

func quoteList(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = strconv.Quote(a)
	}
	return strings.Join(q, ", ")
}
