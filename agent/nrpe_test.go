package agent

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/immune-ops/immune/checks"
	"github.com/immune-ops/immune/fixtures/real"
	"github.com/immune-ops/immune/fixtures/testpki"
	"github.com/immune-ops/immune/nagios"
	"github.com/immune-ops/immune/nagios/nrpe"
)

const checkNRPEPath = "/usr/lib/nagios/plugins/check_nrpe"

// checkNRPE returns Debian's check_nrpe. Without it the test is skipped,
// unless IMMUNE_REQUIRE_REAL is set (make test sets it), so the suite
// cannot pass by skipping what it is meant to prove.
func checkNRPE(t testing.TB) string {
	t.Helper()
	return real.Program(t, checkNRPEPath, "nagios-nrpe-plugin")
}

// runCheckNRPE runs check_nrpe with args and returns its exit code and stdout.
func runCheckNRPE(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, checkNRPE(t), args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.Output()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return exit.ExitCode(), string(out)
	case err != nil:
		t.Fatalf("run check_nrpe %q: %v", args, err)
	}
	return 0, string(out)
}

// nrpeLogBuffer collects the server's log lines from its goroutines.
type nrpeLogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *nrpeLogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *nrpeLogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startNRPE serves s on a free port of the loopback address host and stops
// it when the test ends, failing the test if Serve does not return cleanly.
func startNRPE(t testing.TB, host string, s *NRPEServer) (port string, logs *nrpeLogBuffer) {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	logs = &nrpeLogBuffer{}
	s.Logger = slog.New(slog.NewTextHandler(logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return after its context ended")
		}
	})
	_, port, err = net.SplitHostPort(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return port, logs
}

// The test checks, as an NRPEHandler.
var (
	nrpeBigOutput = "CRITICAL - big output\n" + strings.Repeat(strings.Repeat("x", 79)+"\n", 40*1024/80)
	nrpePerfCheck = nagios.Result{
		State:  nagios.Warning,
		Output: "WARNING - load high",
		Long:   "line two\nline three",
		Perf: []nagios.Perf{
			{Label: "load1", Value: 4.5, Warn: nrpeRange("4"), Crit: nrpeRange("8"), Min: nagios.Float(0)},
			{Label: "used space", Value: 12, UOM: "MB"},
		},
	}
)

func nrpeRange(s string) *nagios.Range {
	r, err := nagios.ParseRange(s)
	if err != nil {
		panic(err)
	}
	return &r
}

type nrpeTestChecks struct {
	// slowEnded receives what the slow check's context said when it gave up.
	slowEnded chan error
	running   atomic.Int32
	most      atomic.Int32
}

func newNRPETestChecks() *nrpeTestChecks { return &nrpeTestChecks{slowEnded: make(chan error, 4)} }

func (c *nrpeTestChecks) handle(ctx context.Context, command string, args []string) (nagios.Result, error) {
	n := c.running.Add(1)
	defer c.running.Add(-1)
	for m := c.most.Load(); n > m && !c.most.CompareAndSwap(m, n); m = c.most.Load() {
	}
	switch command {
	case "ok":
		return nagios.Result{State: nagios.OK, Output: "OK: hello"}, nil
	case "perf":
		return nrpePerfCheck, nil
	case "args":
		return nagios.Resultf(nagios.OK, "OK - %d args: %s", len(args), strings.Join(args, ",")), nil
	case "big":
		return nagios.Result{State: nagios.Critical, Output: nrpeBigOutput}, nil
	case "empty":
		return nagios.Result{}, nil
	case "fail":
		return nagios.Result{}, errors.New("boom")
	case "slow":
		<-ctx.Done()
		c.slowEnded <- ctx.Err()
		return nagios.Result{}, ctx.Err()
	case "hold":
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
		}
		return nagios.Result{State: nagios.OK, Output: "OK held"}, nil
	}
	return nagios.Result{}, &NRPEUndefinedCommandError{Command: command}
}

func nrpeQuietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestNRPECheckNRPE runs Debian's check_nrpe against our server. The
// expected output of NRPE's own messages is what Debian's nrpe 4.1.0
// daemon answered to the same queries.
func TestNRPECheckNRPE(t *testing.T) {
	checkNRPE(t)
	certs, err := SelfSignedTLS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	servers := map[string]*NRPEServer{
		"tls":       {TLSConfig: certs},
		"tls+args":  {TLSConfig: certs, AllowArgs: true},
		"plain":     {PlainText: true},
		"elsewhere": {TLSConfig: certs, AllowedHosts: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}},
	}
	ports := map[string]string{}
	logs := map[string]*nrpeLogBuffer{}
	tc := newNRPETestChecks()
	for name, s := range servers {
		s.Handler = tc.handle
		ports[name], logs[name] = startNRPE(t, "127.0.0.1", s)
	}
	perfText := "WARNING - load high|load1=4.5;4;8;0 'used space'=12MB\nline two\nline three\n"
	tests := []struct {
		name   string
		server string
		args   []string
		code   int
		out    string
		log    string
	}{
		{"hello", "tls", nil, 0, "NRPE v4.1.0\n", ""},
		{"hello v2", "tls", []string{"-2"}, 0, "NRPE v4.1.0\n", ""},
		{"ok v4", "tls", []string{"-c", "ok"}, 0, "OK: hello\n", ""},
		{"ok v3", "tls", []string{"-3", "-c", "ok"}, 0, "OK: hello\n", ""},
		{"ok v2", "tls", []string{"-2", "-c", "ok"}, 0, "OK: hello\n", ""},
		{"ok without ADH", "tls", []string{"-d", "0", "-c", "ok"}, 0, "OK: hello\n", ""},
		{"ok TLS 1.2", "tls", []string{"-S", "TLSv1.2+", "-c", "ok"}, 0, "OK: hello\n", ""},
		{"plain v4", "plain", []string{"-n", "-c", "ok"}, 0, "OK: hello\n", ""},
		{"plain v2", "plain", []string{"-n", "-2", "-c", "ok"}, 0, "OK: hello\n", ""},
		{"undefined", "tls", []string{"-c", "nope"}, 3, "NRPE: Command 'nope' not defined\n", ""},
		{"undefined v2", "tls", []string{"-2", "-c", "nope"}, 3, "NRPE: Command 'nope' not defined\n", ""},
		{"no output", "tls", []string{"-c", "empty"}, 3, "NRPE: Unable to read output\n", ""},
		{"handler error", "tls", []string{"-c", "fail"}, 3, "NRPE: Command 'fail' failed: boom\n", ""},
		{"perfdata and long output", "tls", []string{"-c", "perf"}, 1, perfText, ""},
		{"perfdata and long output v2", "tls", []string{"-2", "-c", "perf"}, 1, perfText, ""},
		{"big v4", "tls", []string{"-c", "big"}, 2, nrpeBigOutput, ""},
		{"big v2 cut to 1023", "tls", []string{"-2", "-c", "big"}, 2, nrpeBigOutput[:nrpe.V2MaxText] + "\n", ""},
		{"args", "tls+args", []string{"-c", "args", "-a", "x", "y z"}, 0, "OK - 2 args: x,y z\n", ""},
		{"args v2", "tls+args", []string{"-2", "-c", "args", "-a", "x"}, 0, "OK - 1 args: x\n", ""},
		{"args not allowed", "tls", []string{"-c", "args", "-a", "x"}, 3,
			"NRPE: Request contained command arguments, but argument option is not enabled\n", "query refused"},
		{"metachar in command", "tls", []string{"-c", "ok;ls"}, 3, "NRPE: Request contained illegal metachars\n", "illegal metachars"},
		{"metachar in args", "tls+args", []string{"-c", "args", "-a", "x|y"}, 3, "NRPE: Request contained illegal metachars\n", ""},
		{"backquote in args", "tls+args", []string{"-c", "args", "-a", "`id`"}, 3, "NRPE: Request contained illegal metachars\n", ""},
		{"command substitution", "tls+args", []string{"-c", "args", "-a", "$(id)"}, 3, "NRPE: Request contained a bash command substitution\n", ""},
		{"empty arg", "tls+args", []string{"-c", "args", "-a", "", "x"}, 3, "NRPE: Request contained an empty command argument\n", ""},
		{"host not allowed", "elsewhere", []string{"-c", "ok"}, 2,
			"CHECK_NRPE: Error - Could not connect to 127.0.0.1: Connection reset by peer\n", "not in allowed hosts"},
		{"host not allowed, -u", "elsewhere", []string{"-u", "-c", "ok"}, 3,
			"CHECK_NRPE: Error - Could not connect to 127.0.0.1: Connection reset by peer\n", "not in allowed hosts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-H", "127.0.0.1", "-p", ports[tt.server], "-t", "10"}, tt.args...)
			code, out := runCheckNRPE(t, args...)
			out = nrpeResetNamesHost(out, "127.0.0.1")
			if code != tt.code {
				t.Errorf("exit code %d, want %d; output %.200q", code, tt.code, out)
			}
			if out != tt.out {
				t.Errorf("output:\n%.300q\nwant:\n%.300q", out, tt.out)
			}
			if tt.log != "" && !strings.Contains(logs[tt.server].String(), tt.log) {
				t.Errorf("server log does not say %q:\n%s", tt.log, logs[tt.server])
			}
		})
	}
}

func TestNRPECheckNRPEIPv6(t *testing.T) {
	checkNRPE(t)
	if ln, err := net.Listen("tcp", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	} else {
		ln.Close()
	}
	certs, err := SelfSignedTLS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		hosts []netip.Prefix
		code  int
		out   string
	}{
		{"loopback by default", nil, 0, "OK: hello\n"},
		{"listed", []netip.Prefix{netip.MustParsePrefix("::1/128")}, 0, "OK: hello\n"},
		{"IPv4 only listed", []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, 2,
			"CHECK_NRPE: Error - Could not connect to ::1: Connection reset by peer\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port, _ := startNRPE(t, "::1", &NRPEServer{TLSConfig: certs, AllowedHosts: tt.hosts, Handler: newNRPETestChecks().handle})
			code, out := runCheckNRPE(t, "-H", "::1", "-p", port, "-c", "ok")
			out = nrpeResetNamesHost(out, "::1")
			if code != tt.code || out != tt.out {
				t.Errorf("got %d %q, want %d %q", code, out, tt.code, tt.out)
			}
		})
	}
}

// nrpeResetNamesHost puts host back into check_nrpe's report of a refused
// connection: it names the server by asking its socket for the peer's
// address, which fails as "Unknown" when the server's reset came first (the
// server refuses without waiting for the client to speak).
func nrpeResetNamesHost(out, host string) string {
	return strings.Replace(out, "Could not connect to Unknown: Connection reset", "Could not connect to "+host+": Connection reset", 1)
}

// TestNRPECheckNRPETimeout has a command outlast check_nrpe's -t 1: the
// client reports its timeout, and the server's handler is cancelled by the
// connection timeout and leaves no goroutine behind.
func TestNRPECheckNRPETimeout(t *testing.T) {
	checkNRPE(t)
	certs, err := SelfSignedTLS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	tests := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"-t", "1"}, 2, "CHECK_NRPE STATE CRITICAL: Socket timeout after 1 seconds.\n"},
		{[]string{"-t", "1:UNKNOWN", "-2"}, 3, "CHECK_NRPE STATE UNKNOWN: Socket timeout after 1 seconds.\n"},
	}
	tc := newNRPETestChecks()
	t.Run("server", func(t *testing.T) {
		port, _ := startNRPE(t, "127.0.0.1", &NRPEServer{TLSConfig: certs, Timeout: 2 * time.Second, Handler: tc.handle})
		for _, tt := range tests {
			code, out := runCheckNRPE(t, append([]string{"-H", "127.0.0.1", "-p", port, "-c", "slow"}, tt.args...)...)
			if code != tt.code || out != tt.out {
				t.Errorf("check_nrpe %q: got %d %q, want %d %q", tt.args, code, out, tt.code, tt.out)
			}
			select {
			case err := <-tc.slowEnded:
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("slow check ended with %v, want the connection deadline", err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("slow check was never cancelled")
			}
		}
	})
	// The subtest's cleanup waited for Serve; what it started must be gone.
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after the server stopped, %d before", n, before)
	}
}

// nrpeTestPKI is a CA whose certificate is dir/name.pem, and that writes
// what it issues to dir.
type nrpeTestPKI struct {
	*testpki.CA
	dir string
}

func newNRPETestCA(t *testing.T, dir, name string) *nrpeTestPKI {
	t.Helper()
	ca := testpki.NewCA(t, testpki.Options{CommonName: name})
	ca.WriteFiles(t, filepath.Join(dir, name+".pem"), "")
	return &nrpeTestPKI{CA: ca, dir: dir}
}

// issue writes name.pem and name.key, for localhost, signed by the CA.
func (ca *nrpeTestPKI) issue(t *testing.T, name string, usage x509.ExtKeyUsage) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(ca.dir, name+".pem"), filepath.Join(ca.dir, name+".key")
	ca.Issue(t, testpki.Options{CommonName: name, Hosts: []string{"localhost", "127.0.0.1"}, Usage: []x509.ExtKeyUsage{usage}}).
		WriteFiles(t, certFile, keyFile)
	return certFile, keyFile
}

func TestNRPECheckNRPEMutualTLS(t *testing.T) {
	checkNRPE(t)
	dir := t.TempDir()
	ca := newNRPETestCA(t, dir, "ca")
	other := newNRPETestCA(t, dir, "other-ca")
	serverCert, serverKey := ca.issue(t, "server", x509.ExtKeyUsageServerAuth)
	clientCert, clientKey := ca.issue(t, "client", x509.ExtKeyUsageClientAuth)
	strangerCert, strangerKey := other.issue(t, "stranger", x509.ExtKeyUsageClientAuth)
	caFile := filepath.Join(dir, "ca.pem")

	cfg, err := LoadTLS(serverCert, serverKey, caFile)
	if err != nil {
		t.Fatal(err)
	}
	port, logs := startNRPE(t, "127.0.0.1", &NRPEServer{TLSConfig: cfg, Handler: newNRPETestChecks().handle})
	// A refused client certificate shows in check_nrpe as whichever error
	// its next read or write meets (TLS 1.3 checks it after the client's
	// handshake is done), so refusals are checked for failing, not for text.
	tests := []struct {
		name string
		args []string
		ok   bool
	}{
		{"client certificate", []string{"-C", clientCert, "-K", clientKey, "-A", caFile}, true},
		{"client certificate v2", []string{"-2", "-C", clientCert, "-K", clientKey, "-A", caFile}, true},
		{"no client certificate", []string{"-A", caFile}, false},
		{"certificate from another CA", []string{"-C", strangerCert, "-K", strangerKey, "-A", caFile}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := runCheckNRPE(t, append([]string{"-H", "127.0.0.1", "-p", port, "-c", "ok"}, tt.args...)...)
			if tt.ok && (code != 0 || out != "OK: hello\n") {
				t.Errorf("got %d %q, want 0 \"OK: hello\"", code, out)
			}
			if !tt.ok && (code == 0 || !strings.HasPrefix(out, "CHECK_NRPE: ")) {
				t.Errorf("got %d %q, want check_nrpe to fail", code, out)
			}
		})
	}
	if !strings.Contains(logs.String(), "TLS handshake failed") {
		t.Errorf("refused handshakes not logged:\n%s", logs)
	}
}

// TestNRPEAnswer pins our exact text for each kind of query.
func TestNRPEAnswer(t *testing.T) {
	tc := newNRPETestChecks()
	tests := []struct {
		name  string
		s     NRPEServer
		query string
		state nagios.State
		text  string
	}{
		{"hello", NRPEServer{}, "_NRPE_CHECK", nagios.OK, "NRPE v4.1.0"},
		{"hello with our version", NRPEServer{Version: "4.1.0-immune"}, "_NRPE_CHECK", nagios.OK, "NRPE v4.1.0-immune"},
		{"ok", NRPEServer{}, "ok", nagios.OK, "OK: hello"},
		{"perf", NRPEServer{}, "perf", nagios.Warning,
			"WARNING - load high|load1=4.5;4;8;0 'used space'=12MB\nline two\nline three"},
		{"undefined", NRPEServer{}, "check_x", nagios.Unknown, "NRPE: Command 'check_x' not defined"},
		{"empty output", NRPEServer{}, "empty", nagios.Unknown, "NRPE: Unable to read output"},
		{"error", NRPEServer{}, "fail", nagios.Unknown, "NRPE: Command 'fail' failed: boom"},
		{"no query", NRPEServer{}, "", nagios.Unknown, "NRPE: Request contained no query"},
		{"no command", NRPEServer{AllowArgs: true}, "!x", nagios.Unknown, "NRPE: Request contained no command"},
		{"args refused", NRPEServer{}, "args!x", nagios.Unknown,
			"NRPE: Request contained command arguments, but argument option is not enabled"},
		{"hello with args refused", NRPEServer{}, "_NRPE_CHECK!x", nagios.Unknown,
			"NRPE: Request contained command arguments, but argument option is not enabled"},
		{"args", NRPEServer{AllowArgs: true}, "args!a!b c!$ARG1$", nagios.OK, "OK - 3 args: a,b c,$ARG1$"},
		{"16 args", NRPEServer{AllowArgs: true}, "args" + strings.Repeat("!a", 16), nagios.OK,
			"OK - 16 args: " + strings.TrimSuffix(strings.Repeat("a,", 16), ",")},
		{"17 args", NRPEServer{AllowArgs: true}, "args" + strings.Repeat("!a", 17), nagios.Unknown,
			"NRPE: Request contained more than 16 command arguments"},
		{"trailing empty arg", NRPEServer{AllowArgs: true}, "args!a!", nagios.Unknown,
			"NRPE: Request contained an empty command argument"},
		{"substitution", NRPEServer{AllowArgs: true}, "args!$(reboot)", nagios.Unknown,
			"NRPE: Request contained a bash command substitution"},
	}
	for _, c := range nrpeNastyMetachars {
		tests = append(tests, struct {
			name  string
			s     NRPEServer
			query string
			state nagios.State
			text  string
		}{fmt.Sprintf("metachar %q", c), NRPEServer{AllowArgs: true}, "args!a" + string(c) + "b", nagios.Unknown,
			"NRPE: Request contained illegal metachars"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.s.Handler = tc.handle
			state, text := tt.s.answer(context.Background(), nrpeQuietLogger(), tt.query)
			if state != tt.state || text != tt.text {
				t.Errorf("answer(%q) = %s %q, want %s %q", tt.query, state, text, tt.state, tt.text)
			}
		})
	}
}

func TestNRPEAnswerTimeout(t *testing.T) {
	s := NRPEServer{Timeout: 3 * time.Second, Handler: newNRPETestChecks().handle}
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	state, text := s.answer(ctx, nrpeQuietLogger(), "slow")
	if state != nagios.Unknown || text != "NRPE: Command timed out after 3 seconds" {
		t.Errorf("got %s %q", state, text)
	}
}

// nrpeQuery sends one query with our codec, over TLS when cfg is set, and
// returns the answer (io.EOF when the server hung up without one).
func nrpeQuery(ctx context.Context, addr string, cfg *tls.Config, q nrpe.Packet) (nrpe.Packet, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nrpe.Packet{}, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if cfg != nil {
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nrpe.Packet{}, err
		}
		conn = tc
	}
	if _, err := q.WriteTo(conn); err != nil {
		return nrpe.Packet{}, err
	}
	return nrpe.ReadPacket(conn, 0)
}

func TestNRPEServerCodec(t *testing.T) {
	port, logs := startNRPE(t, "127.0.0.1", &NRPEServer{PlainText: true, AllowArgs: true, Handler: newNRPETestChecks().handle})
	addr := net.JoinHostPort("127.0.0.1", port)
	badCRC, err := nrpe.Packet{Version: nrpe.V4, Type: nrpe.Query, Buffer: "ok"}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	badCRC[len(badCRC)-2] ^= 1
	tests := []struct {
		name string
		send func(io.Writer) error
		want nrpe.Packet
		log  string
	}{
		{"v3 answered as v3", nrpePacketSender(nrpe.Packet{Version: nrpe.V3, Type: nrpe.Query, Buffer: "ok"}),
			nrpe.Packet{Version: nrpe.V3, Type: nrpe.Response, ResultCode: 0, Buffer: "OK: hello"}, ""},
		{"v4 args", nrpePacketSender(nrpe.Packet{Version: nrpe.V4, Type: nrpe.Query, Buffer: "args!1!2"}),
			nrpe.Packet{Version: nrpe.V4, Type: nrpe.Response, ResultCode: 0, Buffer: "OK - 2 args: 1,2"}, ""},
		{"v2 big", nrpePacketSender(nrpe.Packet{Version: nrpe.V2, Type: nrpe.Query, Buffer: "big"}),
			nrpe.Packet{Version: nrpe.V2, Type: nrpe.Response, ResultCode: 2, Buffer: nrpeBigOutput[:nrpe.V2MaxText]}, ""},
		{"bad CRC: no answer", func(w io.Writer) error { _, err := w.Write(badCRC); return err },
			nrpe.Packet{}, "CRC32 mismatch"},
		{"response instead of query: no answer", nrpePacketSender(nrpe.Packet{Version: nrpe.V4, Type: nrpe.Response, Buffer: "ok"}),
			nrpe.Packet{}, "not a query"},
		{"garbage: no answer", func(w io.Writer) error { _, err := w.Write([]byte("GET / HTTP/1.0\r\n\r\n")); return err },
			nrpe.Packet{}, "unsupported NRPE packet version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var d net.Dialer
			conn, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			if err := tt.send(conn); err != nil {
				t.Fatal(err)
			}
			got, err := nrpe.ReadPacket(conn, 0)
			if tt.want == (nrpe.Packet{}) {
				// A reset is a hang-up too: the server closed with our
				// unread bytes in its buffer.
				if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
					t.Errorf("got %+v, %v; want the server to hang up", got, err)
				}
				if !strings.Contains(logs.String(), tt.log) {
					t.Errorf("server log does not say %q:\n%s", tt.log, logs)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %.80v, %v\nwant %.80v", got, err, tt.want)
			}
		})
	}
}

func nrpePacketSender(p nrpe.Packet) func(io.Writer) error {
	return func(w io.Writer) error { _, err := p.WriteTo(w); return err }
}

// TestNRPEServeShutdown ends the server's context while a command runs:
// the command is cancelled and Serve returns only after its connection ended.
func TestNRPEServeShutdown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tc := newNRPETestChecks()
	s := &NRPEServer{PlainText: true, Timeout: time.Minute, Handler: tc.handle, Logger: nrpeQuietLogger()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()

	qctx, qcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer qcancel()
	answered := make(chan error, 1)
	go func() {
		_, err := nrpeQuery(qctx, ln.Addr().String(), nil, nrpe.Packet{Version: nrpe.V4, Type: nrpe.Query, Buffer: "slow"})
		answered <- err
	}()
	for tc.running.Load() == 0 {
		select {
		case err := <-answered:
			t.Fatalf("query ended before the command ran: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve = %v, want nil after its context ended", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return")
	}
	if err := <-tc.slowEnded; !errors.Is(err, context.Canceled) {
		t.Errorf("command ended with %v, want context.Canceled", err)
	}
	<-answered
}

// TestNRPEMaxConns sends more queries at once than the server takes and
// checks it never ran more commands at once than MaxConns, yet answered all.
func TestNRPEMaxConns(t *testing.T) {
	tc := newNRPETestChecks()
	port, _ := startNRPE(t, "127.0.0.1", &NRPEServer{PlainText: true, MaxConns: 2, Handler: tc.handle})
	addr := net.JoinHostPort("127.0.0.1", port)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const clients = 8
	errs := make(chan error, clients)
	for range clients {
		go func() {
			p, err := nrpeQuery(ctx, addr, nil, nrpe.Packet{Version: nrpe.V4, Type: nrpe.Query, Buffer: "hold"})
			if err == nil && p.Buffer != "OK held" {
				err = fmt.Errorf("answer %q", p.Buffer)
			}
			errs <- err
		}()
	}
	for range clients {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if most := tc.most.Load(); most > 2 {
		t.Errorf("%d commands ran at once, MaxConns is 2", most)
	}
}

func TestNRPEServeRefusesConfig(t *testing.T) {
	tests := []struct {
		name string
		s    NRPEServer
		want string
	}{
		{"no handler", NRPEServer{PlainText: true}, "no Handler"},
		{"no TLS, plain text not chosen", NRPEServer{Handler: newNRPETestChecks().handle}, "set PlainText"},
		{"negative timeout", NRPEServer{PlainText: true, Handler: newNRPETestChecks().handle, Timeout: -1}, "negative Timeout"},
		{"negative max conns", NRPEServer{PlainText: true, Handler: newNRPETestChecks().handle, MaxConns: -1}, "negative MaxConns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			err = tt.s.Serve(context.Background(), ln)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Serve = %v, want an error saying %q", err, tt.want)
			}
			if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
				t.Errorf("listener left open: %v", err)
			}
		})
	}
}

func TestNRPEServeListenerClosed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	s := NRPEServer{PlainText: true, Handler: newNRPETestChecks().handle, Logger: nrpeQuietLogger()}
	if err := s.Serve(context.Background(), ln); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Serve on a closed listener = %v, want net.ErrClosed", err)
	}
}

func TestNRPEAllowed(t *testing.T) {
	lan := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("192.0.2.7/32"),
	}
	tests := []struct {
		hosts []netip.Prefix
		addr  string
		want  bool
	}{
		{nil, "127.0.0.1", true},
		{nil, "127.9.8.7", true},
		{nil, "::1", true},
		{nil, "::ffff:127.0.0.1", true},
		{nil, "10.1.2.3", false},
		{nil, "::2", false},
		{lan, "10.200.0.1", true},
		{lan, "::ffff:10.200.0.1", true},
		{lan, "2001:db8:1::5", true},
		{lan, "fe80::1%eth0", false},
		{lan, "192.0.2.7", true},
		{lan, "192.0.2.8", false},
		{lan, "127.0.0.1", false},
		{[]netip.Prefix{netip.MustParsePrefix("fe80::/10")}, "fe80::1%eth0", true},
	}
	for _, tt := range tests {
		s := NRPEServer{AllowedHosts: tt.hosts}
		if got := s.allowed(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("allowed(%s) with %v = %v, want %v", tt.addr, tt.hosts, got, tt.want)
		}
	}
}

func TestSelfSignedTLS(t *testing.T) {
	leaf := func(t *testing.T, cfg *tls.Config) *x509.Certificate {
		t.Helper()
		c, err := x509.ParseCertificate(cfg.Certificates[0].Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	t.Run("created then reused", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "nrpe")
		first, err := SelfSignedTLS(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{SelfSignedKeyFile, SelfSignedCertFile} {
			fi, err := os.Stat(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
			}
		}
		c := leaf(t, first)
		if _, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || c.PublicKeyAlgorithm != x509.ECDSA {
			t.Errorf("key is %v, want ECDSA", c.PublicKeyAlgorithm)
		}
		if first.MinVersion != tls.VersionTLS12 {
			t.Errorf("MinVersion %x, want TLS 1.2", first.MinVersion)
		}
		again, err := SelfSignedTLS(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(leaf(t, again).Raw, c.Raw) {
			t.Error("second start made a new certificate")
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 2 {
			t.Errorf("dir holds %d files, want the 2 of the pair (no temporaries)", len(entries))
		}
	})
	t.Run("half-written pair replaced", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := SelfSignedTLS(dir); err != nil {
			t.Fatal(err)
		}
		os.Remove(filepath.Join(dir, SelfSignedCertFile))
		if _, err := SelfSignedTLS(dir); err != nil {
			t.Fatalf("lone key not replaced: %v", err)
		}
	})
	t.Run("expired replaced", func(t *testing.T) {
		dir := t.TempDir()
		certPEM, keyPEM, err := nrpeNewSelfSigned(time.Now().AddDate(-11, 0, 0))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, SelfSignedCertFile), certPEM, 0o600)
		os.WriteFile(filepath.Join(dir, SelfSignedKeyFile), keyPEM, 0o600)
		cfg, err := SelfSignedTLS(dir)
		if err != nil {
			t.Fatal(err)
		}
		if c := leaf(t, cfg); !time.Now().Before(c.NotAfter) {
			t.Errorf("still expired: %v", c.NotAfter)
		}
	})
	t.Run("corrupt file is an error", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, SelfSignedCertFile), []byte("not pem"), 0o600)
		os.WriteFile(filepath.Join(dir, SelfSignedKeyFile), []byte("not pem"), 0o600)
		_, err := SelfSignedTLS(dir)
		if err == nil || !strings.Contains(err.Error(), SelfSignedCertFile) {
			t.Errorf("got %v, want an error naming %s", err, SelfSignedCertFile)
		}
	})
}

func TestLoadTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newNRPETestCA(t, dir, "ca")
	cert, key := ca.issue(t, "server", x509.ExtKeyUsageServerAuth)
	notPEM := filepath.Join(dir, "empty.pem")
	os.WriteFile(notPEM, []byte("nothing here\n"), 0o600)
	tests := []struct {
		name             string
		cert, key, ca    string
		wantAuth         tls.ClientAuthType
		wantErrSubstring string
	}{
		{"server only", cert, key, "", tls.NoClientCert, ""},
		{"mutual", cert, key, filepath.Join(dir, "ca.pem"), tls.RequireAndVerifyClientCert, ""},
		{"missing cert", filepath.Join(dir, "nope.pem"), key, "", 0, "nope.pem"},
		{"missing CA", cert, key, filepath.Join(dir, "nope-ca.pem"), 0, "nope-ca.pem"},
		{"CA without PEM", cert, key, notPEM, 0, "no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := LoadTLS(tt.cert, tt.key, tt.ca)
			if tt.wantErrSubstring != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErrSubstring) {
					t.Errorf("got %v, want an error saying %q", err, tt.wantErrSubstring)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.ClientAuth != tt.wantAuth || cfg.MinVersion != tls.VersionTLS12 {
				t.Errorf("ClientAuth %v MinVersion %x", cfg.ClientAuth, cfg.MinVersion)
			}
		})
	}
}

// BenchmarkNRPEServer measures queries answered per second, each on a new
// TLS connection as check_nrpe makes them, from clients on every core.
// "echo" answers a fixed result; "check_load" runs our check_load in
// process, the check Debian's nrpe runs as a plugin for comparison.
func BenchmarkNRPEServer(b *testing.B) {
	certs, err := SelfSignedTLS(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	spec, ok := checks.Lookup("check_load")
	if !ok {
		b.Fatal("check_load not registered")
	}
	handlers := map[string]NRPEHandler{
		"echo": func(context.Context, string, []string) (nagios.Result, error) {
			return nagios.Result{State: nagios.OK, Output: "OK: hello"}, nil
		},
		"check_load": func(ctx context.Context, _ string, _ []string) (nagios.Result, error) {
			c, err := spec.New([]string{"-w", "15,10,5", "-c", "30,25,20"})
			if err != nil {
				return nagios.Result{}, err
			}
			return checks.Run(ctx, "check_load", c), nil
		},
	}
	pool := x509.NewCertPool()
	leaf, err := x509.ParseCertificate(certs.Certificates[0].Certificate[0])
	if err != nil {
		b.Fatal(err)
	}
	pool.AddCert(leaf)
	client := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	for _, name := range []string{"echo", "check_load"} {
		b.Run(name, func(b *testing.B) {
			port, _ := startNRPE(b, "127.0.0.1", &NRPEServer{TLSConfig: certs, MaxConns: 64, Handler: handlers[name]})
			addr := net.JoinHostPort("127.0.0.1", port)
			q := nrpe.Packet{Version: nrpe.V4, Type: nrpe.Query, Buffer: name}
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					p, err := nrpeQuery(ctx, addr, client, q)
					cancel()
					if err != nil || p.ResultCode > 2 {
						b.Errorf("query: %+v %v", p, err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
		})
	}
}
