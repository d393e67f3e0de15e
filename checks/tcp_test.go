package checks

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/immune-ops/immune/fixtures/testpki"
	"github.com/immune-ops/immune/nagios"
)

// npServer is a loopback server for the network checks' tests. Every
// connection it accepts is closed, and every handler waited for, when the
// test ends.
type npServer struct {
	ln    net.Listener
	host  string
	port  string
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// serveNP listens on network/addr ("tcp", "127.0.0.1:0") and runs handle
// for each connection; wrap, when set, wraps the listener (for TLS).
func serveNP(t *testing.T, network, addr string, wrap func(net.Listener) net.Listener, handle func(net.Conn)) *npServer {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatalf("listen on %s %s: %v", network, addr, err)
	}
	s := &npServer{ln: ln, conns: map[net.Conn]struct{}{}}
	if network == "unix" {
		s.host = addr
	} else {
		s.host, s.port, _ = net.SplitHostPort(ln.Addr().String())
	}
	if wrap != nil {
		s.ln = wrap(ln)
	}
	s.wg.Add(1)
	go s.accept(handle)
	t.Cleanup(s.close)
	return s
}

func (s *npServer) accept(handle func(net.Conn)) {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				c.Close()
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
			handle(c)
		}()
	}
}

func (s *npServer) close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// npBanner answers every connection with b and closes it.
func npBanner(b string) func(net.Conn) {
	return func(c net.Conn) { _, _ = io.WriteString(c, b) }
}

// npEcho sends back the first thing it reads, then closes.
func npEcho(c net.Conn) {
	buf := make([]byte, 1024)
	n, _ := c.Read(buf)
	_, _ = c.Write(buf[:n])
}

// npSilent accepts and never answers, until the client or the test ends it.
func npSilent(c net.Conn) { _, _ = io.Copy(io.Discard, c) }

// npTestCert makes a self-signed certificate for cn valid until notAfter.
func npTestCert(t *testing.T, cn string, notAfter time.Time) tls.Certificate {
	t.Helper()
	return testpki.SelfSigned(t, testpki.Options{
		CommonName: cn, Hosts: []string{cn},
		NotBefore: time.Now().Add(-72 * time.Hour), NotAfter: notAfter.Truncate(time.Second),
	}).TLS()
}

// npDays is a certificate lifetime well away from a day boundary, so that
// both twins count the same days however far apart they run.
func npDays(n int) time.Time { return time.Now().Add(time.Duration(n)*24*time.Hour + 12*time.Hour) }

func npTLSWrap(cert tls.Certificate) func(net.Listener) net.Listener {
	return func(ln net.Listener) net.Listener {
		return tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}})
	}
}

// npClosedPort is a loopback port nothing listens on.
func npClosedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	return port
}

// npTimesRE finds the measured times in a status line and its perfdata.
var npTimesRE = regexp.MustCompile(`[0-9]+\.[0-9]{3} second|(time[a-z_]*)=[0-9.]+s`)

// npNormalizeTimes replaces measured times, which vary, for golden comparison.
func npNormalizeTimes(s string) string {
	return npTimesRE.ReplaceAllStringFunc(s, func(m string) string {
		if m[len(m)-1] == 'd' {
			return "T second"
		}
		label, _, _ := strings.Cut(m, "=")
		return label + "=Ts"
	})
}

// requireIPv6 skips the test where ::1 cannot be bound.
func requireIPv6(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("cannot bind ::1: %v", err)
	}
	ln.Close()
}

// usageCase is a command line a check must refuse, and what its message
// must contain.
type usageCase struct {
	args []string
	want string
}

// assertUsageErrors checks that plugin refuses each command line as a usage
// error (exit 3, UNKNOWN) with a message that names the problem.
func assertUsageErrors(t *testing.T, plugin string, cases []usageCase) {
	t.Helper()
	for _, tc := range cases {
		var out strings.Builder
		code := Main(context.Background(), plugin, tc.args, &out)
		if code != 3 || !strings.HasPrefix(out.String(), "UNKNOWN - "+plugin+": ") || !strings.Contains(out.String(), tc.want) {
			t.Errorf("%q: exit %d, want 3 and a message naming %s:\n%s", tc.args, code, tc.want, out.String())
		}
	}
}

// outputCase is a golden test of what Nagios reads from one run: the state,
// and the output with measured times normalized by npNormalizeTimes.
type outputCase struct {
	name  string
	args  []string
	state nagios.State
	want  string
}

// assertOutputs runs plugin in process for each case, as a subtest.
func assertOutputs(t *testing.T, plugin string, cases []outputCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := runOurs(t, context.Background(), plugin, tc.args...)
			if got := npNormalizeTimes(r.Raw); r.Result.State != tc.state || got != tc.want {
				t.Errorf("%q:\n got %s %q\nwant %s %q", tc.args, r.Result.State, got, tc.state, tc.want)
			}
		})
	}
}

// assertCallerDeadline runs plugin's check on args, which point it at a
// server that never answers, under a caller's deadline far shorter than its
// -t: the caller's deadline ends the run, reported as the socket timeout.
func assertCallerDeadline(t *testing.T, plugin string, args []string, want string) {
	t.Helper()
	spec, ok := Lookup(plugin)
	if !ok {
		t.Fatalf("%s is not registered", plugin)
	}
	c, err := spec.New(args)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if r := c.Run(ctx); r.State != nagios.Critical || r.Output != want {
		t.Errorf("got %s %q, want CRITICAL %q", r.State, r.Output, want)
	}
}

func TestTCPTwin(t *testing.T) {
	referencePlugin(t, "check_tcp")
	cert := npTestCert(t, "immune.test", npDays(30))
	expired := npTestCert(t, "old.test", time.Now().Add(-50*time.Hour))
	ready := serveNP(t, "tcp", "127.0.0.1:0", nil, npBanner("220 ready\r\n"))
	multi := serveNP(t, "tcp", "127.0.0.1:0", nil, npBanner("hello world foo\r\nline2 x\r\n"))
	oneByte := serveNP(t, "tcp", "127.0.0.1:0", nil, npBanner("a\n"))
	nul := serveNP(t, "tcp", "127.0.0.1:0", nil, npBanner("x\x00yz\r\n"))
	echoes := serveNP(t, "tcp", "127.0.0.1:0", nil, npEcho)
	quiet := serveNP(t, "tcp", "127.0.0.1:0", nil, npSilent)
	secure := serveNP(t, "tcp", "127.0.0.1:0", npTLSWrap(cert), npBanner("220 secure\r\n"))
	stale := serveNP(t, "tcp", "127.0.0.1:0", npTLSWrap(expired), npBanner("220 stale\r\n"))
	sock := serveNP(t, "unix", filepath.Join(t.TempDir(), "s.sock"), nil, npBanner("unix here\n"))
	closed := npClosedPort(t)

	runTwinCases(t, "check_tcp", []twinCase{
		{"connect only", []string{"-H", "127.0.0.1", "-p", ready.port}},
		{"expect match", []string{"-H", "127.0.0.1", "-p", ready.port, "-e", "220"}},
		{"expect long option", []string{"--hostname=127.0.0.1", "--port", ready.port, "--expect=ready"}},
		{"expect mismatch", []string{"-H", "127.0.0.1", "-p", ready.port, "-e", "221"}},
		{"expect all missing one", []string{"-H", "127.0.0.1", "-p", ready.port, "-e", "220", "-e", "221", "-A"}},
		{"expect any of two", []string{"-H", "127.0.0.1", "-p", ready.port, "-e", "221", "-e", "220"}},
		{"mismatch critical", []string{"-H", "127.0.0.1", "-p", ready.port, "-e", "221", "-M", "crit"}},
		{"mismatch ok jailed", []string{"-H", "127.0.0.1", "-p", ready.port, "-e", "221", "-M", "ok", "-j"}},
		{"jail hides banner", []string{"-H", "127.0.0.1", "-p", ready.port, "-e", "220", "-j"}},
		{"multi-line banner", []string{"-H", "127.0.0.1", "-p", multi.port, "-e", "line2"}},
		{"multi-line mismatch", []string{"-H", "127.0.0.1", "-p", multi.port, "-e", "zzz"}},
		{"one byte is not shown", []string{"-H", "127.0.0.1", "-p", oneByte.port, "-e", "a"}},
		{"one byte mismatch", []string{"-H", "127.0.0.1", "-p", oneByte.port, "-e", "b"}},
		{"NUL ends the text", []string{"-H", "127.0.0.1", "-p", nul.port, "-e", "x"}},
		{"NUL hides the rest", []string{"-H", "127.0.0.1", "-p", nul.port, "-e", "y"}},
		{"maxbytes", []string{"-H", "127.0.0.1", "-p", ready.port, "-e", "zzz", "-m", "3"}},
		{"send and expect", []string{"-H", "127.0.0.1", "-p", echoes.port, "-s", "ping", "-e", "ping", "-q", "bye"}},
		{"escaped send", []string{"-H", "127.0.0.1", "-p", echoes.port, "-E", "-s", `ping\r\n`, "-e", "ping"}},
		{"escape after send is too late", []string{"-H", "127.0.0.1", "-p", echoes.port, "-s", `ping\n`, "-E", "-e", "ping"}},
		{"positional host", []string{"127.0.0.1", "-p", ready.port}},
		{"default host", []string{"-p", ready.port, "-e", "220"}},
		{"refused", []string{"-H", "127.0.0.1", "-p", closed}},
		{"refused ok", []string{"-H", "127.0.0.1", "-p", closed, "-r", "ok"}},
		{"refused warn", []string{"-H", "127.0.0.1", "-p", closed, "-r", "warn"}},
		{"slow warning", []string{"-H", "127.0.0.1", "-p", ready.port, "-w", "0.0000001", "-c", "5"}},
		{"slow critical", []string{"-H", "127.0.0.1", "-p", ready.port, "-e", "220", "-w", "0", "-c", "0.0000001"}},
		{"slow and mismatched", []string{"-H", "127.0.0.1", "-p", ready.port, "-e", "221", "-w", "0.0000001", "-M", "ok"}},
		{"timeout", []string{"-H", "127.0.0.1", "-p", quiet.port, "-e", "x", "-t", "1"}},
		{"tls banner", []string{"-H", "127.0.0.1", "-p", secure.port, "-S", "-e", "secure"}},
		{"tls sni", []string{"-H", "127.0.0.1", "-p", secure.port, "--sni", "immune.test", "-e", "220"}},
		{"tls to a plain port", []string{"-H", "127.0.0.1", "-p", ready.port, "-S"}},
		{"cert ok", []string{"-H", "127.0.0.1", "-p", secure.port, "-D", "10", "-e", "220"}},
		{"cert warning", []string{"-H", "127.0.0.1", "-p", secure.port, "-D", "40,10"}},
		{"cert critical", []string{"-H", "127.0.0.1", "-p", secure.port, "-D", "40,35"}},
		{"cert expired", []string{"-H", "127.0.0.1", "-p", stale.port, "-D", "5"}},
		{"unix socket", []string{"-H", sock.host, "-e", "unix"}},
	}, tolerance{Abs: 0.5})
}

func TestTCPTwinIPv6(t *testing.T) {
	referencePlugin(t, "check_tcp")
	requireIPv6(t)
	s := serveNP(t, "tcp6", "[::1]:0", nil, npBanner("hi6\n"))
	runTwinCases(t, "check_tcp", []twinCase{
		{"expect", []string{"-H", "::1", "-p", s.port, "-e", "hi"}},
		{"-6", []string{"-6", "-H", "::1", "-p", s.port}},
	}, tolerance{Abs: 0.5})
}

func TestTCPBadArgumentsTwin(t *testing.T) {
	assertUsageTwins(t, "check_tcp", [][]string{
		{"-H", "127.0.0.1", "-p", "0"},
		{"-H", "127.0.0.1", "-p", "abc"},
		{"-H", "127.0.0.1", "-p", "1", "-r", "bogus"},
		{"-H", "127.0.0.1", "-p", "1", "-M", "never"},
		{"-H", "127.0.0.1", "-p", "1", "-t", "abc"},
		{"-H", "127.0.0.1", "-p", "1", "-m", "0"},
		{"-H", "127.0.0.1", "-p", "1", "-d", "x"},
		{"-H", "127.0.0.1", "-p", "1", "-D", "x"},
		{"-H", "127.0.0.1", "-p", "1", "--bogus"},
		{"-H", "127.0.0.1", "-p"},
	})
}

func TestTCPBadArguments(t *testing.T) {
	assertUsageErrors(t, "check_tcp", []usageCase{
		{[]string{"-p", "0"}, `-p "0"`},
		{[]string{"-p", "70000"}, `-p "70000"`},
		{[]string{"-p", "1", "-w", "abc"}, `-w "abc"`},
		{[]string{"-p", "1", "-c", "1e400"}, `-c "1e400"`},
		{[]string{"-p", "1", "-r", "maybe"}, `-r "maybe"`},
		{[]string{"-p", "1", "-t", "0"}, "timeout"},
		{[]string{"-p", "1", "-D", "5,x"}, `-D "5,x"`},
		{[]string{"-p", "1", "a", "b"}, `unexpected argument "b"`},
		{[]string{"-H", "", "-p", "1"}, "-H"},
	})
}

func TestTCPOutput(t *testing.T) {
	ready := serveNP(t, "tcp", "127.0.0.1:0", nil, npBanner("220 ready\r\n"))
	quiet := serveNP(t, "tcp", "127.0.0.1:0", nil, npSilent)
	closed := npClosedPort(t)
	assertOutputs(t, "check_tcp", []outputCase{
		{"connect only", []string{"-H", "127.0.0.1", "-p", ready.port}, nagios.OK,
			"TCP OK - T second response time on 127.0.0.1 port " + ready.port + "|time=Ts;;;0.000000;10.000000\n"},
		{"expect and thresholds", []string{"-H", "127.0.0.1", "-p", ready.port, "-e", "220", "-w", "5", "-c", "9", "-t", "20"}, nagios.OK,
			"TCP OK - T second response time on 127.0.0.1 port " + ready.port + " [220 ready]|time=Ts;5.000000;9.000000;0.000000;20.000000\n"},
		{"mismatch zeroes the thresholds", []string{"-H", "127.0.0.1", "-p", ready.port, "-e", "nope", "-w", "5", "-c", "9"}, nagios.Warning,
			"TCP WARNING - Unexpected response from host/socket: 220 ready|time=Ts;0.000000;0.000000;0.000000;10.000000\n"},
		{"refused", []string{"-H", "127.0.0.1", "-p", closed, "-r", "warn"}, nagios.Warning,
			"connect to address 127.0.0.1 and port " + closed + ": Connection refused\n"},
		// Our -t also takes the state a timeout gives, as other plugins do.
		{"timeout state", []string{"-H", "127.0.0.1", "-p", quiet.port, "-e", "x", "-t", "0.2:UNKNOWN"}, nagios.Unknown,
			"UNKNOWN - Socket timeout after 0.2 seconds\n"},
	})
}

func TestTCPTrimResponse(t *testing.T) {
	tests := []struct {
		in    string
		text  string
		shown bool
	}{
		{"220 ready\r\n", "220 ready", true},
		{"ab", "ab", true},
		{"a\n", "", false},
		{"a", "", false},
		{"   ", "", false},
		{"x\x00yz\n", "x", true},
		{" ab \t\n", " ab", true},
	}
	for _, tt := range tests {
		text, shown := tcpTrimResponse([]byte(tt.in))
		if text != tt.text || shown != tt.shown {
			t.Errorf("tcpTrimResponse(%q) = %q, %v; want %q, %v", tt.in, text, shown, tt.text, tt.shown)
		}
	}
}

func TestTCPUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`bob\n`:     "bob\n",
		`rhuba\rb`:  "rhuba\rb",
		`ba\nge\r`:  "ba\nge\r",
		`\rabbi\t`:  "\rabbi\t",
		`and\\or`:   `and\or`,
		`bo\gus`:    "bogus",
		`everthing`: "everthing",
		`end\`:      `end\`,
	} {
		if got := tcpUnescape(in); got != want {
			t.Errorf("tcpUnescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCertExpiry(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	cert := func(cn string, left time.Duration) []*x509.Certificate {
		return []*x509.Certificate{{Subject: pkix.Name{CommonName: cn}, NotAfter: now.Add(left)}}
	}
	tests := []struct {
		chain []*x509.Certificate
		days  certDays
		state nagios.State
		want  string
	}{
		{cert("a.test", 100*24*time.Hour), certDays{30, 10}, nagios.OK,
			"OK - Certificate 'a.test' will expire on Mon Mar  1 12:00:00 2027 +0000."},
		{cert("a.test", 20*24*time.Hour+time.Hour), certDays{30, 10}, nagios.Warning,
			"WARNING - Certificate 'a.test' expires in 20 day(s) (Fri Dec 11 13:00:00 2026 +0000)."},
		{cert("a.test", 5*24*time.Hour), certDays{30, 10}, nagios.Critical,
			"CRITICAL - Certificate 'a.test' expires in 5 day(s) (Thu Nov 26 12:00:00 2026 +0000)."},
		{cert("", 5*time.Hour), certDays{30, 0}, nagios.Critical,
			"CRITICAL - Certificate 'Unknown CN' expires in 5 hours (Sat Nov 21 17:00:00 2026 +0000)"},
		{cert("a.test", 30*time.Minute), certDays{1, 0}, nagios.Critical,
			"CRITICAL - Certificate 'a.test' expires in 30 minutes (Sat Nov 21 12:30:00 2026 +0000)"},
		{cert("a.test", -time.Hour), certDays{1, 0}, nagios.Critical,
			"CRITICAL - Certificate 'a.test' expired on Sat Nov 21 11:00:00 2026 +0000."},
		{nil, certDays{1, 0}, nagios.Critical, "CRITICAL - Cannot retrieve server certificate."},
	}
	for _, tt := range tests {
		r := certExpiry(tt.chain, tt.days, now)
		if r.State != tt.state || r.Output != tt.want {
			t.Errorf("got %s %q\nwant %s %q", r.State, r.Output, tt.state, tt.want)
		}
	}
}

func TestTCPTimeoutStopsPromptly(t *testing.T) {
	quiet := serveNP(t, "tcp", "127.0.0.1:0", nil, npSilent)
	assertCallerDeadline(t, "check_tcp", []string{"-H", "127.0.0.1", "-p", quiet.port, "-e", "x", "-t", "30"},
		"CRITICAL - Socket timeout after 30 seconds")
}

func TestConnectFailure(t *testing.T) {
	closed := npClosedPort(t)
	dial := func(network, host string, port int) error {
		conn, err := dialHost(context.Background(), network, host, port)
		if err == nil {
			conn.Close()
			t.Fatalf("dial %s %s:%d: connected", network, host, port)
		}
		return err
	}
	port, _ := strconv.Atoi(closed)
	sock := filepath.Join(t.TempDir(), "none.sock")
	tests := []struct {
		host string
		port int
		err  error
		want string
	}{
		{"127.0.0.1", port, dial("tcp", "127.0.0.1", port), "connect to address 127.0.0.1 and port " + closed + ": Connection refused"},
		{"[127.0.0.1]", port, dial("tcp", "[127.0.0.1]", port), "connect to address [127.0.0.1] and port " + closed + ": Connection refused"},
		{"[", 80, dial("tcp", "[", 80), "Name or service not known"},
		{sock, 0, dial("tcp", sock, 0), "connect to file socket " + sock + ": No such file or directory"},
		{"a.test", 80, &net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "a.test", IsNotFound: true}}, "Name or service not known"},
		{"a.test", 80, &net.OpError{Op: "dial", Err: &net.DNSError{Err: "server misbehaving", Name: "a.test", IsTemporary: true}}, "Temporary failure in name resolution"},
	}
	for _, tt := range tests {
		if got := connectFailure(tt.host, tt.port, tt.err); got != tt.want {
			t.Errorf("connectFailure(%q, %d, %v) = %q, want %q", tt.host, tt.port, tt.err, got, tt.want)
		}
	}
}
