package checks

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/immune-ops/immune/fixtures/partner"
	"github.com/immune-ops/immune/fixtures/testpki"
	"github.com/immune-ops/immune/nagios"
)

func TestParseStatusSet(t *testing.T) {
	tests := []struct {
		in       string
		in1, out []int
		wantErr  bool
	}{
		{"2xx", []int{200, 204, 299}, []int{199, 300, 404}, false},
		{"200,201", []int{200, 201}, []int{202, 204}, false},
		{"200-204, 4XX", []int{200, 204, 404, 499}, []int{205, 500}, false},
		{"404", []int{404}, []int{200}, false},
		{"", nil, nil, true},
		{"abc", nil, nil, true},
		{"6xx", nil, nil, true},
		{"99", nil, nil, true},
		{"600", nil, nil, true},
		{"204-200", nil, nil, true},
		{"200,", nil, nil, true},
		{"200-", nil, nil, true},
	}
	for _, tt := range tests {
		set, err := parseStatusSet(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseStatusSet(%q): err %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		for _, code := range tt.in1 {
			if !set.has(code) {
				t.Errorf("parseStatusSet(%q) lacks %d", tt.in, code)
			}
		}
		for _, code := range tt.out {
			if set.has(code) {
				t.Errorf("parseStatusSet(%q) has %d", tt.in, code)
			}
		}
	}
}

// startPartner runs the fake partner on addr until the test ends.
func startPartner(t *testing.T, cfg partner.Config, addr string) *partner.Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := cfg.Start(ctx, addr)
	if err != nil {
		cancel()
		t.Fatalf("start the fake partner: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		<-s.Done()
	})
	return s
}

var (
	apiTimeRE     = regexp.MustCompile(`in [0-9]+\.[0-9]{3} s`)
	apiPerfTimeRE = regexp.MustCompile(`time=[0-9.]+s`)
)

// normalAPIOutput replaces the measured times, which vary, with T.
func normalAPIOutput(s string) string {
	return apiPerfTimeRE.ReplaceAllString(apiTimeRE.ReplaceAllString(s, "in T s"), "time=Ts")
}

const (
	apiKey      = "sandbox-key-7f3a9c"
	apiAuth     = "Authorization: Bearer " + apiKey
	paymentBody = `{"amount":12.5,"currency":"EUR","reference":"probe","card":{"number":"4111111111111111","expiry":"12/30"}}`
)

func TestAPIAgainstPartner(t *testing.T) {
	s := startPartner(t, partner.Config{APIKey: apiKey}, "127.0.0.1:0")
	pay := func(extra ...string) []string {
		return append([]string{"--label", "Cybersource", "-U", s.URL() + "/v1/payments", "-k", apiAuth, "-P", paymentBody,
			"--assert", `status == "AUTHORIZED"`, "--assert", "id exists", "--assert", "amount > 0", "-w", "1", "-c", "2"}, extra...)
	}
	health := func(extra ...string) []string {
		return append([]string{"--label", "Cybersource", "-U", s.URL() + "/v1/health", "-k", apiAuth}, extra...)
	}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedAddr := closed.Addr().String()
	closed.Close()

	tests := []struct {
		name  string
		fault partner.Fault
		delay time.Duration
		args  []string
		code  int
		want  string
	}{
		{"payment authorized", partner.Healthy, 0, pay(), 0,
			"API OK - Cybersource: POST /v1/payments 201 Created in T s, 3 assertions passed|time=Ts;1;2;0 size=150B;;;0\n" +
				"POST /v1/payments 201 Created in T s\n" +
				"OK: status is \"AUTHORIZED\", want == \"AUTHORIZED\"\n" +
				"OK: id is \"pay_000001\", want exists\n" +
				"OK: amount is 12.5, want > 0\n"},
		{"payment declined", partner.Healthy, 0, append(pay("-P", strings.Replace(paymentBody, "4111111111111111", partner.DeclinedCard, 1)), "-e", "201"), 2,
			"API CRITICAL - Cybersource: status is \"DECLINED\", want == \"AUTHORIZED\"|time=Ts;1;2;0 size=173B;;;0\n" +
				"POST /v1/payments 201 Created in T s\n" +
				"CRITICAL: status is \"DECLINED\", want == \"AUTHORIZED\"\n" +
				"OK: id is \"pay_000002\", want exists\n" +
				"OK: amount is 12.5, want > 0\n"},
		{"health without assertions", partner.Healthy, 0, health(), 0,
			"API OK - Cybersource: GET /v1/health 200 OK in T s|time=Ts;;;0 size=107B;;;0\n"},
		{"label defaults to the host", partner.Healthy, 0, []string{"-U", s.URL() + "/v1/health?verbose=1", "-k", apiAuth, "--assert", `components.db.status != "DOWN"`}, 0,
			"API OK - " + strings.TrimPrefix(s.URL(), "http://") + ": GET /v1/health 200 OK in T s, 1 assertion passed|time=Ts;;;0 size=107B;;;0\n" +
				"GET /v1/health 200 OK in T s\n" +
				"OK: components.db.status is \"UP\", want != \"DOWN\"\n"},
		{"no key: 401", partner.Healthy, 0, []string{"--label", "Cybersource", "-U", s.URL() + "/v1/health"}, 2,
			"API CRITICAL - Cybersource: GET /v1/health 401 Unauthorized, want 2xx|time=Ts;;;0 size=94B;;;0\n" +
				`answer: {"status":"UNAUTHORIZED","reason":"AUTHENTICATION_FAILED","message":"Authentication failed."}` + "\n"},
		{"expected 404", partner.Healthy, 0, health("-U", s.URL()+"/v1/payments/pay_nope", "-e", "404", "--assert", `status == "NOT_FOUND"`), 0,
			"API OK - Cybersource: GET /v1/payments/pay_nope 404 Not Found in T s, 1 assertion passed|time=Ts;;;0 size=87B;;;0\n" +
				"GET /v1/payments/pay_nope 404 Not Found in T s\n" +
				"OK: status is \"NOT_FOUND\", want == \"NOT_FOUND\"\n"},
		{"server error", partner.ServerError, 0, pay(), 2,
			"API CRITICAL - Cybersource: POST /v1/payments 500 Internal Server Error, want 2xx|time=Ts;1;2;0 size=86B;;;0\n" +
				`answer: {"status":"SERVER_ERROR","reason":"SYSTEM_ERROR","message":"General system failure."}` + "\n"},
		{"HTML instead of JSON", partner.HTMLPage, 0, pay(), 2,
			"API CRITICAL - Cybersource: POST /v1/payments 200 OK answered text/html, not JSON|time=Ts;1;2;0 size=168B;;;0\n" +
				"answer: <!DOCTYPE html> <html><head><title>Scheduled maintenance</title></head> <body><h1>We'll be back soon</h1><p>The payment service is under maintenance.</p></body></html>\n"},
		{"HTML is fine without assertions", partner.HTMLPage, 0, health(), 0,
			"API OK - Cybersource: GET /v1/health 200 OK in T s|time=Ts;;;0 size=168B;;;0\n"},
		{"malformed JSON", partner.Malformed, 0, pay(), 2,
			"API CRITICAL - Cybersource: POST /v1/payments 200 OK answered malformed JSON: unexpected EOF|time=Ts;1;2;0 size=50B;;;0\n" +
				`answer: {"id":"pay_000001","status":"AUTHORIZED","amount":` + "\n"},
		{"empty body", partner.Empty, 0, pay(), 2,
			"API CRITICAL - Cybersource: POST /v1/payments 200 OK answered an empty body, not JSON|time=Ts;1;2;0 size=0B;;;0\n" +
				"answer: (empty)\n"},
		{"hang-up", partner.Hangup, 0, pay(), 2,
			"API CRITICAL - Cybersource: POST /v1/payments: connection closed without an answer\n"},
		{"reset", partner.Reset, 0, pay(), 2,
			"API CRITICAL - Cybersource: POST /v1/payments: connection reset by peer\n"},
		{"timeout", partner.Healthy, 5 * time.Second, pay("-t", "0.3"), 2,
			"API CRITICAL - Cybersource: POST /v1/payments timed out after 0.3 s\n"},
		{"timeout with its own state", partner.Healthy, 5 * time.Second, health("-t", "0.3:UNKNOWN"), 3,
			"API UNKNOWN - Cybersource: GET /v1/health timed out after 0.3 s\n"},
		// The delay makes the time at least 0.2 s, whatever the machine's speed.
		{"slow: warning", partner.Healthy, 200 * time.Millisecond, health("-w", "0.1", "-c", "5"), 1,
			"API WARNING - Cybersource: GET /v1/health 200 OK in T s|time=Ts;0.1;5;0 size=107B;;;0\n"},
		{"slow: critical", partner.Healthy, 200 * time.Millisecond, health("-w", "0.05", "-c", "0.1", "--assert", `status == "UP"`), 2,
			"API CRITICAL - Cybersource: GET /v1/health 200 OK in T s, 1 assertion passed|time=Ts;0.05;0.1;0 size=107B;;;0\n" +
				"GET /v1/health 200 OK in T s\n" +
				"OK: status is \"UP\", want == \"UP\"\n"},
		{"connection refused", partner.Healthy, 0, []string{"--label", "Cybersource", "-U", "http://" + refusedAddr + "/v1/health"}, 2,
			"API CRITICAL - Cybersource: GET /v1/health: cannot connect to " + refusedAddr + ": connection refused\n"},
		{"plain HTTP to an HTTPS URL", partner.Healthy, 0, health("-U", strings.Replace(s.URL(), "http:", "https:", 1)+"/v1/health"), 2,
			"API CRITICAL - Cybersource: GET /v1/health: http: server gave HTTP response to HTTPS client\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.SetFault(tt.fault)
			s.SetDelay(tt.delay)
			t.Cleanup(func() { s.SetFault(partner.Healthy); s.SetDelay(0) })
			var out strings.Builder
			code := Main(context.Background(), "check_api", tt.args, &out)
			if got := normalAPIOutput(out.String()); code != tt.code || got != tt.want {
				t.Errorf("exit %d, want %d\n got %q\nwant %q", code, tt.code, got, tt.want)
			}
			if _, err := nagios.Parse(out.String()); err != nil {
				t.Errorf("output does not parse: %v\n%s", err, out.String())
			}
		})
	}
}

// writeCA writes the CA's certificate where --ca-file can read it.
func writeCA(t *testing.T, ca *testpki.CA) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	ca.WriteFiles(t, path, "")
	return path
}

func TestAPITLS(t *testing.T) {
	ca := testpki.NewCA(t, testpki.Options{CommonName: "immune test partner CA"})
	serverTLS := ca.Issue(t, testpki.Options{CommonName: "partner.test", Hosts: []string{"127.0.0.1", "::1"}}).ServerConfig()
	caFile := writeCA(t, ca)
	otherFile := writeCA(t, testpki.NewCA(t, testpki.Options{CommonName: "immune test partner CA"}))
	badPEM := filepath.Join(t.TempDir(), "bad.pem")
	if err := os.WriteFile(badPEM, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	v4 := startPartner(t, partner.Config{TLS: serverTLS}, "127.0.0.1:0")
	urls := map[string]string{"IPv4": v4.URL()}
	if ln, err := net.Listen("tcp", "[::1]:0"); err == nil {
		ln.Close()
		urls["IPv6"] = startPartner(t, partner.Config{TLS: serverTLS}, "[::1]:0").URL()
	} else {
		t.Logf("no IPv6 loopback, testing IPv4 only: %v", err)
	}
	for family, base := range urls {
		tests := []struct {
			name string
			args []string
			code int
			want string
		}{
			{"verified by the test CA", []string{"--ca-file", caFile, "--assert", `status == "UP"`}, 0,
				"API OK - partner: GET /v1/health 200 OK in T s, 1 assertion passed|time=Ts;;;0 size=107B;;;0\n"},
			{"untrusted by default", nil, 2,
				"API CRITICAL - partner: GET /v1/health: TLS: the partner's certificate is not trusted: x509: certificate signed by unknown authority\n"},
			{"another CA", []string{"--ca-file", otherFile}, 2,
				"API CRITICAL - partner: GET /v1/health: TLS: the partner's certificate is not trusted: x509: certificate signed by unknown authority"},
			{"insecure", []string{"--insecure"}, 0,
				"API OK - partner: GET /v1/health 200 OK in T s|time=Ts;;;0 size=107B;;;0\n"},
			{"a CA file with no certificate", []string{"--ca-file", badPEM}, 3,
				"UNKNOWN - check_api: --ca-file \"" + badPEM + "\": no PEM certificate in it\n"},
		}
		for _, tt := range tests {
			t.Run(family+"/"+tt.name, func(t *testing.T) {
				args := append([]string{"--label", "partner", "-U", base + "/v1/health"}, tt.args...)
				var out strings.Builder
				code := Main(context.Background(), "check_api", args, &out)
				got := normalAPIOutput(out.String())
				if code != tt.code || !strings.HasPrefix(got, tt.want) {
					t.Errorf("exit %d, want %d\n got %q\nwant %q", code, tt.code, got, tt.want)
				}
			})
		}
	}
}

// nxdomainResolver answers every DNS query "no such name" over an
// in-memory connection, so the test sends no packet to any name server.
func nxdomainResolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		client, server := net.Pipe()
		go answerNXDOMAIN(server)
		return client, nil
	}}
}

// answerNXDOMAIN serves DNS over a stream (RFC 1035 4.2.2: each message
// after its 2-byte length) until the client hangs up.
func answerNXDOMAIN(conn net.Conn) {
	defer conn.Close()
	for {
		var n [2]byte
		if _, err := io.ReadFull(conn, n[:]); err != nil {
			return
		}
		q := make([]byte, binary.BigEndian.Uint16(n[:]))
		if _, err := io.ReadFull(conn, q); err != nil || len(q) < 12 {
			return
		}
		// The question: the name's labels up to the empty one, type, class.
		end := 12
		for end < len(q) && q[end] != 0 {
			end += 1 + int(q[end])
		}
		end += 5
		if end > len(q) {
			return
		}
		// Same ID; a response, recursion desired and available, NXDOMAIN; one question.
		resp := append([]byte{q[0], q[1], 0x81, 0x83, 0, 1, 0, 0, 0, 0, 0, 0}, q[12:end]...)
		binary.BigEndian.PutUint16(n[:], uint16(len(resp)))
		if _, err := conn.Write(append(n[:], resp...)); err != nil {
			return
		}
	}
}

func TestAPIDNSFailure(t *testing.T) {
	c, err := newAPI([]string{"--label", "Cybersource", "-U", "https://payments.partner.invalid/v1/health", "-t", "5"})
	if err != nil {
		t.Fatal(err)
	}
	c.(*apiCheck).resolver = nxdomainResolver()
	r := Run(context.Background(), "check_api", c)
	want := "API CRITICAL - Cybersource: cannot resolve payments.partner.invalid: no such host\n"
	if r.State != nagios.Critical || r.String() != want {
		t.Errorf("got %s %q\nwant CRITICAL %q", r.State, r.String(), want)
	}
}

// TestAPIMasksSecrets: a partner that echoes credentials back, in an error
// body, in a field an assertion shows, cannot make the check print them.
func TestAPIMasksSecrets(t *testing.T) {
	const (
		bearer  = "sk_live_TOPSECRET123"
		apiKey  = "apikey-0987654321"
		urlPass = "hunter2pass"
		query   = "qsecret99"
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pass, _ := r.URL.User.Password()
		code := http.StatusOK
		if r.URL.Path == "/denied" {
			code = http.StatusUnauthorized
		}
		user, pw, _ := r.BasicAuth()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		io.WriteString(w, jsonText(map[string]any{
			"status": "DENIED", "auth": r.Header.Get("Authorization"), "key": r.Header.Get("X-Api-Key"),
			"query": r.URL.Query().Get("api_key"), "url_pass": pass, "basic": user + ":" + pw,
		}))
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	withSecrets := func(path string, extra ...string) []string {
		return append([]string{"-U", "http://user:" + urlPass + "@" + host + path + "?api_key=" + query,
			"-k", "Authorization: Bearer " + bearer, "-k", "x-api-key: " + apiKey}, extra...)
	}
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"echoed in fields", withSecrets("/echo", "--assert", `auth == "x"`, "--assert", `key == "x"`, "--assert", `query == "x"`), 2},
		{"echoed in an error body", withSecrets("/denied"), 2},
		{"basic auth from the URL", []string{"-U", "http://user:" + urlPass + "@" + host + "/echo", "--assert", `basic == "x"`}, 2},
		{"a header without a colon", []string{"-U", srv.URL, "-k", "Authorization Bearer " + bearer}, 3},
		{"a header name that is no token", []string{"-U", srv.URL, "-k", "Bad Name: " + bearer}, 3},
		{"a URL that is no http", []string{"-U", "ftp://user:" + urlPass + "@" + host + "/"}, 3},
		{"a URL that does not parse", []string{"-U", "http://user:" + urlPass + "@[::1/"}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			code := Main(context.Background(), "check_api", tt.args, &out)
			if code != tt.code {
				t.Errorf("exit %d, want %d\n%s", code, tt.code, out.String())
			}
			for _, secret := range []string{bearer, apiKey, urlPass, query} {
				if strings.Contains(out.String(), secret) {
					t.Errorf("output shows the secret %q:\n%s", secret, out.String())
				}
			}
			if code == 2 && !strings.Contains(out.String(), apiMask) {
				t.Errorf("output shows no mask %q:\n%s", apiMask, out.String())
			}
		})
	}
}

func TestAPIBadArguments(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "-U: the URL to call is required"},
		{[]string{"-U", "/v1/health"}, `-U: scheme "": want http or https`},
		{[]string{"-U", "http:///v1/health"}, "-U: the URL names no host"},
		{[]string{"-U", "http://127.0.0.1/", "extra"}, `unexpected argument "extra"`},
		{[]string{"-U", "http://127.0.0.1/", "-k", "X-A"}, "-k: header 1: want 'Name: value', found no ':'"},
		{[]string{"-U", "http://127.0.0.1/", "-k", "A: b", "-k", ": b"}, `-k: header 2: "" is not a header name`},
		{[]string{"-U", "http://127.0.0.1/", "-P", "{}", "--body-file", "x.json"}, "-P and --body-file: give the body one way, not both"},
		{[]string{"-U", "http://127.0.0.1/", "--body-file", "/nonexistent/body.json"}, `--body-file "/nonexistent/body.json": open /nonexistent/body.json: no such file or directory`},
		{[]string{"-U", "http://127.0.0.1/", "-j", "GE T"}, `-j "GE T": not an HTTP method`},
		{[]string{"-U", "http://127.0.0.1/", "-e", "2yy"}, `-e "2yy": "2yy" is not a status (200), a class (2xx) or a range (200-204)`},
		{[]string{"-U", "http://127.0.0.1/", "--assert", "status = 1"}, `--assert "status = 1": "=" after status is no operator`},
		{[]string{"-U", "http://127.0.0.1/", "-w", "abc"}, `invalid range "abc" for -w`},
		{[]string{"-U", "http://127.0.0.1/", "-t", "0"}, `invalid argument "0" for "-t, --timeout"`},
		{[]string{"-U", "http://127.0.0.1/", "--ca-file", "/nonexistent/ca.pem"}, `--ca-file "/nonexistent/ca.pem": open /nonexistent/ca.pem`},
		{[]string{"--bogus"}, "unknown flag: --bogus"},
	}
	for _, tt := range tests {
		var out strings.Builder
		code := Main(context.Background(), "check_api", tt.args, &out)
		if code != 3 || !strings.HasPrefix(out.String(), "UNKNOWN - check_api: ") || !strings.Contains(out.String(), tt.want) {
			t.Errorf("%q: exit %d, want 3 and %q\n%s", tt.args, code, tt.want, out.String())
		}
	}
}

func TestAPIRequest(t *testing.T) {
	type seen struct {
		method, host, ctype, accept, agent, custom, body string
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.Host, r.Header.Get("Content-Type"), r.Header.Get("Accept"), r.Header.Get("User-Agent"), r.Header.Get("X-Request-Id"), string(b)}
		if r.URL.Path == "/moved" {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
			return
		}
		io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(srv.Close)
	bodyFile := filepath.Join(t.TempDir(), "body.json")
	if err := os.WriteFile(bodyFile, []byte(`{"from":"file"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	agent := "check_api/v" + Version + " (immune)"
	host := strings.TrimPrefix(srv.URL, "http://")
	tests := []struct {
		name string
		args []string
		want seen
		code int
	}{
		{"GET by default", []string{"-U", srv.URL + "/x"}, seen{"GET", host, "", "application/json", agent, "", ""}, 0},
		{"a body makes it a JSON POST", []string{"-U", srv.URL + "/x", "-P", `{"a":1}`}, seen{"POST", host, "application/json", "application/json", agent, "", `{"a":1}`}, 0},
		{"body from a file, method and headers given", []string{"-U", srv.URL + "/x", "--body-file", bodyFile, "-j", "put",
			"-k", "Content-Type: application/vnd.partner+json", "-k", "Accept: */*", "-k", "User-Agent: probe", "-k", "X-Request-Id: 42", "-k", "Host: api.partner.test"},
			seen{"PUT", "api.partner.test", "application/vnd.partner+json", "*/*", "probe", "42", `{"from":"file"}`}, 0},
		{"redirects are not followed", []string{"-U", srv.URL + "/moved"}, seen{"GET", host, "", "application/json", agent, "", ""}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			code := Main(context.Background(), "check_api", tt.args, &out)
			if code != tt.code {
				t.Errorf("exit %d, want %d\n%s", code, tt.code, out.String())
			}
			select {
			case s := <-got:
				if s != tt.want {
					t.Errorf("the partner saw %+v, want %+v", s, tt.want)
				}
			default:
				t.Errorf("the partner saw no request")
			}
			if len(got) > 0 {
				t.Errorf("the partner saw a second request %+v", <-got)
			}
		})
	}
}

// TestAPITwin compares exit codes with check_http asked the same question
// of the same fake partner: status 200 and "status":"UP" in the body. The
// status lines differ by design: check_api names the partner and the
// failing field.
func TestAPITwin(t *testing.T) {
	referencePlugin(t, "check_http")
	s := startPartner(t, partner.Config{}, "127.0.0.1:0")
	port := s.URL()[strings.LastIndex(s.URL(), ":")+1:]
	tests := []struct {
		name       string
		fault      partner.Fault
		delay      time.Duration
		down       bool
		ours, them int
	}{
		{"healthy", partner.Healthy, 0, false, 0, 0},
		{"component down", partner.Healthy, 0, true, 2, 2},
		{"server error", partner.ServerError, 0, false, 2, 2},
		{"HTML", partner.HTMLPage, 0, false, 2, 2},
		{"empty", partner.Empty, 0, false, 2, 2},
		{"hang-up", partner.Hangup, 0, false, 2, 2},
		{"reset", partner.Reset, 0, false, 2, 2},
		{"timeout", partner.Healthy, 3 * time.Second, false, 2, 2},
		{"malformed", partner.Malformed, 0, false, 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.SetFault(tt.fault)
			s.SetDelay(tt.delay)
			s.SetDown("db", tt.down)
			t.Cleanup(func() { s.SetFault(partner.Healthy); s.SetDelay(0); s.SetDown("db", false) })
			var out strings.Builder
			ours := Main(context.Background(), "check_api", []string{"-U", s.URL() + "/v1/health", "-e", "200", "-t", "1",
				"--assert", `status == "UP"`}, &out)
			code, theirs := execTheirs(t, "check_http", "-H", "127.0.0.1", "-p", port, "-u", "/v1/health", "-e", "200", "-t", "1",
				"-s", `"status":"UP"`)
			t.Logf("ours:   %stheirs: %s", out.String(), theirs)
			if ours != tt.ours || code != tt.them {
				t.Errorf("exit ours %d, theirs %d; want %d, %d", ours, code, tt.ours, tt.them)
			}
		})
	}
}
