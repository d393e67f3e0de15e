package checks

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/immune-ops/immune/nagios"
)

func readApacheFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "apache", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func apacheInt(n int64) *int64       { return &n }
func apacheFloat(v float64) *float64 { return &v }

// apacheBoard builds scoreboard counts from pairs: state character, count.
func apacheBoard(pairs ...int) map[byte]int {
	m := map[byte]int{}
	for i := 0; i+1 < len(pairs); i += 2 {
		m[byte(pairs[i])] = pairs[i+1]
	}
	return m
}

func TestParseApacheStatusFixtures(t *testing.T) {
	tests := []struct {
		file string
		want apacheStatus
	}{
		{"2.4.71-event-tls.txt", apacheStatus{
			Version: "Apache/2.4.71 (Debian) OpenSSL/3.0.19", MPM: "event", Uptime: apacheInt(2),
			Busy: 1, Idle: 74, Conns: apacheInt(0), AsyncWriting: apacheInt(0), AsyncKeepAlive: apacheInt(0), AsyncClosing: apacheInt(0),
			Accesses: apacheInt(5), KBytes: apacheInt(40), ReqPerSec: apacheFloat(2.5),
			Slots: 400, Scoreboard: apacheBoard('_', 74, 'W', 1, '.', 325),
		}},
		{"2.4.71-event-reading.txt", apacheStatus{
			Version: "Apache/2.4.71 (Debian)", MPM: "event", Uptime: apacheInt(8),
			Busy: 5, Idle: 95, Conns: apacheInt(0), AsyncWriting: apacheInt(0), AsyncKeepAlive: apacheInt(0), AsyncClosing: apacheInt(0),
			Accesses: apacheInt(9), KBytes: apacheInt(42), ReqPerSec: apacheFloat(1.125),
			Slots: 400, Scoreboard: apacheBoard('_', 95, 'R', 4, 'W', 1, '.', 300),
		}},
		{"2.4.71-event-basic.txt", apacheStatus{
			Version: "Apache/2.4.71 (Debian)", MPM: "event", Uptime: apacheInt(182),
			Busy: 1, Idle: 74, Conns: apacheInt(0), AsyncWriting: apacheInt(0), AsyncKeepAlive: apacheInt(0), AsyncClosing: apacheInt(0),
			Slots: 400, Scoreboard: apacheBoard('_', 74, 'W', 1, '.', 325),
		}},
		{"2.4.71-prefork-busy.txt", apacheStatus{
			Version: "Apache/2.4.71 (Debian)", MPM: "prefork", Uptime: apacheInt(28),
			Busy: 10, Idle: 0, Accesses: apacheInt(50), KBytes: apacheInt(204), ReqPerSec: apacheFloat(1.78571),
			Slots: 256, Scoreboard: apacheBoard('K', 6, 'R', 3, 'W', 1, 'S', 2, '.', 244),
		}},
		{"2.4.71-worker-busy.txt", apacheStatus{
			Version: "Apache/2.4.71 (Debian)", MPM: "worker", Uptime: apacheInt(30),
			Busy: 10, Idle: 90, Accesses: apacheInt(50), KBytes: apacheInt(475), ReqPerSec: apacheFloat(1.66667),
			Slots: 400, Scoreboard: apacheBoard('_', 90, 'K', 6, 'R', 3, 'W', 1, '.', 300),
		}},
		{"legacy-extended.txt", apacheStatus{
			Uptime: apacheInt(131438), Busy: 1, Idle: 9, Accesses: apacheInt(17418), KBytes: apacheInt(221213), ReqPerSec: apacheFloat(0.132519),
			Slots: 256, Scoreboard: apacheBoard('_', 9, 'W', 1, '.', 246),
		}},
		{"legacy-extended-long-uptime.txt", apacheStatus{
			Uptime: apacheInt(7092181), Busy: 1, Idle: 4, Accesses: apacheInt(79820), KBytes: apacheInt(400659), ReqPerSec: apacheFloat(0.0112546),
			Slots: 128, Scoreboard: apacheBoard('_', 4, 'W', 1, '.', 123),
		}},
		{"legacy-event-extended.txt", apacheStatus{
			Uptime: apacheInt(566), Busy: 1, Idle: 49, Conns: apacheInt(2), AsyncWriting: apacheInt(0), AsyncKeepAlive: apacheInt(2), AsyncClosing: apacheInt(0),
			Accesses: apacheInt(575), KBytes: apacheInt(433), ReqPerSec: apacheFloat(1.0159),
			Slots: 150, Scoreboard: apacheBoard('_', 49, 'W', 1, '.', 100),
		}},
		{"legacy-event-basic.txt", apacheStatus{
			Busy: 1, Idle: 49, Conns: apacheInt(2), AsyncWriting: apacheInt(0), AsyncKeepAlive: apacheInt(2), AsyncClosing: apacheInt(0),
			Slots: 150, Scoreboard: apacheBoard('_', 49, 'W', 1, '.', 100),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := parseApacheStatus(readApacheFixture(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseApacheStatusText(t *testing.T) {
	tests := []struct {
		name, text string
		want       apacheStatus
		wantErr    string
	}{
		{name: "CRLF line ends", text: "BusyWorkers: 2\r\nIdleWorkers: 3\r\nScoreboard: _WR__\r\n",
			want: apacheStatus{Busy: 2, Idle: 3, Slots: 5, Scoreboard: apacheBoard('_', 3, 'W', 1, 'R', 1)}},
		{name: "every state, and one Apache may add later", text: "BusyWorkers: 7\nIdleWorkers: 1\nScoreboard: _SRWKDCLGI.?\n",
			want: apacheStatus{Busy: 7, Idle: 1, Slots: 12, Scoreboard: apacheBoard('_', 1, 'S', 1, 'R', 1, 'W', 1, 'K', 1, 'D', 1, 'C', 1, 'L', 1, 'G', 1, 'I', 1, '.', 1, '?', 1)}},
		{name: "no scoreboard", text: "BusyWorkers: 2\nIdleWorkers: 3\n", want: apacheStatus{Busy: 2, Idle: 3}},
		{name: "rate in exponent form", text: "ReqPerSec: 7.89602e-06\nBusyWorkers: 0\nIdleWorkers: 0\n",
			want: apacheStatus{ReqPerSec: apacheFloat(7.89602e-06)}},
		{name: "IPv6 server name line", text: "2001:db8::1\nBusyWorkers: 1\nIdleWorkers: 2\n", want: apacheStatus{Busy: 1, Idle: 2}},
		{name: "empty", text: "", wantErr: "empty page: not mod_status ?auto output"},
		{name: "blank", text: " \n\r\n", wantErr: "empty page"},
		{name: "HTML", text: "\n<!DOCTYPE html><html><body>Welcome</body></html>", wantErr: "got an HTML page, not mod_status ?auto output (does -u end in ?auto?)"},
		{name: "HTML status page", text: readApacheFixture(t, "2.4.71-status.html"), wantErr: "got an HTML page"},
		{name: "other text", text: "hello: world\n", wantErr: "no BusyWorkers line: not mod_status ?auto output"},
		{name: "no idle line", text: "BusyWorkers: 1\nScoreboard: _W\n", wantErr: "no IdleWorkers line"},
		{name: "word for a count", text: "BusyWorkers: many\nIdleWorkers: 1\n", wantErr: `BusyWorkers: "many" is not a count`},
		{name: "negative count", text: "BusyWorkers: 1\nIdleWorkers: -1\n", wantErr: `IdleWorkers: "-1" is not a count`},
		{name: "count too large", text: "BusyWorkers: 1\nIdleWorkers: 1\nConnsTotal: 99999999999999999999\n", wantErr: `ConnsTotal: "99999999999999999999" is not a count`},
		{name: "fraction for a count", text: "Total Accesses: 1.5\nBusyWorkers: 1\nIdleWorkers: 1\n", wantErr: `Total Accesses: "1.5" is not a count`},
		{name: "NaN rate", text: "ReqPerSec: NaN\nBusyWorkers: 1\nIdleWorkers: 1\n", wantErr: `ReqPerSec: "NaN" is not a rate`},
		{name: "negative rate", text: "ReqPerSec: -2\nBusyWorkers: 1\nIdleWorkers: 1\n", wantErr: `ReqPerSec: "-2" is not a rate`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseApacheStatus(tt.text)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// apacheServer serves the fixtures at /status/<file> and the failures a
// check meets, on a loopback port, and records what the check sent.
type apacheServer struct {
	*httptest.Server
	port string

	mu       sync.Mutex
	host     string
	sni      string
	tlsVer   uint16
	agent    string
	hasQuery bool
}

// newApacheServer starts the server on l, or on 127.0.0.1 when l is nil.
func newApacheServer(t *testing.T, useTLS bool, l net.Listener) *apacheServer {
	t.Helper()
	s := &apacheServer{}
	release := make(chan struct{})
	mux := http.NewServeMux()
	serveFixture := func(w http.ResponseWriter, r *http.Request) {
		s.record(r)
		b, err := os.ReadFile(filepath.Join("testdata", "apache", r.PathValue("file")))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=ISO-8859-1")
		w.Write(b)
	}
	mux.HandleFunc("GET /status/{file}", serveFixture)
	mux.HandleFunc("GET /text/no-scoreboard", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("BusyWorkers: 2\nIdleWorkers: 3\n"))
	})
	mux.HandleFunc("GET /empty", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("GET /huge", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("Scoreboard: "+strings.Repeat("_", 1000)+"\n", 2000)))
	})
	mux.HandleFunc("GET /code/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.PathValue("code"))
		w.WriteHeader(code)
	})
	mux.HandleFunc("GET /moved", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/status/2.4.71-event-tls.txt", http.StatusMovedPermanently)
	})
	mux.HandleFunc("GET /private/{file}", func(w http.ResponseWriter, r *http.Request) {
		if user, pass, ok := r.BasicAuth(); !ok || user != "nagios" || pass != "s3:cret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="status"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		serveFixture(w, r)
	})
	mux.HandleFunc("GET /hang", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	s.Server = httptest.NewUnstartedServer(mux)
	if l != nil {
		s.Listener.Close()
		s.Listener = l
	}
	if useTLS {
		s.StartTLS()
	} else {
		s.Start()
	}
	// Cleanups run last-in first-out: release the hanging handlers, then close.
	t.Cleanup(s.Close)
	t.Cleanup(func() { close(release) })
	_, s.port, _ = net.SplitHostPort(s.Listener.Addr().String())
	return s
}

func (s *apacheServer) record(r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.host, s.agent, s.hasQuery = r.Host, r.UserAgent(), r.URL.Query().Has("auto")
	if r.TLS != nil {
		s.sni, s.tlsVer = r.TLS.ServerName, r.TLS.Version
	}
}

func (s *apacheServer) seen() (host, sni string, tlsVer uint16, agent string, hasQuery bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.host, s.sni, s.tlsVer, s.agent, s.hasQuery
}

// args are the options that point check_apache at path on s, then extra.
func (s *apacheServer) args(path string, extra ...string) []string {
	return append([]string{"-H", "127.0.0.1", "-p", s.port, "-u", path}, extra...)
}

// TestApacheOutput is the golden test of what Nagios reads, for each fixture
// served over HTTP.
func TestApacheOutput(t *testing.T) {
	srv := newApacheServer(t, false, nil)
	assertOutputs(t, "check_apache", []outputCase{
		{"legacy page, no thresholds", srv.args("/status/legacy-extended.txt?auto"), nagios.OK,
			"APACHE OK - 1 busy workers (0.39%), 9 idle, 1 connections, 0.133 requests/s" +
				"|busy=1;;;0;256 idle=9;;;0;256 busy_pct=0.39%;;;0;100 conns=1;;;0 req_per_sec=0.132519;;;0 accesses=17418c kbytes=221213c" +
				" sb_waiting=9;;;0;256 sb_starting=0;;;0;256 sb_reading=0;;;0;256 sb_sending=1;;;0;256 sb_keepalive=0;;;0;256 sb_dns=0;;;0;256" +
				" sb_closing=0;;;0;256 sb_logging=0;;;0;256 sb_graceful=0;;;0;256 sb_idle_cleanup=0;;;0;256 sb_open=246;;;0;256\n" +
				"up 36h30m38s\n" +
				"Since start: 17418 requests, 221213 kB sent\n" +
				"Scoreboard, 256 slots: 9 waiting, 0 starting, 0 reading, 1 sending, 0 keepalive, 0 dns lookup, 0 closing, 0 logging, 0 graceful, 0 idle cleanup, 246 open\n"},
		{"prefork out of idle workers", srv.args("/status/2.4.71-prefork-busy.txt?auto", "-w", "8", "-c", "200", "--idle-warning", "5", "--idle-critical", "1"), nagios.Critical,
			"APACHE CRITICAL - 10 busy workers (3.91%), 0 idle, 10 connections, 1.786 requests/s" +
				"|busy=10;8;200;0;256 idle=0;5:;1:;0;256 busy_pct=3.91%;;;0;100 conns=10;;;0 req_per_sec=1.78571;;;0 accesses=50c kbytes=204c" +
				" sb_waiting=0;;;0;256 sb_starting=2;;;0;256 sb_reading=3;;;0;256 sb_sending=1;;;0;256 sb_keepalive=6;;;0;256 sb_dns=0;;;0;256" +
				" sb_closing=0;;;0;256 sb_logging=0;;;0;256 sb_graceful=0;;;0;256 sb_idle_cleanup=0;;;0;256 sb_open=244;;;0;256\n" +
				"Apache/2.4.71 (Debian), prefork MPM, up 28s\n" +
				"Since start: 50 requests, 204 kB sent\n" +
				"Scoreboard, 256 slots: 0 waiting, 2 starting, 3 reading, 1 sending, 6 keepalive, 0 dns lookup, 0 closing, 0 logging, 0 graceful, 0 idle cleanup, 244 open\n"},
		{"event with mod_ssl lines, busy_pct", srv.args("/status/2.4.71-event-tls.txt?auto", "-m", "busy_pct", "-w", "0.2", "-c", "50"), nagios.Warning,
			"APACHE WARNING - 1 busy workers (0.25%), 74 idle, 0 connections, 2.5 requests/s" +
				"|busy=1;;;0;400 idle=74;;;0;400 busy_pct=0.25%;0.2;50;0;100 conns=0;;;0 req_per_sec=2.5;;;0 accesses=5c kbytes=40c" +
				" async_writing=0;;;0 async_keepalive=0;;;0 async_closing=0;;;0" +
				" sb_waiting=74;;;0;400 sb_starting=0;;;0;400 sb_reading=0;;;0;400 sb_sending=1;;;0;400 sb_keepalive=0;;;0;400 sb_dns=0;;;0;400" +
				" sb_closing=0;;;0;400 sb_logging=0;;;0;400 sb_graceful=0;;;0;400 sb_idle_cleanup=0;;;0;400 sb_open=325;;;0;400\n" +
				"Apache/2.4.71 (Debian) OpenSSL/3.0.19, event MPM, up 2s\n" +
				"Since start: 5 requests, 40 kB sent\n" +
				"Async connections: 0 writing, 0 keepalive, 0 closing\n" +
				"Scoreboard, 400 slots: 74 waiting, 0 starting, 0 reading, 1 sending, 0 keepalive, 0 dns lookup, 0 closing, 0 logging, 0 graceful, 0 idle cleanup, 325 open\n"},
		{"legacy event, ExtendedStatus Off, conns", srv.args("/status/legacy-event-basic.txt?auto", "-m", "conns", "-w", "1", "-c", "10"), nagios.Warning,
			"APACHE WARNING - 1 busy workers (0.67%), 49 idle, 2 connections" +
				"|busy=1;;;0;150 idle=49;;;0;150 busy_pct=0.67%;;;0;100 conns=2;1;10;0" +
				" async_writing=0;;;0 async_keepalive=2;;;0 async_closing=0;;;0" +
				" sb_waiting=49;;;0;150 sb_starting=0;;;0;150 sb_reading=0;;;0;150 sb_sending=1;;;0;150 sb_keepalive=0;;;0;150 sb_dns=0;;;0;150" +
				" sb_closing=0;;;0;150 sb_logging=0;;;0;150 sb_graceful=0;;;0;150 sb_idle_cleanup=0;;;0;150 sb_open=100;;;0;150\n" +
				"Async connections: 0 writing, 2 keepalive, 0 closing\n" +
				"Scoreboard, 150 slots: 49 waiting, 0 starting, 0 reading, 1 sending, 0 keepalive, 0 dns lookup, 0 closing, 0 logging, 0 graceful, 0 idle cleanup, 100 open\n"},
		{"worker, idle as the metric", srv.args("/status/2.4.71-worker-busy.txt?auto", "--metric=idle", "--warning=95:", "--critical=10:"), nagios.Warning,
			"APACHE WARNING - 10 busy workers (2.5%), 90 idle, 10 connections, 1.667 requests/s" +
				"|busy=10;;;0;400 idle=90;95:;10:;0;400 busy_pct=2.5%;;;0;100 conns=10;;;0 req_per_sec=1.66667;;;0 accesses=50c kbytes=475c" +
				" sb_waiting=90;;;0;400 sb_starting=0;;;0;400 sb_reading=3;;;0;400 sb_sending=1;;;0;400 sb_keepalive=6;;;0;400 sb_dns=0;;;0;400" +
				" sb_closing=0;;;0;400 sb_logging=0;;;0;400 sb_graceful=0;;;0;400 sb_idle_cleanup=0;;;0;400 sb_open=300;;;0;400\n" +
				"Apache/2.4.71 (Debian), worker MPM, up 30s\n" +
				"Since start: 50 requests, 475 kB sent\n" +
				"Scoreboard, 400 slots: 90 waiting, 0 starting, 3 reading, 1 sending, 6 keepalive, 0 dns lookup, 0 closing, 0 logging, 0 graceful, 0 idle cleanup, 300 open\n"},
		{"no scoreboard", srv.args("/text/no-scoreboard", "-w", "5"), nagios.OK,
			"APACHE OK - 2 busy workers, 3 idle, 2 connections|busy=2;5;;0 idle=3;;;0 conns=2;;;0\n"},
	})
}

// TestApacheFixturesJudged runs every fixture through the check, so each
// page a server can send is known to give a clean OK.
func TestApacheFixturesJudged(t *testing.T) {
	srv := newApacheServer(t, false, nil)
	files, err := filepath.Glob(filepath.Join("testdata", "apache", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, file := range files {
		name := filepath.Base(file)
		got := runOurs(t, context.Background(), "check_apache", srv.args("/status/"+name+"?auto")...)
		if got.Code != 0 || !strings.HasPrefix(got.Raw, "APACHE OK - ") || len(got.Result.Perf) < 4 {
			t.Errorf("%s: exit %d\n%s", name, got.Code, got.Raw)
		}
	}
}

func TestApacheFailures(t *testing.T) {
	srv := newApacheServer(t, false, nil)
	closedPort := npClosedPort(t)
	base := "http://127.0.0.1:" + srv.port

	assertOutputs(t, "check_apache", []outputCase{
		{"connection refused", []string{"-H", "127.0.0.1", "-p", closedPort}, nagios.Critical,
			"APACHE CRITICAL - Unable to open TCP socket: dial tcp 127.0.0.1:" + closedPort + ": connect: connection refused\n"},
		{"timeout", srv.args("/hang", "-t", "0.3"), nagios.Critical,
			"APACHE CRITICAL - Socket timeout after 0.3 seconds\n"},
		{"timeout with its own state", srv.args("/hang", "-t", "0.3:UNKNOWN"), nagios.Unknown,
			"APACHE UNKNOWN - Socket timeout after 0.3 seconds\n"},
		{"not found", srv.args("/code/404"), nagios.Critical,
			"APACHE CRITICAL - HTTP/1.1 404 Not Found from " + base + "/code/404\n"},
		{"forbidden", srv.args("/code/403"), nagios.Critical,
			"APACHE CRITICAL - HTTP/1.1 403 Forbidden from " + base + "/code/403\n"},
		{"server error", srv.args("/code/503"), nagios.Critical,
			"APACHE CRITICAL - HTTP/1.1 503 Service Unavailable from " + base + "/code/503\n"},
		{"redirect is not followed", srv.args("/moved"), nagios.Critical,
			"APACHE CRITICAL - HTTP/1.1 301 Moved Permanently from " + base + "/moved\n"},
		{"HTML page", srv.args("/status/2.4.71-status.html"), nagios.Unknown,
			"APACHE UNKNOWN - " + base + "/status/2.4.71-status.html: got an HTML page, not mod_status ?auto output (does -u end in ?auto?)\n"},
		{"empty page", srv.args("/empty"), nagios.Unknown,
			"APACHE UNKNOWN - " + base + "/empty: empty page: not mod_status ?auto output\n"},
		{"page too large", srv.args("/huge"), nagios.Unknown,
			"APACHE UNKNOWN - " + base + "/huge: the page is over 1048576 bytes: not mod_status ?auto output\n"},
		{"busy_pct without a scoreboard", srv.args("/text/no-scoreboard", "-m", "busy_pct", "-w", "50"), nagios.Unknown,
			"APACHE UNKNOWN - " + base + "/text/no-scoreboard has no Scoreboard line to compute busy_pct from\n"},
		{"password missing", srv.args("/private/legacy-extended.txt"), nagios.Critical,
			"APACHE CRITICAL - HTTP/1.1 401 Unauthorized from " + base + "/private/legacy-extended.txt\n"},
		// check_http takes -S3 and fails on connecting; so does check_apache.
		{"SSLv3", []string{"-I", "127.0.0.1", "-p", srv.port, "-S3"}, nagios.Critical,
			"APACHE CRITICAL - SSL protocol version 3 is not supported by your SSL library.\n"},
		{"TLS to a plain HTTP port", []string{"-I", "127.0.0.1", "-p", srv.port, "-S"}, nagios.Critical,
			"APACHE CRITICAL - GET https://127.0.0.1:" + srv.port + "/server-status?auto: http: server gave HTTP response to HTTPS client\n"},
	})
}

func TestApacheCancelled(t *testing.T) {
	srv := newApacheServer(t, false, nil)
	c, err := newApache(srv.args("/hang"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := c.Run(ctx)
	if want := "APACHE UNKNOWN - check cancelled: context canceled"; r.State != nagios.Unknown || r.Output != want {
		t.Errorf("got %s %q, want UNKNOWN %q", r.State, r.Output, want)
	}
}

// TestApacheRequest checks what reaches the server: Host header, SNI, TLS
// version, credentials, the ?auto query.
func TestApacheRequest(t *testing.T) {
	plain := newApacheServer(t, false, nil)
	secure := newApacheServer(t, true, nil)
	tests := []struct {
		name     string
		srv      *apacheServer
		args     []string
		wantHost string
		wantSNI  string
		wantTLS  uint16
	}{
		{"-H names the virtual host", plain, []string{"-H", "127.0.0.1", "-p", plain.port, "-u", "/status/legacy-extended.txt?auto"},
			"127.0.0.1:" + plain.port, "", 0},
		{"-H with its port", plain, []string{"-H", "127.0.0.1:" + plain.port, "-u", "/status/legacy-extended.txt?auto"},
			"127.0.0.1:" + plain.port, "", 0},
		{"-I connects, -H is the Host", plain, []string{"-I", "127.0.0.1", "-H", "status.example", "-p", plain.port, "-u", "/status/legacy-extended.txt?auto"},
			"status.example:" + plain.port, "", 0},
		{"-H port in the Host header, -p to connect", plain, []string{"-I", "127.0.0.1", "-H", "status.example:8080", "-p", plain.port, "-u", "/status/legacy-extended.txt?auto"},
			"status.example:8080", "", 0},
		{"basic authentication", plain, []string{"-H", "127.0.0.1", "-p", plain.port, "-u", "/private/legacy-extended.txt?auto", "-a", "nagios:s3:cret"},
			"", "", 0},
		{"TLS sends the virtual host as SNI", secure, []string{"-I", "127.0.0.1", "-H", "status.example", "-p", secure.port, "-S", "-u", "/status/legacy-extended.txt?auto"},
			"status.example:" + secure.port, "status.example", tls.VersionTLS13},
		{"TLS 1.2 pinned", secure, []string{"-I", "127.0.0.1", "-H", "status.example", "-p", secure.port, "-S1.2", "-u", "/status/legacy-extended.txt?auto"},
			"status.example:" + secure.port, "status.example", tls.VersionTLS12},
		{"TLS 1.2 or newer", secure, []string{"-I", "127.0.0.1", "-p", secure.port, "--ssl=1.2+", "-u", "/status/legacy-extended.txt?auto"},
			"127.0.0.1:" + secure.port, "", tls.VersionTLS13},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runOurs(t, context.Background(), "check_apache", tt.args...)
			if got.Code != 0 {
				t.Fatalf("exit %d\n%s", got.Code, got.Raw)
			}
			host, sni, ver, agent, hasQuery := tt.srv.seen()
			if tt.wantHost != "" && host != tt.wantHost {
				t.Errorf("Host %q, want %q", host, tt.wantHost)
			}
			if sni != tt.wantSNI || ver != tt.wantTLS {
				t.Errorf("SNI %q TLS %x, want %q %x", sni, ver, tt.wantSNI, tt.wantTLS)
			}
			if agent != "check_apache/v"+Version+" (immune)" || !hasQuery {
				t.Errorf("User-Agent %q, ?auto sent %v", agent, hasQuery)
			}
		})
	}
}

func TestApacheIPv6(t *testing.T) {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	srv := newApacheServer(t, false, l)
	for _, args := range [][]string{
		{"-I", "::1", "-6", "-p", srv.port},
		{"-I", "[::1]", "-p", srv.port},
		{"-H", "[::1]:" + srv.port},
	} {
		got := runOurs(t, context.Background(), "check_apache", append(args, "-u", "/status/legacy-event-basic.txt?auto")...)
		host, _, _, _, _ := srv.seen()
		if got.Code != 0 || host != "[::1]:"+srv.port {
			t.Errorf("%v: exit %d, Host %q\n%s", args, got.Code, host, got.Raw)
		}
	}
	got := runOurs(t, context.Background(), "check_apache", "-I", "::1", "-4", "-p", srv.port)
	if got.Code != 2 || !strings.HasPrefix(got.Raw, "APACHE CRITICAL - Unable to open TCP socket: ") {
		t.Errorf("-4 to an IPv6 address: exit %d\n%s", got.Code, got.Raw)
	}
}

// TestApacheTarget checks where the flags point the check, without a network.
func TestApacheTarget(t *testing.T) {
	tests := []struct {
		args                   []string
		url, dialAddr, network string
	}{
		{[]string{"-H", "www.example"}, "http://www.example/server-status?auto", "www.example:80", "tcp"},
		{[]string{"-H", "www.example", "-S"}, "https://www.example/server-status?auto", "www.example:443", "tcp"},
		{[]string{"-H", "www.example", "-S", "-p", "443"}, "https://www.example/server-status?auto", "www.example:443", "tcp"},
		{[]string{"-H", "www.example", "-p", "8080"}, "http://www.example:8080/server-status?auto", "www.example:8080", "tcp"},
		{[]string{"-H", "www.example:8080"}, "http://www.example:8080/server-status?auto", "www.example:8080", "tcp"},
		{[]string{"-H", "www.example:8080", "-p", "80"}, "http://www.example:8080/server-status?auto", "www.example:80", "tcp"},
		{[]string{"-I", "192.0.2.1"}, "http://192.0.2.1/server-status?auto", "192.0.2.1:80", "tcp"},
		{[]string{"-I", "192.0.2.1", "-H", "www.example", "-4"}, "http://www.example/server-status?auto", "192.0.2.1:80", "tcp4"},
		{[]string{"-I", "2001:db8::1", "-6"}, "http://[2001:db8::1]/server-status?auto", "[2001:db8::1]:80", "tcp6"},
		{[]string{"-H", "2001:db8::1"}, "http://[2001:db8::1]/server-status?auto", "[2001:db8::1]:80", "tcp"},
		{[]string{"-H", "[2001:db8::1]:8443", "-S"}, "https://[2001:db8::1]:8443/server-status?auto", "[2001:db8::1]:8443", "tcp"},
		{[]string{"-H", "[2001:db8::1]"}, "http://[2001:db8::1]/server-status?auto", "[2001:db8::1]:80", "tcp"},
		{[]string{"-I", "[2001:db8::1]", "-H", "www.example"}, "http://www.example/server-status?auto", "[2001:db8::1]:80", "tcp"},
		{[]string{"-H", "www.example", "-u", "/status?auto&refresh=5"}, "http://www.example/status?auto&refresh=5", "www.example:80", "tcp"},
	}
	for _, tt := range tests {
		c, err := newApache(tt.args)
		if err != nil {
			t.Errorf("%v: %v", tt.args, err)
			continue
		}
		a := c.(*apacheCheck)
		if a.url != tt.url || a.dialAddr != tt.dialAddr || a.network != tt.network {
			t.Errorf("%v: %s via %s %s; want %s via %s %s", tt.args, a.url, a.network, a.dialAddr, tt.url, tt.network, tt.dialAddr)
		}
	}
}

// TestSSLArgs checks the rewriting of check_http's -S[VERSION] that
// check_http and check_apache share.
func TestSSLArgs(t *testing.T) {
	tests := []struct{ in, want []string }{
		{[]string{"-S1.2", "-H", "h"}, []string{"--ssl=1.2", "-H", "h"}},
		{[]string{"-H", "h", "-S1.3+"}, []string{"-H", "h", "--ssl=1.3+"}},
		{[]string{"-S", "-H", "h"}, []string{"-S", "-H", "h"}},
		{[]string{"-S=1.2"}, []string{"-S=1.2"}},
		// Any attached text is the version, to be judged by parseTLSVersions.
		{[]string{"-Sfoo"}, []string{"--ssl=foo"}},
		// Values of other options stay as they are, as getopt reads them.
		{[]string{"-a", "-S1pass", "-H", "h"}, []string{"-a", "-S1pass", "-H", "h"}},
		{[]string{"--authorization", "-S1pass"}, []string{"--authorization", "-S1pass"}},
		{[]string{"-4a", "-S1pass"}, []string{"-4a", "-S1pass"}},
		{[]string{"-a", "-a", "-S1"}, []string{"-a", "-a", "--ssl=1"}},
		{[]string{"-ax", "-S1"}, []string{"-ax", "--ssl=1"}},
		{[]string{"--authorization=x", "-S1"}, []string{"--authorization=x", "--ssl=1"}},
		{[]string{"-4", "-S1"}, []string{"-4", "--ssl=1"}},
		{[]string{"-a"}, []string{"-a"}},
		{[]string{"--", "-S1"}, []string{"--", "-S1"}},
	}
	for _, tt := range tests {
		f := newFlags("check_test", "", "")
		f.StringP("authorization", "a", "", "")
		f.BoolP("use-ipv4", "4", false, "")
		sslFlag(f, "")
		if got := sslArgs(f, tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("sslArgs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestApacheBadArguments(t *testing.T) {
	assertUsageErrors(t, "check_apache", []usageCase{
		{nil, "-H or -I is required"},
		{[]string{"-H", ""}, `-H "": empty host name`},
		{[]string{"-H", ":80"}, `-H ":80": empty host name`},
		{[]string{"-I", ""}, `-I "": empty address`},
		{[]string{"-H", "h:0"}, `-H "h:0": invalid port "0"`},
		{[]string{"-H", "h:http"}, `-H "h:http": invalid port "http"`},
		// check_http takes these for host names, which cannot resolve.
		{[]string{"-H", "[::1"}, `-H "[::1" with -u "/server-status?auto": not a URL`},
		{[]string{"-H", "[::1]80"}, `-H "[::1]80" with -u "/server-status?auto": not a URL`},
		{[]string{"-H", "bad host"}, `-H "bad host" with -u "/server-status?auto": not a URL`},
		{[]string{"-H", "h", "-p", "0"}, "-p 0: want a port from 1 to 65535"},
		{[]string{"-H", "h", "-p", "65536"}, "-p 65536"},
		{[]string{"-H", "h", "-p", "http"}, `invalid argument "http" for "-p, --port"`},
		{[]string{"-H", "h", "-u", "server-status?auto"}, `-u "server-status?auto": want a path starting with /`},
		{[]string{"-H", "h", "-4", "-6"}, "-4 and -6 exclude each other"},
		{[]string{"-H", "h", "-S4"}, `-S "4": valid SSL/TLS versions: 1, 1.1, 1.2, 1.3 (with optional '+' suffix)`},
		{[]string{"-H", "h", "--ssl=x1.2"}, `-S "x1.2"`},
		{[]string{"-H", "h", "-S", "1.2"}, `unexpected argument "1.2"`},
		{[]string{"-H", "h", "-a", "secret"}, "-a: want USERNAME:PASSWORD, found no ':'"},
		{[]string{"-H", "h", "-m", "load"}, `-m "load": want one of busy, idle, busy_pct, conns`},
		{[]string{"-H", "h", "-w", "lots"}, `invalid range "lots" for -w`},
		{[]string{"-H", "h", "-c", "10:5"}, `invalid range "10:5" for -c: start > end`},
		{[]string{"-H", "h", "--idle-warning", "-1"}, "--idle-warning -1: want a count of workers"},
		{[]string{"-H", "h", "--idle-critical", "few"}, `invalid argument "few" for "--idle-critical"`},
		{[]string{"-H", "h", "--idle-warning", "5", "--idle-critical", "10"}, "--idle-critical 10 is above --idle-warning 5"},
		{[]string{"-H", "h", "-m", "idle", "--idle-warning", "5"}, "with -m idle use -w and -c"},
		{[]string{"-H", "h", "-t", "0"}, `timeout "0" is not a positive number of seconds`},
		{[]string{"-H", "h", "-t", "5:MAYBE"}, `timeout "5:MAYBE"`},
		{[]string{"-H", "h", "extra"}, `unexpected argument "extra"`},
		{[]string{"-H", "h", "--bogus"}, "unknown flag: --bogus"},
	})
	var out strings.Builder
	Main(context.Background(), "check_apache", []string{"-H", "h", "-a", "secret"}, &out)
	if strings.Contains(out.String(), "secret") {
		t.Errorf("the message shows the password:\n%s", out.String())
	}
}

// TestApacheTransportTwin holds the failures check_apache shares with
// check_http to check_http's exit codes. check_apache has no Debian twin;
// its status lines are its own, and a 4xx is CRITICAL here (the status page
// is gone), where check_http says WARNING.
func TestApacheTransportTwin(t *testing.T) {
	srv := newApacheServer(t, false, nil)
	closedPort := npClosedPort(t)
	for _, args := range [][]string{
		{"-H", "127.0.0.1", "-p", closedPort},
		{"-H", "127.0.0.1", "-p", srv.port, "-u", "/code/503"},
		{"-H", "127.0.0.1", "-p", srv.port, "-u", "/hang", "-t", "1"},
		{"-H", "127.0.0.1", "-p", srv.port, "-u", "/status/2.4.71-event-tls.txt?auto"},
		{"-H", "127.0.0.1", "-p", srv.port, "-S3"},
	} {
		theirs := runTheirs(t, "check_http", args...)
		ours := runOurs(t, context.Background(), "check_apache", args...)
		if ours.Code != theirs.Code {
			t.Errorf("%v: exit %d, check_http %d\nours:   %stheirs: %s", args, ours.Code, theirs.Code, ours.Raw, theirs.Raw)
		}
	}
}

// FuzzParseApacheStatus feeds the parser and the judge any page: neither may
// panic, and a page that parses has counts that make sense.
func FuzzParseApacheStatus(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "apache", "*"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("BusyWorkers: 1\nIdleWorkers: 2\nUptime: 9223372036854775807\nScoreboard: \n")
	c, err := newApache([]string{"-H", "127.0.0.1", "-m", "busy_pct", "-w", "50", "--idle-warning", "3"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text string) {
		st, err := parseApacheStatus(text)
		if err != nil {
			return
		}
		if st.Busy < 0 || st.Idle < 0 || st.Slots > len(text) {
			t.Fatalf("counts out of range: %+v", st)
		}
		if r := c.(*apacheCheck).judge(st); !strings.HasPrefix(r.Output, "APACHE ") {
			t.Fatalf("status line %q", r.Output)
		}
	})
}
