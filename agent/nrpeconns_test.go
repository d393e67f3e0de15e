package agent

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestNRPEIdleConnectionsDoNotLockOutNagios fills every connection slot
// with connections from an allowed host that never send a byte: Debian's
// check_nrpe is still answered, by closing the oldest idle one, rather than
// waiting for the idle ones to time out.
func TestNRPEIdleConnectionsDoNotLockOutNagios(t *testing.T) {
	checkNRPE(t)
	certs, err := SelfSignedTLS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const maxConns = 64
	port, logs := startNRPE(t, "127.0.0.1", &NRPEServer{TLSConfig: certs, MaxConns: maxConns, Timeout: time.Minute, Handler: newNRPETestChecks().handle})
	addr := net.JoinHostPort("127.0.0.1", port)
	idle := make([]net.Conn, maxConns)
	for i := range idle {
		if idle[i], err = net.Dial("tcp", addr); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { idle[i].Close() })
	}

	start := time.Now()
	code, out := runCheckNRPE(t, "-H", "127.0.0.1", "-p", port, "-t", "10", "-c", "ok")
	took := time.Since(start)
	if code != 0 || out != "OK: hello\n" {
		t.Fatalf("check_nrpe behind %d idle connections: %d %q after %v", maxConns, code, out, took)
	}
	// nrpeEvictAfter, and the default handshake timeout is longer: the
	// answer came from an eviction, not an idle connection timing out.
	if took > nrpeDefaultHandshakeTimeout-time.Second {
		t.Errorf("check_nrpe answered after %v behind idle connections", took)
	}
	if !strings.Contains(logs.String(), "sent no query") {
		t.Errorf("the eviction was not logged:\n%s", logs)
	}
	// The oldest idle connection was the one closed.
	idle[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle[0].Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the oldest idle connection is still open: %v", err)
	}
}

// TestNRPERefusedFlood floods the server from an address not in its
// allowed hosts: each connection is closed at once, the log says so a
// bounded number of times, and an allowed client is answered meanwhile.
func TestNRPERefusedFlood(t *testing.T) {
	checkNRPE(t)
	certs, err := SelfSignedTLS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	port, logs := startNRPE(t, "127.0.0.1", &NRPEServer{
		TLSConfig: certs, MaxConns: 4, Handler: newNRPETestChecks().handle,
		AllowedHosts: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
	})
	addr := net.JoinHostPort("127.0.0.1", port)

	const workers, perWorker = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker)
	stopFlood := make(chan struct{})
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
			for range perWorker {
				select {
				case <-stopFlood:
					return
				default:
				}
				errs <- refusedAtOnce(d, addr)
			}
		}()
	}
	// Nagios, from an allowed address, during the flood.
	for range 3 {
		if code, out := runCheckNRPE(t, "-H", "127.0.0.1", "-p", port, "-t", "10", "-c", "ok"); code != 0 || out != "OK: hello\n" {
			t.Errorf("allowed client during the flood: %d %q", code, out)
		}
	}
	wg.Wait()
	close(stopFlood)
	close(errs)
	failed := 0
	for err := range errs {
		if err != nil {
			if failed++; failed <= 3 {
				t.Error(err)
			}
		}
	}
	if failed > 3 {
		t.Errorf("... and %d more", failed-3)
	}
	// The first refusal is logged at once; the rest wait for the interval
	// (longer than this test) to be summed up in one line.
	if n := strings.Count(logs.String(), "not in allowed hosts"); n < 1 || n > 2 {
		t.Errorf("%d log lines for %d refused connections:\n%.2000s", n, workers*perWorker, logs)
	}
}

// refusedAtOnce connects from d's address and wants the server to hang up
// without waiting for anything from the client.
func refusedAtOnce(d net.Dialer, addr string) error {
	conn, err := d.Dial("tcp", addr)
	if errors.Is(err, syscall.ECONNRESET) {
		return nil // the reset came before connect(2) returned
	}
	if err != nil {
		return err
	}
	defer conn.Close()
	start := time.Now()
	conn.SetReadDeadline(start.Add(3 * time.Second))
	_, err = conn.Read(make([]byte, 1))
	took := time.Since(start)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return errors.New("refused connection left open for 3s")
	case err == nil:
		return errors.New("refused connection was sent data")
	case !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET):
		return err
	case took > time.Second/2:
		return errors.New("refused connection closed only after " + took.String())
	}
	return nil
}

// TestNRPEHandshakeTimeout: a client that connects and sends nothing, or
// half a query, is hung up on after HandshakeTimeout, not the command's
// Timeout.
func TestNRPEHandshakeTimeout(t *testing.T) {
	certs, err := SelfSignedTLS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*NRPEServer{
		"TLS handshake": {TLSConfig: certs},
		"plain query":   {PlainText: true},
	} {
		t.Run(name, func(t *testing.T) {
			s.Handler = newNRPETestChecks().handle
			s.Timeout = time.Minute
			s.HandshakeTimeout = 300 * time.Millisecond
			port, _ := startNRPE(t, "127.0.0.1", s)
			conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", port))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if s.PlainText {
				conn.Write([]byte{0, 4, 0, 1}) // the start of a v4 query
			}
			start := time.Now()
			conn.SetReadDeadline(start.Add(10 * time.Second))
			_, err = conn.Read(make([]byte, 1))
			if errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) > 5*time.Second {
				t.Errorf("silent client hung up on after %v (%v), want about %v", time.Since(start), err, s.HandshakeTimeout)
			}
		})
	}
}

func TestLogLimiter(t *testing.T) {
	var logs nrpeLogBuffer
	l := newLogLimiter(slog.New(slog.NewTextHandler(&logs, nil)), "refused", 200*time.Millisecond)
	lines := func() []string { return strings.Split(strings.TrimSpace(logs.String()), "\n") }
	for i := range 1000 {
		l.note("10.0.0." + string(rune('0'+i%10)))
	}
	if got := lines(); len(got) != 1 || !strings.Contains(got[0], "remote=10.0.0.0") {
		t.Fatalf("after a burst: %q, want the first event only", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(lines()) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := lines(); len(got) != 2 || !strings.Contains(got[1], "more=999") || !strings.Contains(got[1], "last_remote=10.0.0.9") {
		t.Fatalf("after the interval: %q, want one line summing up the other 999", got)
	}
	l.note("10.0.0.1")
	l.stop()
	if got := lines(); len(got) != 3 || !strings.Contains(got[2], "more=1") {
		t.Fatalf("after stop: %q, want what was held written", got)
	}
	time.Sleep(300 * time.Millisecond)
	if got := lines(); len(got) != 3 {
		t.Errorf("written after stop: %q", got)
	}
}
