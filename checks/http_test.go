package checks

import (
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/immune-ops/immune/nagios"
)

// httpTestMux answers the paths the check_http tests ask for. self is the
// server's own address, for absolute redirects.
func httpTestMux(self func() string) *http.ServeMux {
	mux := http.NewServeMux()
	text := func(code int, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(code)
			_, _ = io.WriteString(w, body)
		}
	}
	redirect := func(code int, to func() string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", to())
			w.WriteHeader(code)
		}
	}
	fixed := func(s string) func() string { return func() string { return s } }
	mux.HandleFunc("/{$}", text(200, "hello world\n"))
	mux.HandleFunc("/target", text(200, "you made it\n"))
	mux.HandleFunc("/404", text(404, "not here\n"))
	mux.HandleFunc("/500", text(500, "boom\n"))
	mux.HandleFunc("/600", text(600, "odd\n"))
	mux.HandleFunc("/301", redirect(301, fixed("/")))
	mux.HandleFunc("/dir/relative", redirect(302, fixed("target")))
	mux.HandleFunc("/dir/target", text(200, "relative target\n"))
	mux.HandleFunc("/absolute", redirect(302, func() string { return "http://" + self() + "/target" }))
	mux.HandleFunc("/net-path", redirect(302, fixed("//127.0.0.1/target")))
	mux.HandleFunc("/loop", redirect(302, fixed("/loop")))
	mux.HandleFunc("/spiral", redirect(302, fixed("spiral")))
	mux.HandleFunc("/nowhere", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(302) })
	mux.HandleFunc("/garbled-location", redirect(302, fixed("<>")))
	mux.HandleFunc("/vhost", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "host=%s proto=%s\n", r.Host, r.Proto)
	})
	mux.HandleFunc("/auth", func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "user" || p != "secret" {
			text(401, "who are you\n")(w, r)
			return
		}
		text(200, "welcome user\n")(w, r)
	})
	mux.HandleFunc("/needs-header", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Test") != "yes" {
			text(400, "missing header\n")(w, r)
			return
		}
		text(200, "header seen\n")(w, r)
	})
	mux.HandleFunc("/post", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s\n", r.Method, r.Header.Get("Content-Type"), body)
	})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		for _, part := range []string{"hel", "lo wor", "ld\nsecond line\n"} {
			_, _ = io.WriteString(w, part)
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/nul", text(200, "abc\x00def\n"))
	mux.HandleFunc("/big", text(200, strings.Repeat("0123456789abcdef", 8192)))
	mux.HandleFunc("/lines", text(200, "first line\nSecond Line\n"))
	// Date and Last-Modified come from one reading of the clock, so that
	// the document's age is the same for both twins.
	modified := func(age time.Duration) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			now := time.Now()
			w.Header().Set("Date", now.UTC().Format(http.TimeFormat))
			w.Header().Set("Last-Modified", now.Add(-age).UTC().Format(http.TimeFormat))
			text(200, "dated\n")(w, r)
		}
	}
	mux.HandleFunc("/fresh", modified(time.Minute))
	mux.HandleFunc("/hour-old", modified(time.Hour+2*time.Minute+3*time.Second))
	mux.HandleFunc("/old", modified(100*24*time.Hour))
	mux.HandleFunc("/future", modified(-time.Hour))
	mux.HandleFunc("/undated", func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Date"] = nil
		text(200, "no date\n")(w, r)
	})
	mux.HandleFunc("/odd-date", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Last-Modified", "yesterday")
		text(200, "odd\n")(w, r)
	})
	return mux
}

// startHTTPTestServer starts the test mux on a loopback port, plain or with TLS.
func startHTTPTestServer(t *testing.T, network string, cert *tls.Certificate) (host, port string) {
	t.Helper()
	ln, err := net.Listen(network, map[string]string{"tcp": "127.0.0.1:0", "tcp6": "[::1]:0"}[network])
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	var srv *httptest.Server
	srv = &httptest.Server{Listener: ln, Config: &http.Server{
		Handler: httpTestMux(func() string { return srv.Listener.Addr().String() }),
		// Handshakes the tests make fail on purpose would be logged.
		ErrorLog: log.New(io.Discard, "", 0),
	}}
	if cert != nil {
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}}
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	host, port, _ = net.SplitHostPort(ln.Addr().String())
	return host, port
}

func TestHTTPTwin(t *testing.T) {
	referencePlugin(t, "check_http")
	_, port := startHTTPTestServer(t, "tcp", nil)
	cert := npTestCert(t, "immune.test", npDays(30))
	_, tlsPort := startHTTPTestServer(t, "tcp", &cert)
	expired := npTestCert(t, "old.test", time.Now().Add(-50*time.Hour))
	_, oldPort := startHTTPTestServer(t, "tcp", &expired)
	quiet := serveNP(t, "tcp", "127.0.0.1:0", nil, npSilent)
	hangup := serveNP(t, "tcp", "127.0.0.1:0", nil, func(net.Conn) {})
	ssh := serveNP(t, "tcp", "127.0.0.1:0", nil, npBanner("SSH-2.0-OpenSSH_9.2\r\n"))
	badCode := serveNP(t, "tcp", "127.0.0.1:0", nil, npBanner("HTTP/1.1 abc nonsense\r\n\r\n"))
	closed := npClosedPort(t)

	ip := []string{"-I", "127.0.0.1", "-p", port}
	vhost := []string{"-H", "immune.test", "-I", "127.0.0.1", "-p", port}
	secure := []string{"-H", "immune.test", "-I", "127.0.0.1", "-p", tlsPort}
	with := func(base []string, more ...string) []string { return append(append([]string{}, base...), more...) }
	runTwinCases(t, "check_http", []twinCase{
		{"plain HTTP/1.0", ip},
		{"virtual host HTTP/1.1", vhost},
		{"host with port", []string{"-H", "127.0.0.1:" + port}},
		{"host header names the vhost", with(vhost, "-u", "/vhost", "-s", "host=immune.test:"+port)},
		{"positional address", []string{"127.0.0.1", "-p", port}},
		{"long options", []string{"--IP-address=127.0.0.1", "--port=" + port, "--url=/target", "--string=made"}},
		{"404 warns", with(vhost, "-u", "/404")},
		{"500 is critical", with(ip, "-u", "/500")},
		{"status 600", with(ip, "-u", "/600")},
		{"redirect ok", with(ip, "-u", "/301")},
		{"redirect warning", with(ip, "-u", "/301", "-f", "warning")},
		{"redirect critical", with(ip, "-u", "/301", "-f", "critical")},
		{"redirect unknown", with(ip, "-u", "/301", "-f", "unknown")},
		{"follow", with(ip, "-u", "/301", "-f", "follow")},
		{"follow relative", with(ip, "-u", "/dir/relative", "-f", "follow")},
		// The twin takes the virtual host for the next address: it must
		// resolve from /etc/hosts, as no test may ask a name server.
		{"follow relative from vhost", []string{"-H", "localhost", "-I", "127.0.0.1", "-p", port, "-u", "/dir/relative", "-f", "follow"}},
		{"follow absolute", with(vhost, "-u", "/absolute", "-f", "follow")},
		{"follow net path", with(vhost, "-u", "/net-path", "-f", "stickyport")},
		{"sticky", with(vhost, "-u", "/absolute", "-f", "sticky")},
		{"stickyport", with(vhost, "-u", "/absolute", "-f", "stickyport")},
		{"redirect loop", with(ip, "-u", "/loop", "-f", "follow")},
		{"redirect depth", with(ip, "-u", "/spiral", "-f", "follow", "--max-redirs", "3")},
		{"no location", with(ip, "-u", "/nowhere", "-f", "follow")},
		{"unparsable location", with(ip, "-u", "/garbled-location", "-f", "follow")},
		{"string found", with(vhost, "-s", "world")},
		{"string missing", with(vhost, "-s", "nothere")},
		{"long string missing", with(vhost, "-s", "this string is definitely longer than thirty")},
		{"string across chunks", with(vhost, "-u", "/chunked", "-s", "hello world")},
		{"string after NUL", with(ip, "-u", "/nul", "-s", "c def")},
		{"regex", with(ip, "-r", "hel+o w.rld")},
		{"regex missing", with(ip, "-r", "^world")},
		{"regex per line", with(ip, "-u", "/lines", "-r", "^Second")},
		{"regex dot stops at newline", with(ip, "-u", "/lines", "-r", "line.Second")},
		{"linespan", with(ip, "-u", "/lines", "-l", "-r", "line.Second")},
		{"case-insensitive regex", with(ip, "-R", "HELLO")},
		{"inverted regex", with(ip, "-r", "hello", "--invert-regex")},
		{"header string", with(ip, "-d", "Content-Type: text/plain")},
		{"header string missing", with(ip, "-d", "X-Nothing")},
		{"expect matched", with(ip, "-e", "200")},
		{"expect list", with(ip, "-e", "201,HTTP/1.0 200")},
		{"expect unmatched", with(ip, "-e", "201,202")},
		{"expect skips status logic", with(ip, "-u", "/500", "-e", "500")},
		{"unexpected on port 80 wording", with(ip, "-u", "/404", "-e", "200", "-B")},
		{"auth", with(vhost, "-u", "/auth", "-a", "user:secret")},
		{"auth refused", with(vhost, "-u", "/auth", "-a", "user:wrong")},
		{"extra header", with(vhost, "-u", "/needs-header", "-k", "X-Test: yes")},
		{"forced host header", with(vhost, "-u", "/vhost", "-k", "Host: other.test", "-s", "host=other.test ")},
		{"post", with(vhost, "-u", "/post", "-P", "a=b", "-s", "POST application/x-www-form-urlencoded a=b")},
		{"post content type", with(vhost, "-u", "/post", "-P", "x", "-T", "text/plain", "-s", "POST text/plain x")},
		{"method", with(vhost, "-u", "/post", "-j", "PUT", "-P", "x", "-s", "PUT")},
		{"head", with(vhost, "-j", "HEAD")},
		{"user agent", with(vhost, "-A", "probe/1.0")},
		{"big page", with(ip, "-u", "/big")},
		{"page size ok", with(ip, "-m", "10:100000")},
		{"page too large", with(ip, "-m", "100:120")},
		{"page too small", with(ip, "-m", "100000")},
		{"several failures", with(ip, "-u", "/404", "-s", "zzz", "-r", "yyy", "-m", "100000")},
		{"time warning", with(ip, "-w", "0.0000001", "-c", "5")},
		{"time critical", with(ip, "-w", "0:5", "-c", "0.0000001")},
		{"critical past timeout", with(ip, "-c", "12")},
		{"extended perfdata", with(ip, "-E")},
		{"show body", with(vhost, "-B")},
		{"max age fresh", with(ip, "-u", "/fresh", "-M", "1h")},
		{"max age hours", with(ip, "-u", "/hour-old", "-M", "30m")},
		{"max age days", with(ip, "-u", "/old", "-M", "10d")},
		{"max age seconds", with(ip, "-u", "/old", "-M", "100s", "-s", "nothing")},
		{"max age future", with(ip, "-u", "/future", "-M", "10")},
		{"max age no modification date", with(ip, "-M", "10")},
		{"max age no server date", with(ip, "-u", "/undated", "-M", "10")},
		{"max age unparsable", with(ip, "-u", "/odd-date", "-M", "10")},
		{"refused", []string{"-I", "127.0.0.1", "-p", closed}},
		{"timeout", []string{"-I", "127.0.0.1", "-p", quiet.port, "-t", "1"}},
		{"no data", []string{"-I", "127.0.0.1", "-p", hangup.port}},
		{"not HTTP", []string{"-I", "127.0.0.1", "-p", ssh.port}},
		{"invalid status line", []string{"-I", "127.0.0.1", "-p", badCode.port}},
		{"tls", with(secure, "-S")},
		{"tls long option", with(secure, "--ssl")},
		{"tls sni", with(secure, "-S", "--sni")},
		{"tls 1.2", with(secure, "-S1.2")},
		{"tls 1.2 or newer", with(secure, "--ssl=1.2+")},
		{"tls version read by its start", with(secure, "-S1.2x")},
		// getopt gives "-S1" to -s as its value: it is no -S.
		{"value like -S", with(ip, "-s", "-S1")},
		{"value like -S after a cluster", with(ip, "-ls", "-S1")},
		{"tls 1.0 refused", with(secure, "-S1")},
		{"sslv3", with(secure, "-S3")},
		{"tls extended perfdata", with(secure, "-S", "-E")},
		{"tls on a plain port", with(ip, "-S")},
		{"tls redirect stays on tls", []string{"-H", "localhost", "-I", "127.0.0.1", "-p", tlsPort, "-u", "/301", "-f", "follow", "-S"}},
		{"cert ok", with(secure, "-C", "10")},
		{"cert warning", with(secure, "-C", "40,20")},
		{"cert critical", with(secure, "-C", "40,35")},
		{"cert and content", with(secure, "-C", "10", "--continue-after-certificate", "-s", "hello")},
		{"cert expired", []string{"-I", "127.0.0.1", "-p", oldPort, "-C", "10"}},
	}, tolerance{Abs: 0.5})
}

func TestHTTPTwinIPv6(t *testing.T) {
	referencePlugin(t, "check_http")
	requireIPv6(t)
	_, port := startHTTPTestServer(t, "tcp6", nil)
	runTwinCases(t, "check_http", []twinCase{
		{"address", []string{"-I", "::1", "-p", port}},
		// The twin cuts "[::1]:port" to "[::" and cannot resolve it; ours
		// connects (see TestHTTPTarget), so only the plain forms are compared.
		{"virtual host", []string{"-H", "::1", "-p", port, "-u", "/vhost"}},
		{"-6", []string{"-6", "-I", "::1", "-p", port, "-u", "/404"}},
	}, tolerance{Abs: 0.5})
}

func TestHTTPBadArgumentsTwin(t *testing.T) {
	assertUsageTwins(t, "check_http", [][]string{
		{},
		{"-p", "80"},
		{"-I", "127.0.0.1", "-f", "bogus"},
		{"-I", "127.0.0.1", "-t", "abc"},
		{"-I", "127.0.0.1", "-p", "abc"},
		{"-I", "127.0.0.1", "-S4"},
		{"-I", "127.0.0.1", "-C", "abc"},
		{"-I", "127.0.0.1", "-r", "a("},
		{"-I", "127.0.0.1", "--max-redirs", "x"},
		{"-I", "127.0.0.1", "-J", "/nonexistent/cert.pem"},
		{"-I", "127.0.0.1", "--bogus"},
	})
}

func TestHTTPBadArguments(t *testing.T) {
	assertUsageErrors(t, "check_http", []usageCase{
		{[]string{"-I", "127.0.0.1", "-w", "abc"}, `invalid range "abc" for -w`},
		{[]string{"-I", "127.0.0.1", "-m", "10:"}, `-m "10:"`},
		{[]string{"-I", "127.0.0.1", "-m", "x"}, `-m "x"`},
		{[]string{"-I", "127.0.0.1", "-p", "70000"}, `-p "70000"`},
		{[]string{"-H", "host:0"}, `-H "host:0"`},
		{[]string{"-I", "127.0.0.1", "-R", "[z-a]"}, `-R "[z-a]"`},
		{[]string{"-I", "127.0.0.1", "-J", "cert.pem"}, "-J and -K"},
		{[]string{"-I", "127.0.0.1", "--max-redirs", "-1"}, "--max-redirs -1"},
		{[]string{"-I", "127.0.0.1", "-M", "5w"}, `-M "5w"`},
		{[]string{"a", "b", "c"}, `unexpected argument "c"`},
	})
}

func TestHTTPOutput(t *testing.T) {
	_, port := startHTTPTestServer(t, "tcp", nil)
	hangup := serveNP(t, "tcp", "127.0.0.1:0", nil, func(net.Conn) {})
	quiet := serveNP(t, "tcp", "127.0.0.1:0", nil, npSilent)
	assertOutputs(t, "check_http", []outputCase{
		{"ok", []string{"-I", "127.0.0.1", "-p", port, "-u", "/target"}, nagios.OK,
			"HTTP OK: HTTP/1.0 200 OK - 114 bytes in T second response time |time=Ts;;;0.000000;10.000000 size=114B;;;0\n"},
		{"404 with thresholds", []string{"-I", "127.0.0.1", "-p", port, "-u", "/404", "-w", "5", "-c", "6", "-m", "10"}, nagios.Warning,
			"HTTP WARNING: HTTP/1.0 404 Not Found - 117 bytes in T second response time |time=Ts;5.000000;6.000000;0.000000;10.000000 size=117B;10;0;0\n"},
		{"string missing, with the body", []string{"-I", "127.0.0.1", "-p", port, "-s", "nope", "-B"}, nagios.Critical,
			"HTTP CRITICAL: HTTP/1.0 200 OK - string 'nope' not found on 'http://127.0.0.1:" + port + "/' - 114 bytes in T second response time |time=Ts;;;0.000000;10.000000 size=114B;;;0\nhello world\n"},
		{"no data", []string{"-I", "127.0.0.1", "-p", hangup.port}, nagios.Critical,
			"HTTP CRITICAL - No data received from host\n"},
		{"timeout state", []string{"-I", "127.0.0.1", "-p", quiet.port, "-t", "0.2:WARNING"}, nagios.Warning,
			"WARNING - Socket timeout after 0.2 seconds\n"},
	})
}

func TestHTTPRequest(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-I", "10.0.0.1"},
			"GET / HTTP/1.0\r\nUser-Agent: check_http/v" + Version + " (immune)\r\nConnection: close\r\n\r\n"},
		{[]string{"-H", "example.test", "-u", "/x?y=1", "-A", "probe"},
			"GET /x?y=1 HTTP/1.1\r\nUser-Agent: probe\r\nConnection: close\r\nHost: example.test\r\n\r\n"},
		{[]string{"-H", "example.test:8080", "-k", "X-A: 1", "-k", "X-B: 2", "-a", "u:p", "-A", "a"},
			"GET / HTTP/1.1\r\nUser-Agent: a\r\nConnection: close\r\nHost: example.test:8080\r\nX-A: 1\r\nX-B: 2\r\nAuthorization: Basic dTpw\r\n\r\n"},
		{[]string{"-H", "example.test", "-S", "-A", "a"},
			"GET / HTTP/1.1\r\nUser-Agent: a\r\nConnection: close\r\nHost: example.test\r\n\r\n"},
		{[]string{"-H", "example.test", "-S", "-p", "80", "-A", "a"},
			"GET / HTTP/1.1\r\nUser-Agent: a\r\nConnection: close\r\nHost: example.test:80\r\n\r\n"},
		{[]string{"-H", "example.test", "-P", "a=b", "-b", "p:q", "-A", "a"},
			"POST / HTTP/1.1\r\nUser-Agent: a\r\nConnection: close\r\nHost: example.test\r\nProxy-Authorization: Basic cDpx\r\n" +
				"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n\r\na=b"},
		// Only the last "Host:" header replaces ours; the others go out as they are.
		{[]string{"-H", "example.test", "-k", "Host: one", "-k", "Host: two", "-j", "HEAD", "-A", "a"},
			"HEAD / HTTP/1.1\r\nUser-Agent: a\r\nConnection: close\r\nHost: two\r\nHost: one\r\n\r\n"},
		// Without a virtual host a forced Host header is dropped, as in the twin.
		{[]string{"-I", "10.0.0.1", "-k", "Host: one", "-A", "a"},
			"GET / HTTP/1.0\r\nUser-Agent: a\r\nConnection: close\r\n\r\n"},
	}
	for _, tt := range tests {
		c, err := newHTTP(tt.args)
		if err != nil {
			t.Fatalf("%q: %v", tt.args, err)
		}
		hc := c.(*httpCheck)
		if got := string(hc.request(hc.target)); got != tt.want {
			t.Errorf("%q:\n got %q\nwant %q", tt.args, got, tt.want)
		}
	}
}

func TestHTTPTarget(t *testing.T) {
	tests := []struct {
		args []string
		want httpTarget
	}{
		{[]string{"-I", "10.0.0.1"}, httpTarget{scheme: "http", address: "10.0.0.1", port: 80, virtualPort: 80, url: "/"}},
		{[]string{"-H", "a.test"}, httpTarget{scheme: "http", hostName: "a.test", address: "a.test", port: 80, virtualPort: 80, url: "/"}},
		{[]string{"-H", "a.test:81", "-S"}, httpTarget{scheme: "http", hostName: "a.test", address: "a.test", port: 81, virtualPort: 81, url: "/", tls: true}},
		{[]string{"-H", "a.test:81", "-p", "82"}, httpTarget{scheme: "http", hostName: "a.test", address: "a.test", port: 82, virtualPort: 81, url: "/"}},
		{[]string{"-H", "[::1]:81"}, httpTarget{scheme: "http", hostName: "[::1]", address: "[::1]", port: 81, virtualPort: 81, url: "/"}},
		{[]string{"-H", "::1"}, httpTarget{scheme: "http", hostName: "::1", address: "::1", port: 80, virtualPort: 80, url: "/"}},
		{[]string{"-C", "5", "-I", "10.0.0.1"}, httpTarget{scheme: "http", address: "10.0.0.1", port: 443, virtualPort: 443, url: "/", tls: true}},
		{[]string{"10.0.0.1", "b.test"}, httpTarget{scheme: "http", hostName: "b.test", address: "10.0.0.1", port: 80, virtualPort: 80, url: "/"}},
	}
	for _, tt := range tests {
		c, err := newHTTP(tt.args)
		if err != nil {
			t.Fatalf("%q: %v", tt.args, err)
		}
		if got := c.(*httpCheck).target; got != tt.want {
			t.Errorf("%q:\n got %+v\nwant %+v", tt.args, got, tt.want)
		}
	}
}

func TestHTTPRedirectParsing(t *testing.T) {
	from := httpTarget{scheme: "http", hostName: "a.test", address: "10.0.0.1", port: 8080, virtualPort: 8080, url: "/dir/page"}
	tests := []struct {
		location string
		want     string // scheme://address:port url, or the result
	}{
		{"http://b.test:81/x/y?z=1", "http://b.test:81/x/y?z=1 tls=false"},
		{"https://b.test/x", "https://b.test:443/x tls=true"},
		{"http://b.test:82", "http://b.test:82/ tls=false"},
		{"HTTPS://b.test", "HTTPS://b.test:80/ tls=false"},
		{"//c.test/y", "http://c.test:80/y tls=false"},
		{"/abs", "http://a.test:8080/abs tls=false"},
		{"rel", "http://a.test:8080/dir/rel tls=false"},
		{"http://b.test:999999/", "HTTP UNKNOWN - Redirection to port above 65535 - http://b.test:999999/"},
		{"<nope>", "HTTP UNKNOWN - Could not parse redirect location - <nope>"},
	}
	c := &httpCheck{follow: true, maxRedirs: 15}
	for _, tt := range tests {
		page := &httpPage{statusLine: "HTTP/1.1 302 Found", resp: &http.Response{Header: http.Header{"Location": {tt.location}}}}
		next, r := c.redirect(from, page, 0)
		got := r.Output
		if next != nil {
			got = fmt.Sprintf("%s://%s:%d%s tls=%v", next.scheme, next.address, next.port, next.url, next.tls)
		}
		if got != tt.want {
			t.Errorf("Location %q: got %q, want %q", tt.location, got, tt.want)
		}
	}
}

func TestHTTPParseDate(t *testing.T) {
	for in, want := range map[string]int64{
		"Tue, 25 Dec 2001 02:59:03 GMT":       1009249143,
		"Tue,  5 Dec 2001 02:59:03 GMT":       1007521143,
		"Tue, 25 Dec 2001 02:59:03 GMT extra": 1009249143,
		"Tue, 25 Dec 2001 02:59:03 UTC":       0,
		"Tuesday, 25-Dec-01 02:59:03 GMT":     0,
		"Tue, 25 Xyz 2001 02:59:03 GMT":       0,
		"Tue, 00 Dec 2001 02:59:03 GMT":       0,
		"":                                    0,
	} {
		if got := parseHTTPDate(in); got != want {
			t.Errorf("parseHTTPDate(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestHTTPTimeoutStopsPromptly(t *testing.T) {
	quiet := serveNP(t, "tcp", "127.0.0.1:0", nil, npSilent)
	assertCallerDeadline(t, "check_http", []string{"-I", "127.0.0.1", "-p", quiet.port},
		"CRITICAL - Socket timeout after 10 seconds")
}
