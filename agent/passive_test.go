package agent

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/immune-ops/immune/agentapi"
	"github.com/immune-ops/immune/conf"
	"github.com/immune-ops/immune/fixtures/nagiosstatus"
	"github.com/immune-ops/immune/fixtures/poll"
	"github.com/immune-ops/immune/fixtures/real"
	"github.com/immune-ops/immune/fixtures/testpki"
	"github.com/immune-ops/immune/nagios"
)

func TestPassiveCommandLine(t *testing.T) {
	at := time.Unix(1700000000, 0)
	long4k := strings.Repeat("0123456789", 500)
	tests := []struct {
		name    string
		entry   Entry
		want    string
		wantCut bool
	}{
		{
			name:  "status line only",
			entry: Entry{Service: "load", State: nagios.OK, Output: "LOAD OK - load average: 0.10", Start: at},
			want:  "[1700000000] PROCESS_SERVICE_CHECK_RESULT;web1;load;0;LOAD OK - load average: 0.10\n",
		},
		{
			name: "perfdata and long output",
			entry: Entry{Service: "disk", State: nagios.Warning, Output: "DISK WARNING", Long: "line two\nline three",
				Perf: []string{"/=90%;80;95", "'free space'=10GB"}, Start: at},
			want: "[1700000000] PROCESS_SERVICE_CHECK_RESULT;web1;disk;1;DISK WARNING|/=90%;80;95 'free space'=10GB\\nline two\\nline three\n",
		},
		{
			// Nagios reads \\ as a backslash and | as perfdata.
			name: "backslashes and pipes",
			entry: Entry{Service: "win", State: nagios.Critical, Output: `C:\temp is 1|2 full`, Long: `a\nb` + "\r\nc",
				Start: at},
			want: "[1700000000] PROCESS_SERVICE_CHECK_RESULT;web1;win;2;C:\\\\temp is 1/2 full\\na\\\\nb\\nc\n",
		},
		{
			name:  "line breaks in a service or perfdata cannot end the command",
			entry: Entry{Service: "a\nb;c", State: nagios.Unknown, Output: "x", Perf: []string{"a=1\nb=2"}, Start: at},
			want:  "[1700000000] PROCESS_SERVICE_CHECK_RESULT;web1;a b:c;3;x|a=1 b=2\n",
		},
		{
			name:  "state out of range is UNKNOWN",
			entry: Entry{Service: "s", State: nagios.State(9), Output: "odd", Start: at},
			want:  "[1700000000] PROCESS_SERVICE_CHECK_RESULT;web1;s;3;odd\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, cut := commandLine("web1", tt.entry)
			if got != tt.want || cut != tt.wantCut {
				t.Errorf("commandLine =\n%q, cut %v\nwant\n%q, cut %v", got, cut, tt.want, tt.wantCut)
			}
		})
	}

	// Too long for one atomic write: the long output goes first, then the
	// perfdata, then the status line; never half an escape or a character.
	cuts := []struct {
		name  string
		entry Entry
		check func(t *testing.T, out string)
	}{
		{"long output cut", Entry{Service: "s", Output: "status", Perf: []string{"a=1"}, Long: long4k, Start: at},
			func(t *testing.T, out string) {
				if !strings.HasPrefix(out, "status|a=1\\n0123456789") {
					t.Errorf("status line or perfdata lost: %.40q", out)
				}
			}},
		{"escape not split", Entry{Service: "s", Output: "status", Long: strings.Repeat(`\`, 5000), Start: at},
			func(t *testing.T, out string) {
				if run := len(out) - len(strings.TrimRight(out, `\`)); run%2 != 0 {
					t.Errorf("ends in half an escape: %d backslashes", run)
				}
			}},
		{"character not split", Entry{Service: "s", Output: strings.Repeat("é", 3000), Start: at},
			func(t *testing.T, out string) {
				if !strings.HasSuffix(out, "é") || strings.ContainsRune(out, '\uFFFD') {
					t.Errorf("ends in half a character: %q", out[len(out)-4:])
				}
			}},
		{"perfdata dropped from the end", Entry{Service: "s", Output: "status",
			Perf: slices.Repeat([]string{"label=1;2;3"}, 500), Start: at},
			func(t *testing.T, out string) {
				if !strings.HasSuffix(out, "label=1;2;3") {
					t.Errorf("perfdata item cut in half: %q", out[len(out)-20:])
				}
			}},
	}
	for _, tt := range cuts {
		t.Run(tt.name, func(t *testing.T) {
			line, cut := commandLine("web1", tt.entry)
			if !cut || len(line) > pipeBuf || !strings.HasSuffix(line, "\n") || strings.Count(line, "\n") != 1 {
				t.Fatalf("cut %v, %d bytes, %d line breaks: want one line of at most %d", cut, len(line), strings.Count(line, "\n"), pipeBuf)
			}
			_, out, _ := strings.Cut(strings.TrimSuffix(line, "\n"), ";0;")
			tt.check(t, out)
		})
	}
}

// icingaReply is an answer of the Icinga 2 API to process-check-result.
type icingaReply struct {
	code int
	body string
}

// icingaReplies are the real Icinga 2's answers (2.13, as in
// lib/remote/actionshandler.cpp) that the stand-in servers give;
// TestPassiveIcinga2 asks the real one for each and checks they match.
var icingaReplies = map[string]icingaReply{
	"accepted":       {200, `{"results":[{"code":200,"status":"Successfully processed check result for object 'web1!s1'."}]}`},
	"no object":      {404, `{"error":404,"status":"No objects found."}`},
	"passive off":    {403, `{"results":[{"code":403,"status":"Passive checks are disabled for object 'web1!no-passive'."}]}`},
	"no output":      {400, `{"results":[{"code":400,"status":"Parameter 'plugin_output' is required"}]}`},
	"wrong path":     {404, `{"error":404,"status":"The requested path 'icinga/v1/actions/process-check-result' could not be found or the request method is not valid for this path."}`},
	"no such action": {404, `{"error":404,"status":"Action 'process-check-resul' does not exist."}`},
	"unauthorized":   {401, `{"error":401,"status":"Unauthorized. Please check your user credentials."}`},
}

func TestPassiveIcingaVerdict(t *testing.T) {
	const (
		retry  = "retry"
		reject = "reject"
		ok     = "ok"
	)
	r := icingaReplies
	tests := []struct {
		code int
		body string
		want string
		text string
	}{
		{r["accepted"].code, r["accepted"].body, ok, ""},
		// Icinga's own refusals of the result: dropped.
		{r["no object"].code, r["no object"].body, reject, "icinga answered 404: No objects found."},
		{r["no output"].code, r["no output"].body, reject, "Parameter 'plugin_output' is required"},
		{r["passive off"].code, r["passive off"].body, reject, "Passive checks are disabled"},
		{200, `{"results":[{"code":409,"status":"conflict"}]}`, reject, "icinga answered 409: conflict"},
		// Failures of the whole request, Icinga's or not: retried.
		{r["wrong path"].code, r["wrong path"].body, retry, "could not be found"},
		{r["no such action"].code, r["no such action"].body, retry, "does not exist"},
		{r["unauthorized"].code, r["unauthorized"].body, retry, "Unauthorized"},
		{404, "404 page not found\n", retry, "icinga answered 404: 404 page not found (not an answer of the Icinga 2 API"},
		{404, `<html><body><h1>404 Not Found</h1>nginx</body></html>`, retry, "not an answer of the Icinga 2 API"},
		{404, `{"message":"no route"}`, retry, "not an answer of the Icinga 2 API"},
		{404, ``, retry, "icinga answered 404"},
		{200, `OK`, retry, "not an answer of the Icinga 2 API"},
		{200, `{"results":[]}`, retry, "icinga answered 200"},
		{400, `{"error":400,"status":"Invalid request body: parse error"}`, retry, "Invalid request body"},
		{200, `{"results":[{"code":500,"status":"boom"}]}`, retry, "icinga answered 500: boom"},
		{503, `{"results":[{"code":503,"status":"Action skipped: Shutting down."}]}`, retry, "Shutting down"},
		{500, `{"results":[]}`, retry, "icinga answered 500"},
		{503, `<html>unavailable</html>`, retry, "icinga answered 503: <html>unavailable</html>"},
		{403, `{"error":403,"status":"No permission"}`, retry, "No permission"},
		{429, ``, retry, "429"},
		{302, ``, retry, "302"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d %s", tt.code, tt.body), func(t *testing.T) {
			err := icingaVerdict(tt.code, []byte(tt.body))
			_, rejected := errors.AsType[*rejectedError](err)
			got := retry
			switch {
			case err == nil:
				got = ok
			case rejected:
				got = reject
			}
			if got != tt.want {
				t.Errorf("verdict = %s (%v), want %s", got, err, tt.want)
			}
			if err != nil && !strings.Contains(err.Error(), tt.text) {
				t.Errorf("error %q lacks %q", err, tt.text)
			}
		})
	}
}

func TestNewPassiveRefuses(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("secret\n"), 0o600)
	notPEM := filepath.Join(dir, "ca.pem")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	tests := []struct {
		name string
		cfg  conf.Passive
		host string
		want string
	}{
		{"host with a semicolon", conf.Passive{CommandFile: "/x"}, "a;b", "host name"},
		{"no host", conf.Passive{CommandFile: "/x"}, "", "host name"},
		{"http url", conf.Passive{Icinga: &conf.Icinga{URL: "http://127.0.0.1:1", User: "u"}}, "h", "passive.icinga.url"},
		{"missing CA file", conf.Passive{Icinga: &conf.Icinga{URL: "https://127.0.0.1:1", CAFile: filepath.Join(dir, "none")}}, "h", "passive.icinga.ca_file"},
		{"CA file without a certificate", conf.Passive{Icinga: &conf.Icinga{URL: "https://127.0.0.1:1", CAFile: notPEM}}, "h", "no PEM certificate"},
		{"missing password file", conf.Passive{Icinga: &conf.Icinga{URL: "https://127.0.0.1:1", PasswordFile: filepath.Join(dir, "none")}}, "h", "passive.icinga.password_file"},
		{"negative spool bound", conf.Passive{CommandFile: "/x", SpoolMaxBytes: -5}, "h", "must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPassive(tt.cfg, tt.host, t.TempDir(), slog.New(slog.DiscardHandler))
			if err == nil {
				p.Close()
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q lacks %q", err, tt.want)
			}
		})
	}
}

func TestPassiveWithoutTargets(t *testing.T) {
	dir := t.TempDir()
	p, err := NewPassive(conf.Passive{}, "h", dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Submit(Status{Name: "x"}); err != nil {
		t.Error(err)
	}
	p.Run(context.Background()) // returns at once: nothing to deliver
	if got := p.Targets(); len(got) != 0 {
		t.Errorf("targets = %v", got)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a passive with no target wrote %d files", len(entries))
	}
	var none *Passive
	if err := none.Submit(Status{}); err != nil || none.Targets() != nil || none.Close() != nil {
		t.Error("a nil Passive is not a no-op")
	}
}

// runPassive starts p's delivery with fast retries, and returns a function
// that stops it and closes its spool (also run at cleanup).
func runPassive(t *testing.T, p *Passive) (stop func()) {
	t.Helper()
	for _, d := range p.targets {
		d.backoffMin, d.backoffMax = 10*time.Millisecond, 200*time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
			if err := p.Close(); err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func target(p *Passive, name string) PassiveTarget {
	for _, tt := range p.Targets() {
		if tt.Name == name {
			return tt
		}
	}
	return PassiveTarget{}
}

// passiveStatus is a result of the check "s1" as the scheduler would store it.
func passiveStatus(service string, state nagios.State, output, long string, perf ...nagios.Perf) Status {
	return Status{
		Name:      service,
		Result:    nagios.Result{State: state, Output: output, Long: long, Perf: perf},
		LastCheck: time.Now(),
		Duration:  250 * time.Millisecond,
	}
}

func submit(t *testing.T, p *Passive, st Status) {
	t.Helper()
	if err := p.Submit(st); err != nil {
		t.Fatal(err)
	}
}

// realDaemon returns the path of a Debian daemon the test runs. Without it
// the test is skipped, unless IMMUNE_REQUIRE_REAL is set (make test sets
// it), so the suite cannot pass by skipping what it is meant to prove.
func realDaemon(t *testing.T, path, pkg string) string {
	t.Helper()
	return real.Program(t, path, pkg)
}

// daemon is a Nagios or Icinga run in the foreground, as a child of the test.
type daemon struct {
	t    *testing.T
	args []string
	log  string
	// stopWith is the signal that stops it, sent to its process group.
	stopWith syscall.Signal
	cmd      *exec.Cmd
}

func (d *daemon) start() {
	d.t.Helper()
	out, err := os.OpenFile(d.log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		d.t.Fatal(err)
	}
	defer out.Close()
	d.cmd = exec.Command(d.args[0], d.args[1:]...)
	d.cmd.Stdout, d.cmd.Stderr = out, out
	// Its own process group: Nagios forks workers, and they go with it.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		d.t.Fatalf("start %s: %v", d.args[0], err)
	}
	d.t.Cleanup(d.stop)
}

func (d *daemon) stop() {
	if d.cmd == nil {
		return
	}
	pgid := d.cmd.Process.Pid
	syscall.Kill(-pgid, d.stopWith)
	done := make(chan struct{})
	go func() {
		d.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
	}
	d.cmd = nil
}

const nagiosObjects = `define timeperiod {
	timeperiod_name always
	alias always
	monday 00:00-24:00
	tuesday 00:00-24:00
	wednesday 00:00-24:00
	thursday 00:00-24:00
	friday 00:00-24:00
	saturday 00:00-24:00
	sunday 00:00-24:00
}
define command {
	command_name none
	command_line /bin/true
}
define contact {
	contact_name nobody
	host_notifications_enabled 0
	service_notifications_enabled 0
	host_notification_period always
	service_notification_period always
	host_notification_options n
	service_notification_options n
	host_notification_commands none
	service_notification_commands none
}
define host {
	host_name web1
	address 127.0.0.1
	check_command none
	max_check_attempts 1
	check_period always
	active_checks_enabled 0
	contacts nobody
	notification_period always
}
define service {
	host_name web1
	service_description s1
	check_command none
	max_check_attempts 1
	check_interval 1
	retry_interval 1
	check_period always
	active_checks_enabled 0
	passive_checks_enabled 1
	check_freshness 0
	contacts nobody
	notification_period always
}
`

// startNagios4 writes a minimal Nagios config in dir (host web1, passive
// service s1) and returns Nagios, not yet started.
func startNagios4(t *testing.T, dir string) *daemon {
	t.Helper()
	bin := realDaemon(t, "/usr/sbin/nagios4", "nagios4-core")
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "checkresults"), 0o700); err != nil {
		t.Fatal(err)
	}
	settings := [][2]string{
		{"log_file", "nagios.log"},
		{"cfg_file", "objects.cfg"},
		{"object_cache_file", "objects.cache"},
		{"precached_object_file", "objects.precache"},
		{"resource_file", "resource.cfg"},
		{"status_file", "status.dat"},
		{"state_retention_file", "retention.dat"},
		{"command_file", "nagios.cmd"},
		{"lock_file", "nagios.lock"},
		{"temp_file", "nagios.tmp"},
		{"temp_path", "."},
		{"check_result_path", "checkresults"},
		{"query_socket", "nagios.qh"},
	}
	var cfg strings.Builder
	for _, s := range settings {
		fmt.Fprintf(&cfg, "%s=%s\n", s[0], filepath.Join(dir, s[1]))
	}
	// Run as whoever runs the test (root in CI), check nothing actively,
	// and read results and write status.dat every second.
	fmt.Fprintf(&cfg, "nagios_user=%s\nnagios_group=%s\n", u.Username, g.Name)
	cfg.WriteString(`check_external_commands=1
accept_passive_service_checks=1
execute_service_checks=0
execute_host_checks=0
enable_notifications=0
enable_flap_detection=0
retain_state_information=0
use_syslog=0
log_passive_checks=1
log_external_commands=1
status_update_interval=1
check_result_reaper_frequency=1
`)
	files := map[string]string{"nagios.cfg": cfg.String(), "objects.cfg": nagiosObjects, "resource.cfg": ""}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return &daemon{t: t, args: []string{bin, filepath.Join(dir, "nagios.cfg")}, log: filepath.Join(dir, "daemon.out"), stopWith: syscall.SIGTERM}
}

// TestPassiveNagios4 submits results to a real Nagios 4 through its command
// file, stops Nagios and the agent's Passive while more results come, and
// sees them all arrive, in order, once both are back.
func TestPassiveNagios4(t *testing.T) {
	dir := t.TempDir()
	nagios4 := startNagios4(t, dir)
	nagios4.start()
	var log spoolLog
	cfg := conf.Passive{CommandFile: filepath.Join(dir, "nagios.cmd")}
	spoolDir := filepath.Join(dir, "spool")
	p, err := NewPassive(cfg, "web1", spoolDir, log.logger())
	if err != nil {
		t.Fatal(err)
	}
	stop := runPassive(t, p)

	status := filepath.Join(dir, "status.dat")
	submit(t, p, passiveStatus("s1", nagios.Warning, `DISK WARNING - / at 90% | nearly full`, "line two\nC:\\data",
		nagios.Perf{Label: "/", Value: 90, UOM: "%", Warn: ptr(nagios.Range{End: 80}), Crit: ptr(nagios.Range{End: 95}), Min: nagios.Float(0), Max: nagios.Float(100)}))
	want := map[string]string{
		"current_state": "1",
		"plugin_output": "DISK WARNING - / at 90% / nearly full",
		// status.dat writes a line break as \n and a backslash as \\.
		"long_plugin_output": `line two\nC:\\data`,
		"performance_data":   "/=90%;80;95;0;100",
		"check_type":         "1", // passive
	}
	poll.Until(t, "Nagios to show the first result", func() (bool, string) {
		got := nagiosstatus.Service(status, "", "s1")
		for k, v := range want {
			if got[k] != v {
				return false, fmt.Sprintf("%s = %q, want %q", k, got[k], v)
			}
		}
		return true, ""
	})

	nagios4.stop()
	for i := 1; i <= 3; i++ {
		submit(t, p, passiveStatus("s1", nagios.State(i%3+1), fmt.Sprintf("spooled %d", i), ""))
	}
	poll.Until(t, "the results to wait in the spool", func() (bool, string) {
		tg := target(p, targetNagios)
		return tg.Queued == 3 && tg.Down && strings.Contains(tg.LastError, "not reading"), fmt.Sprintf("%+v", tg)
	})
	// The agent restarts while Nagios is down.
	stop()
	p, err = NewPassive(cfg, "web1", spoolDir, log.logger())
	if err != nil {
		t.Fatal(err)
	}
	if q := target(p, targetNagios).Queued; q != 3 {
		t.Fatalf("after the agent restarted, %d results are queued, want 3", q)
	}
	runPassive(t, p)
	submit(t, p, passiveStatus("s1", nagios.Critical, "spooled 4", ""))

	nagios4.start()
	poll.Until(t, "the spooled results to reach Nagios", func() (bool, string) {
		got := nagiosstatus.Service(status, "", "s1")
		return got["plugin_output"] == "spooled 4" && got["current_state"] == "2", fmt.Sprintf("%v", got)
	})
	data, err := os.ReadFile(filepath.Join(dir, "nagios.log"))
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for line := range strings.Lines(string(data)) {
		if _, cmd, ok := strings.Cut(line, "EXTERNAL COMMAND: PROCESS_SERVICE_CHECK_RESULT;web1;s1;"); ok {
			order = append(order, strings.TrimSpace(cmd))
		}
	}
	wantOrder := []string{
		`1;DISK WARNING - / at 90% / nearly full|/=90%;80;95;0;100\nline two\nC:\\data`,
		"2;spooled 1", "3;spooled 2", "1;spooled 3", "2;spooled 4",
	}
	if !slices.Equal(order, wantOrder) {
		t.Errorf("Nagios got, in this order:\n%s\nwant\n%s", strings.Join(order, "\n"), strings.Join(wantOrder, "\n"))
	}
	if tg := target(p, targetNagios); tg.Queued != 0 || tg.Down || tg.Delivered != 4 {
		t.Errorf("after delivery: %+v", tg)
	}
}

func ptr[T any](v T) *T { return &v }

// tlsConfigFor trusts the CA certificate in caPEM.
func tlsConfigFor(t *testing.T, caPEM []byte) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("no CA certificate")
	}
	return &tls.Config{RootCAs: pool}
}

// icingaTestPKI makes a CA and a server certificate for node, as icinga2
// pki would, in Icinga's certs dir.
func icingaTestPKI(t *testing.T, certs, node string) (caFile string) {
	t.Helper()
	if err := os.MkdirAll(certs, 0o700); err != nil {
		t.Fatal(err)
	}
	ca := testpki.NewCA(t, testpki.Options{CommonName: "Icinga CA", RSA: true})
	ca.Issue(t, testpki.Options{
		CommonName: node, Hosts: []string{node, "127.0.0.1"}, RSA: true,
		Usage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}).WriteFiles(t, filepath.Join(certs, node+".crt"), filepath.Join(certs, node+".key"))
	caFile = filepath.Join(certs, "ca.crt")
	ca.WriteFiles(t, caFile, "")
	return caFile
}

// icingaTest is a real Icinga 2 with its API on a loopback port: host web1,
// passive service s1, an "agent" user that may only submit results and an
// "admin" the test reads back with.
type icingaTest struct {
	*daemon
	url, caFile string
	addr        string
	client      *http.Client
}

func startIcinga2(t *testing.T, dir string) *icingaTest {
	t.Helper()
	bin := realDaemon(t, "/usr/sbin/icinga2", "icinga2-bin")
	const node = "immune-test"
	data := filepath.Join(dir, "data")
	caFile := icingaTestPKI(t, filepath.Join(data, "certs"), node)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	config := fmt.Sprintf(`const NodeName = %q
const ZoneName = NodeName
object Endpoint NodeName { }
object Zone ZoneName { endpoints = [ NodeName ] }
object ApiListener "api" {
	bind_host = "127.0.0.1"
	bind_port = %d
}
object ApiUser "agent" {
	password = "agent-secret"
	permissions = [ "actions/process-check-result" ]
}
object ApiUser "admin" {
	password = "admin-secret"
	permissions = [ "*" ]
}
object CheckCommand "none" { command = [ "/bin/true" ] }
object Host "web1" { check_command = "none"; enable_active_checks = false }
object Service "s1" { host_name = "web1"; check_command = "none"; enable_active_checks = false }
object Service "no-passive" { host_name = "web1"; check_command = "none"; enable_active_checks = false; enable_passive_checks = false }
`, node, port)
	cfgFile := filepath.Join(dir, "icinga2.conf")
	if err := os.WriteFile(cfgFile, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{bin, "daemon", "-c", cfgFile, "-DRunAsUser=" + u.Username, "-DRunAsGroup=" + g.Name}
	for _, d := range []string{"DataDir", "LogDir", "CacheDir", "SpoolDir", "InitRunDir"} {
		path := filepath.Join(dir, strings.ToLower(d))
		if d == "DataDir" {
			path = data
		}
		if err := os.MkdirAll(path, 0o700); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-D"+d+"="+path)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConfigFor(t, pem)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	return &icingaTest{
		// Killed, not stopped: a killed Icinga is as down as a stopped one,
		// and Icinga 2.13 now and then ignores for 20 s and more a SIGTERM
		// that reaches its umbrella and worker processes at once.
		daemon: &daemon{t: t, args: args, log: filepath.Join(dir, "daemon.out"), stopWith: syscall.SIGKILL},
		url:    "https://" + addr,
		addr:   addr,
		caFile: caFile,
		client: &http.Client{Transport: tr, Timeout: 10 * time.Second},
	}
}

// stop stops Icinga and waits until its port is free: the process the test
// started exits before the worker it forked has let go of the API.
func (ic *icingaTest) stop() {
	ic.t.Helper()
	ic.client.CloseIdleConnections()
	ic.daemon.stop()
	poll.Until(ic.t, "Icinga to free its port", func() (bool, string) {
		ln, err := net.Listen("tcp", ic.addr)
		if err != nil {
			return false, err.Error()
		}
		ln.Close()
		return true, ""
	})
}

// startAndWait starts Icinga and waits until its API answers.
func (ic *icingaTest) startAndWait() {
	ic.t.Helper()
	ic.start()
	ic.t.Cleanup(ic.stop)
	poll.Until(ic.t, "the Icinga API", func() (bool, string) {
		resp, err := ic.admin(http.MethodGet, "/v1", nil)
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
}

func (ic *icingaTest) admin(method, path string, body []byte) (*http.Response, error) {
	req, err := http.NewRequest(method, ic.url+path, strings.NewReader(string(body)))
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth("admin", "admin-secret")
	req.Header.Set("Accept", "application/json")
	return ic.client.Do(req)
}

// lastResult is what Icinga holds as the service's last check result.
func (ic *icingaTest) lastResult(service string) (map[string]any, error) {
	resp, err := ic.admin(http.MethodGet, "/v1/objects/services/web1!"+service+"?attrs=last_check_result", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Results []struct {
			Attrs struct {
				LastCheckResult map[string]any `json:"last_check_result"`
			} `json:"attrs"`
		} `json:"results"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || len(body.Results) == 0 {
		return nil, fmt.Errorf("read service: %s %v", resp.Status, err)
	}
	return body.Results[0].Attrs.LastCheckResult, nil
}

// checkResults subscribes to Icinga's event stream and sends the output of
// every check result it processes, in its order.
func (ic *icingaTest) checkResults() <-chan string {
	ic.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ic.url+"/v1/events?queue=immune-test&types=CheckResult", nil)
	if err != nil {
		ic.t.Fatal(err)
	}
	req.SetBasicAuth("admin", "admin-secret")
	req.Header.Set("Accept", "application/json")
	// The stream is long-lived: no client timeout, the context ends it.
	resp, err := (&http.Client{Transport: ic.client.Transport}).Do(req)
	if err != nil {
		ic.t.Fatal(err)
	}
	out := make(chan string, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var ev struct {
				CheckResult struct {
					Output string `json:"output"`
				} `json:"check_result"`
			}
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				out <- ev.CheckResult.Output
			}
		}
	}()
	ic.t.Cleanup(func() {
		cancel()
		resp.Body.Close()
		<-done
	})
	return out
}

// checkIcingaReplies asks the real Icinga for each answer in icingaReplies,
// the ones the stand-in servers give, and checks it gives the same.
func checkIcingaReplies(t *testing.T, ic *icingaTest) {
	t.Helper()
	const action = "/v1/actions/process-check-result"
	result := func(service string) string {
		return `{"type":"Service","service":"web1!` + service + `","exit_status":0,"plugin_output":"contract"}`
	}
	asks := map[string]struct{ path, password, body string }{
		"accepted":       {action, "agent-secret", result("s1")},
		"no object":      {action, "agent-secret", result("no-such-service")},
		"passive off":    {action, "agent-secret", result("no-passive")},
		"no output":      {action, "agent-secret", `{"type":"Service","service":"web1!s1","exit_status":0}`},
		"wrong path":     {"/icinga" + action, "agent-secret", result("s1")},
		"no such action": {"/v1/actions/process-check-resul", "agent-secret", result("s1")},
		"unauthorized":   {action, "wrong", result("s1")},
	}
	if len(asks) != len(icingaReplies) {
		t.Fatalf("%d stand-in replies, %d checked against Icinga", len(icingaReplies), len(asks))
	}
	for name, ask := range asks {
		req, err := http.NewRequest(http.MethodPost, ic.url+ask.path, strings.NewReader(ask.body))
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth("agent", ask.password)
		req.Header.Set("Accept", "application/json")
		resp, err := ic.client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got, want := (icingaReply{resp.StatusCode, string(body)}), icingaReplies[name]; got != want {
			t.Errorf("%s: Icinga answered %d %s\nthe stand-in answers %d %s", name, got.code, got.body, want.code, want.body)
		}
	}
}

// TestPassiveIcinga2 submits results to a real Icinga 2 over its API, with
// Nagios's command file down at the same time, and sees that a result
// Icinga refuses is dropped without blocking the queue, and that results
// wait in the spool through an Icinga outage and an agent restart.
func TestPassiveIcinga2(t *testing.T) {
	dir := t.TempDir()
	ic := startIcinga2(t, filepath.Join(dir, "icinga"))
	ic.startAndWait()
	checkIcingaReplies(t, ic)

	// A FIFO no one reads: Nagios is down all along.
	fifo := filepath.Join(dir, "nagios.cmd")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	password := filepath.Join(dir, "icinga.password")
	if err := os.WriteFile(password, []byte("agent-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := conf.Passive{
		CommandFile: fifo,
		Icinga:      &conf.Icinga{URL: ic.url, User: "agent", PasswordFile: password, CAFile: ic.caFile},
	}
	var log spoolLog
	spoolDir := filepath.Join(dir, "spool")
	p, err := NewPassive(cfg, "web1", spoolDir, log.logger())
	if err != nil {
		t.Fatal(err)
	}
	stop := runPassive(t, p)

	first := passiveStatus("s1", nagios.Critical, "PROCS CRITICAL: 0 processes | none", "ps said:\nnothing",
		nagios.Perf{Label: "procs", Value: 0, Warn: ptr(nagios.Range{Start: 1, End: 10}), Min: nagios.Float(0)},
		nagios.Perf{Label: "time taken", Value: 0.25, UOM: "s"})
	submit(t, p, first)
	poll.Until(t, "Icinga to show the first result", func() (bool, string) {
		cr, err := ic.lastResult("s1")
		if err != nil {
			return false, err.Error()
		}
		perf, _ := json.Marshal(cr["performance_data"])
		start, _ := cr["execution_start"].(float64)
		end, _ := cr["execution_end"].(float64)
		ok := cr["output"] == "PROCS CRITICAL: 0 processes | none\nps said:\nnothing" &&
			cr["state"] == 2.0 && cr["check_source"] == "web1" &&
			string(perf) == `["procs=0;1:10;;0","'time taken'=0.25s"]` &&
			int64(start) == first.LastCheck.Unix() && end-start > 0.2 && end-start < 0.3
		return ok, fmt.Sprintf("%v", cr)
	})

	// A result for a service Icinga does not know, or takes no passive
	// results for, can never be delivered: it is dropped, and what comes
	// after it still goes.
	submit(t, p, passiveStatus("no-such-service", nagios.OK, "lost", ""))
	submit(t, p, passiveStatus("no-passive", nagios.OK, "lost", ""))
	submit(t, p, passiveStatus("s1", nagios.OK, "after the refused one", ""))
	poll.Until(t, "the result after the refused one", func() (bool, string) {
		cr, err := ic.lastResult("s1")
		if err != nil {
			return false, err.Error()
		}
		return cr["output"] == "after the refused one", fmt.Sprintf("%v", cr["output"])
	})
	if tg := target(p, targetIcinga); tg.Rejected != 2 || tg.Delivered != 2 || tg.Queued != 0 {
		t.Errorf("icinga target: %+v", tg)
	}
	for _, why := range []string{"No objects found", "Passive checks are disabled"} {
		if !strings.Contains(log.String(), why) {
			t.Errorf("the refusal %q was not logged:\n%s", why, log.String())
		}
	}
	// Meanwhile Nagios, down, has every result waiting for it.
	if tg := target(p, targetNagios); tg.Queued != 4 || !tg.Down || tg.Delivered != 0 {
		t.Errorf("nagios target while down: %+v", tg)
	}

	ic.stop()
	for i := 1; i <= 3; i++ {
		submit(t, p, passiveStatus("s1", nagios.State(i), fmt.Sprintf("spooled %d", i), ""))
	}
	poll.Until(t, "the results to wait for Icinga", func() (bool, string) {
		tg := target(p, targetIcinga)
		return tg.Queued == 3 && tg.Down && strings.Contains(tg.LastError, "post to icinga"), fmt.Sprintf("%+v", tg)
	})
	stop()

	ic.startAndWait()
	results := ic.checkResults()
	p, err = NewPassive(cfg, "web1", spoolDir, log.logger())
	if err != nil {
		t.Fatal(err)
	}
	runPassive(t, p)
	var got []string
	timeout := time.After(20 * time.Second)
	for len(got) < 3 {
		select {
		case out := <-results:
			got = append(got, out)
		case <-timeout:
			t.Fatalf("Icinga processed only %q of the spooled results", got)
		}
	}
	if want := []string{"spooled 1", "spooled 2", "spooled 3"}; !slices.Equal(got, want) {
		t.Errorf("Icinga processed %q, want %q", got, want)
	}
	if tg := target(p, targetNagios); tg.Queued != 7 {
		t.Errorf("nagios, still down, has %d queued, want 7", tg.Queued)
	}
}

// TestPassiveIcingaRetries runs the Icinga target against a loopback HTTPS
// stand-in that fails the way Icinga can: it must retry what it should,
// drop what it must, and keep the order.
func TestPassiveIcingaRetries(t *testing.T) {
	var (
		mu     sync.Mutex
		bodies []map[string]any
		auths  []string
	)
	answers := []struct {
		code int
		body string
	}{
		{503, `{"error":503,"status":"starting"}`},
		{401, `{"error":401,"status":"Unauthorized. Please check your user credentials."}`},
		{200, `{"results":[{"code":200,"status":"ok"}]}`},
		{404, `{"error":404,"status":"No objects found."}`},
		{500, `{"results":[]}`},
		{200, `{"results":[{"code":200,"status":"ok"}]}`},
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		var body map[string]any
		json.NewDecoder(r.Body).Decode(&body)
		user, pw, _ := r.BasicAuth()
		auths = append(auths, r.Method+" "+r.URL.Path+" "+user+":"+pw+" "+r.Header.Get("Accept"))
		bodies = append(bodies, body)
		a := answers[min(len(bodies)-1, len(answers)-1)]
		w.WriteHeader(a.code)
		w.Write([]byte(a.body))
	}))
	srv.StartTLS()
	t.Cleanup(srv.Close)

	dir := t.TempDir()
	password := filepath.Join(dir, "pw")
	os.WriteFile(password, []byte("s3cret\n"), 0o600)
	cfg := conf.Passive{Icinga: &conf.Icinga{URL: srv.URL + "/", User: "agent", PasswordFile: password, Insecure: true}}
	p, err := NewPassive(cfg, "web1", filepath.Join(dir, "spool"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(1700000000, 500_000_000)
	for i, name := range []string{"s1", "gone", "s2"} {
		st := passiveStatus(name, nagios.Warning, fmt.Sprintf("result %d", i), "")
		st.LastCheck = at
		submit(t, p, st)
	}
	runPassive(t, p)
	poll.Until(t, "delivery", func() (bool, string) {
		tg := target(p, targetIcinga)
		return tg.Queued == 0, fmt.Sprintf("%+v", tg)
	})
	tg := target(p, targetIcinga)
	if tg.Delivered != 2 || tg.Rejected != 1 || tg.Down || !strings.Contains(tg.LastError, "icinga answered 500") {
		t.Errorf("target: %+v", tg)
	}
	mu.Lock()
	defer mu.Unlock()
	var services []string
	for _, b := range bodies {
		services = append(services, b["service"].(string))
	}
	// 503 and 401 retried s1; the 404 dropped "gone"; the 500 retried s2.
	if want := []string{"web1!s1", "web1!s1", "web1!s1", "web1!gone", "web1!s2", "web1!s2"}; !slices.Equal(services, want) {
		t.Errorf("requests for %q, want %q", services, want)
	}
	want := map[string]any{
		"type": "Service", "service": "web1!s1", "exit_status": 1.0, "plugin_output": "result 0",
		"check_source": "web1", "execution_start": 1700000000.5, "execution_end": 1700000000.75,
	}
	for k, v := range want {
		if bodies[0][k] != v {
			t.Errorf("request field %s = %v, want %v", k, bodies[0][k], v)
		}
	}
	if auths[0] != "POST /v1/actions/process-check-result agent:s3cret application/json" {
		t.Errorf("request: %s", auths[0])
	}
}

// TestPassiveIcingaOutageKeepsResults puts something that is not Icinga,
// or Icinga at a wrong path, in front of the agent for a while: every
// result must wait and be delivered once Icinga answers, none dropped.
func TestPassiveIcingaOutageKeepsResults(t *testing.T) {
	tests := []struct {
		name string
		fail icingaReply
	}{
		{"proxy 404 text", icingaReply{http.StatusNotFound, "404 page not found\n"}},
		{"proxy 404 html", icingaReply{http.StatusNotFound, "<html><head><title>404 Not Found</title></head><body>nginx</body></html>"}},
		{"proxy 502", icingaReply{http.StatusBadGateway, "<html><body>502 Bad Gateway</body></html>"}},
		{"icinga at a wrong path", icingaReplies["wrong path"]},
		{"icinga without the action", icingaReplies["no such action"]},
		{"portal answering 200", icingaReply{http.StatusOK, "<html>log in first</html>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			const failures = 5
			var (
				mu       sync.Mutex
				requests int
				got      []string
			)
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				defer mu.Unlock()
				requests++
				a := icingaReplies["accepted"]
				if requests <= failures {
					a = tt.fail
				}
				if a == icingaReplies["accepted"] {
					var body struct {
						PluginOutput string `json:"plugin_output"`
					}
					json.NewDecoder(r.Body).Decode(&body)
					got = append(got, body.PluginOutput)
				}
				w.WriteHeader(a.code)
				io.WriteString(w, a.body)
			}))
			t.Cleanup(srv.Close)
			cfg := conf.Passive{Icinga: &conf.Icinga{URL: srv.URL, User: "agent", Insecure: true}}
			p, err := NewPassive(cfg, "web1", filepath.Join(t.TempDir(), "spool"), slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for i := range 3 {
				want = append(want, fmt.Sprintf("result %d", i))
				submit(t, p, passiveStatus("s1", nagios.OK, want[i], ""))
			}
			runPassive(t, p)
			poll.Until(t, "delivery", func() (bool, string) {
				tg := target(p, targetIcinga)
				return tg.Queued == 0, fmt.Sprintf("%+v", tg)
			})
			if tg := target(p, targetIcinga); tg.Delivered != 3 || tg.Rejected != 0 {
				t.Errorf("target: %+v", tg)
			}
			mu.Lock()
			defer mu.Unlock()
			if !slices.Equal(got, want) {
				t.Errorf("delivered %q, want %q", got, want)
			}
		})
	}
}

// TestPassiveStopsWhileNagiosIsBusy checks that Run returns when its
// context ends even while a write waits on a full command pipe.
func TestPassiveStopsWhileNagiosIsBusy(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "nagios.cmd")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// A reader that never reads: the pipe fills, as with a stuck Nagios.
	reader, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reader.Close() })
	p, err := NewPassive(conf.Passive{CommandFile: fifo}, "web1", filepath.Join(dir, "spool"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 3000)
	for i := range 40 { // 120 KB, more than a pipe holds
		submit(t, p, passiveStatus("s1", nagios.OK, strconv.Itoa(i)+long, ""))
	}
	stop := runPassive(t, p)
	// A pipe holds 16 of these lines (a page each); the next write waits.
	poll.Until(t, "the pipe to fill", func() (bool, string) {
		tg := target(p, targetNagios)
		return tg.Delivered >= 10, fmt.Sprintf("%+v", tg)
	})
	stop() // returns only once the delivery loop has ended
	if tg := target(p, targetNagios); tg.Queued == 0 {
		t.Errorf("everything delivered into a pipe no one reads: %+v", tg)
	}
}

// TestPassiveDeliversWhileDiskFull fills the spool's disk: results still
// reach Nagios, from memory, in order, and memory is freed once they have.
func TestPassiveDeliversWhileDiskFull(t *testing.T) {
	dir := smallDisk(t, 64<<10)
	fifo := filepath.Join(t.TempDir(), "nagios.cmd")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	var log spoolLog
	p, err := NewPassive(conf.Passive{CommandFile: fifo}, "web1", filepath.Join(dir, "spool"), log.logger())
	if err != nil {
		t.Fatal(err)
	}
	fillDisk(t, dir)
	runPassive(t, p)
	var want []string
	for i := range 40 {
		want = append(want, fmt.Sprintf("result %d", i))
		submit(t, p, passiveStatus("s1", nagios.OK, want[i], ""))
	}
	sc := bufio.NewScanner(r)
	var got []string
	for len(got) < len(want) && sc.Scan() {
		_, out, _ := strings.Cut(sc.Text(), ";s1;0;")
		got = append(got, out)
	}
	if !slices.Equal(got, want) {
		t.Errorf("nagios read %q, want %q", got, want)
	}
	poll.Until(t, "memory to be freed", func() (bool, string) {
		h := p.spool.Health()
		return h.InMemory == 0 && target(p, targetNagios).Queued == 0, fmt.Sprintf("%+v %+v", h, target(p, targetNagios))
	})
	if h := p.spool.Health(); !errors.Is(h.WriteErr, syscall.ENOSPC) {
		t.Errorf("spool health: %+v", h)
	}
}

// readOnlyDir makes dir read-only with a bind mount, as a read-only
// filesystem would be; without the right to mount the test is skipped.
func readOnlyDir(t *testing.T, dir string) {
	t.Helper()
	if err := syscall.Mount(dir, dir, "", syscall.MS_BIND, ""); err != nil {
		t.Skipf("a read-only dir is a read-only bind mount, and mounting failed (the test needs root): %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount the test's bind mount: %v", err)
		}
	})
	if err := syscall.Mount("", dir, "", syscall.MS_REMOUNT|syscall.MS_BIND|syscall.MS_RDONLY, ""); err != nil {
		t.Fatalf("make the bind mount read-only: %v", err)
	}
}

// TestAgentRunsWithoutItsSpool breaks the spool's directory: the agent
// still starts, answers NRPE and delivers results from memory, and its
// immune_passive check reports the directory and the error, as CRITICAL.
func TestAgentRunsWithoutItsSpool(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, spool string)
		state  nagios.State
		want   string
	}{
		{"healthy", func(*testing.T, string) {}, nagios.OK, "PASSIVE OK - nagios "},
		{"spool is a file", func(t *testing.T, spool string) {
			if err := os.WriteFile(spool, []byte("not a dir\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, nagios.Critical, "not a directory"},
		{"spool read-only", func(t *testing.T, spool string) {
			if err := os.Mkdir(spool, 0o700); err != nil {
				t.Fatal(err)
			}
			readOnlyDir(t, spool)
		}, nagios.Critical, "read-only file system"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dataDir := t.TempDir()
			spool := filepath.Join(dataDir, "spool")
			tt.damage(t, spool)
			fifo := filepath.Join(t.TempDir(), "nagios.cmd")
			if err := syscall.Mkfifo(fifo, 0o600); err != nil {
				t.Fatal(err)
			}
			r, err := os.OpenFile(fifo, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close() })
			cfg := agentConfig(t, dataDir)
			cfg.Passive.CommandFile = fifo
			a := startAgent(t, cfg)

			code, out := agentNRPE(t, a, "-c", "check_load")
			if code != 0 || !strings.HasPrefix(out, "LOAD OK") {
				t.Errorf("check_load over NRPE: %d %q", code, out)
			}
			code, out = agentNRPE(t, a, "-c", passiveCheckName)
			if code != tt.state.ExitCode() || !strings.HasPrefix(out, "PASSIVE "+tt.state.String()) || !strings.Contains(out, tt.want) {
				t.Errorf("%s over NRPE: %d %q, want %s with %q", passiveCheckName, code, out, tt.state, tt.want)
			}
			if tt.state != nagios.OK && !strings.Contains(out, "spool "+spool+" cannot be used") {
				t.Errorf("%s does not name the spool dir: %q", passiveCheckName, out)
			}
			var st Status
			if code := apiGet(t, a, agentapi.CheckPath(passiveCheckName), &st); code != http.StatusOK || st.State != tt.state {
				t.Errorf("%s in the API: %d %+v", passiveCheckName, code, st)
			}
			// Results still reach Nagios, this check's own among them.
			want := fmt.Sprintf(";test1;%s;%d;PASSIVE %s", passiveCheckName, tt.state.ExitCode(), tt.state)
			if err := r.SetReadDeadline(time.Now().Add(20 * time.Second)); err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(r)
			for sc.Scan() {
				if strings.Contains(sc.Text(), want) {
					return
				}
			}
			t.Errorf("no %q in the command file: %v", want, sc.Err())
		})
	}
}

// TestNewPassiveSpoolHeld: a spool another agent holds stops this one,
// which would otherwise submit every result a second time.
func TestNewPassiveSpoolHeld(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	cfg := conf.Passive{CommandFile: filepath.Join(dir, "nagios.cmd")}
	first, err := NewPassive(cfg, "web1", filepath.Join(dir, "spool"), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { first.Close() })
	second, err := NewPassive(cfg, "web1", filepath.Join(dir, "spool"), log)
	if err == nil {
		second.Close()
		t.Fatal("a second agent opened a spool in use")
	}
	if !strings.Contains(err.Error(), "in use by another agent's spool") {
		t.Errorf("error %q does not say the spool is in use", err)
	}
}

// TestPassiveCheck reads the immune_passive check's answer in each state.
func TestPassiveCheck(t *testing.T) {
	const perf = "|in_memory=%d;;;0 nagios_queued=%d;;;0 nagios_dropped=%dc icinga_queued=0;;;0 icinga_dropped=0c"
	tests := []struct {
		name  string
		setup func(p *Passive)
		want  string
	}{
		{"healthy", func(*Passive) {}, "PASSIVE OK - nagios 2 queued, icinga 0 queued" + fmt.Sprintf(perf, 0, 2, 0)},
		{"disk full", func(p *Passive) {
			p.spool.writeErr = fmt.Errorf("append to spool: %w", syscall.ENOSPC)
		}, "PASSIVE WARNING - spool /var/spool/x cannot be written (append to spool: no space left on device): 0 results held in memory" + fmt.Sprintf(perf, 0, 2, 0)},
		{"nagios down, results lost", func(p *Passive) {
			p.targets[0].status.Down = true
			p.targets[0].status.LastError = "nagios is not reading it"
			p.spool.cursors[targetNagios].dropped = 7
		}, "PASSIVE WARNING - nagios down (nagios is not reading it): 2 queued; nagios lost 7 results to the spool's bounds since the agent started" + fmt.Sprintf(perf, 0, 2, 7)},
		{"spool unusable", func(p *Passive) {
			p.spool.openErr = fmt.Errorf("create spool dir: %w", syscall.EROFS)
		}, "PASSIVE CRITICAL - spool /var/spool/x cannot be used (create spool dir: read-only file system): 0 results held in memory only, lost if the agent stops" + fmt.Sprintf(perf, 0, 2, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := conf.Passive{
				CommandFile: filepath.Join(dir, "nagios.cmd"),
				Icinga:      &conf.Icinga{URL: "https://127.0.0.1:1", User: "agent"},
			}
			p, err := NewPassive(cfg, "web1", filepath.Join(dir, "spool"), slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { p.Close() })
			submit(t, p, passiveStatus("s1", nagios.OK, "one", ""))
			submit(t, p, passiveStatus("s1", nagios.OK, "two", ""))
			// Icinga has taken both.
			if err := p.spool.Ack(targetIcinga, 2); err != nil {
				t.Fatal(err)
			}
			p.spool.dir = "/var/spool/x"
			tt.setup(p)
			var b strings.Builder
			if err := passiveJob(p).check.Run(context.Background()).Write(&b); err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSuffix(b.String(), "\n"); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}
