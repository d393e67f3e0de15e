package objects_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/immune-ops/immune/agent"
	"github.com/immune-ops/immune/conf"
	"github.com/immune-ops/immune/fixtures/nagiosstatus"
	"github.com/immune-ops/immune/fixtures/poll"
	"github.com/immune-ops/immune/nagios/objects"
)

// startAgent runs a real agent from config text until the test ends.
func startAgent(t *testing.T, text string) *agent.Agent {
	t.Helper()
	cfg, err := conf.ParseAgent("agent.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent stopped with %v", err)
		}
	})
	return a
}

// TestNagios4RunsGeneratedConfig runs a real Nagios 4 on the config
// generated for two real agents on loopback: web2 is checked actively
// through the real check_nrpe, web1 submits its results through Nagios's
// command file. A failing check notifies the first contact, and from the
// third notification the escalation's too.
func TestNagios4RunsGeneratedConfig(t *testing.T) {
	bin := realDaemon(t, "/usr/sbin/nagios4", "nagios4-core")
	realDaemon(t, "/usr/lib/nagios/plugins/check_nrpe", "nagios-nrpe-plugin")
	dir := t.TempDir()
	critical, err := filepath.Abs("../../agent/testdata/check_always_critical")
	if err != nil {
		t.Fatal(err)
	}
	active := startAgent(t, fmt.Sprintf(`host: web2
host_type: www
data_dir: %s
checks:
  - {name: healthy, builtin: check_load, args: [-w, "1000", -c, "2000"], interval: 1h}
  - {name: failing, plugin: %s, interval: 1h}
nrpe: {listen: "127.0.0.1:0"}
http: {listen: "127.0.0.1:0"}
`, filepath.Join(dir, "web2"), critical))
	pushing := startAgent(t, fmt.Sprintf(`host: web1
host_type: push
data_dir: %s
checks:
  - {name: pushed, builtin: check_load, args: [-w, "1000", -c, "2000"], interval: 1s}
nrpe: {listen: "127.0.0.1:0"}
http: {listen: "127.0.0.1:0"}
passive: {command_file: %s}
`, filepath.Join(dir, "web1"), filepath.Join(dir, "nagios.cmd")))

	notified := filepath.Join(dir, "notified.log")
	notify := fmt.Sprintf(`/bin/echo "$CONTACTNAME$ $NOTIFICATIONTYPE$ $HOSTNAME$/$SERVICEDESC$ $SERVICESTATE$" >> %s`, notified)
	fleetText := fmt.Sprintf(`listen: 127.0.0.1:1
agent_token_file: /dev/null
hosts:
  - {name: web1, address: %q, host_type: push, nrpe: %q}
  - {name: web2, address: %q, host_type: www, nrpe: %q}
contacts:
  - {name: first, notify: '%s'}
  - {name: lead, notify: '%s'}
contact_groups:
  - {name: oncall, members: [first]}
  - {name: leads, members: [lead]}
services:
  - {name: healthy, host_types: [www], check_interval: 1s, retry_interval: 1s, max_check_attempts: 1, contact_groups: [oncall]}
  - {name: failing, host_types: [www], check_interval: 1s, retry_interval: 1s, max_check_attempts: 1,
     notification_interval: 2s, contact_groups: [oncall], notes_url: "https://wiki.example.com/failing"}
  - {name: pushed, host_types: [push], active: passive, check_interval: 1s, freshness: 60s, contact_groups: [oncall]}
escalations:
  - {services: [failing], after_notifications: 2, contact_groups: [leads]}
`, pushing.HTTPAddr(), pushing.NRPEAddr(), active.HTTPAddr(), active.NRPEAddr(), notify, notify)
	fleet, err := conf.ParseFleet("fleet.yaml", []byte(fleetText))
	if err != nil {
		t.Fatal(err)
	}
	files, err := objects.Generate(fleet, objects.Options{IntervalLength: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	objDir := filepath.Join(dir, "immune")
	if err := objects.Write(objDir, files); err != nil {
		t.Fatal(err)
	}
	// Intervals in seconds, every check at once at the start, results and
	// status.dat every second.
	cfg := nagiosMain(t, dir, objDir, `interval_length=1
check_external_commands=1
command_check_interval=-1
accept_passive_service_checks=1
execute_service_checks=1
execute_host_checks=1
enable_notifications=1
enable_flap_detection=0
check_service_freshness=1
service_inter_check_delay_method=n
host_inter_check_delay_method=n
service_interleave_factor=1
max_service_check_spread=1
max_host_check_spread=1
status_update_interval=1
check_result_reaper_frequency=1
log_passive_checks=1
log_notifications=1
`)
	if out, err := exec.Command(bin, "-v", cfg).CombinedOutput(); err != nil {
		t.Fatalf("nagios4 -v: %v\n%s", err, out)
	}
	startNagios(t, bin, cfg, filepath.Join(dir, "daemon.out"))

	status := filepath.Join(dir, "status.dat")
	wants := []struct {
		host, service string
		want          map[string]string
		outputPrefix  string
	}{
		// check_type 0: Nagios ran check_nrpe, which asked the agent.
		{"web2", "healthy", map[string]string{"current_state": "0", "check_type": "0"}, "LOAD OK"},
		{"web2", "failing", map[string]string{"current_state": "2", "check_type": "0", "performance_data": "temp=451;100;200;0"}, "ALWAYS CRITICAL - disk on fire"},
		// check_type 1: the agent submitted it.
		{"web1", "pushed", map[string]string{"current_state": "0", "check_type": "1"}, "LOAD OK"},
	}
	for _, w := range wants {
		poll.Until(t, w.host+"/"+w.service+" in status.dat", func() (bool, string) {
			got := nagiosstatus.Service(status, w.host, w.service)
			for k, v := range w.want {
				if got[k] != v {
					return false, fmt.Sprintf("%s = %q, want %q (%v)", k, got[k], v, got)
				}
			}
			return strings.HasPrefix(got["plugin_output"], w.outputPrefix), fmt.Sprintf("plugin_output %q", got["plugin_output"])
		})
	}

	// The escalation's contact is notified from the third notification on;
	// the first contact from the first.
	var lines []string
	poll.Until(t, "the escalation contact's notification", func() (bool, string) {
		data, _ := os.ReadFile(notified)
		lines = strings.Split(strings.TrimSpace(string(data)), "\n")
		for _, l := range lines {
			if strings.HasPrefix(l, "lead ") {
				return true, ""
			}
		}
		return false, fmt.Sprintf("notified so far: %q", lines)
	})
	firsts := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "lead ") {
			break
		}
		if l != "first PROBLEM web2/failing CRITICAL" {
			t.Errorf("unexpected notification %q", l)
		}
		firsts++
	}
	// The third notification goes to both; either may be written first.
	if firsts != 2 && firsts != 3 {
		t.Errorf("the escalation began after %d notifications, want 2:\n%s", firsts, strings.Join(lines, "\n"))
	}
	if i := firsts; lines[i] != "lead PROBLEM web2/failing CRITICAL" {
		t.Errorf("escalated notification %q", lines[i])
	}
}

// startNagios runs Nagios in the foreground in its own process group, so
// its workers stop with it at the end of the test.
func startNagios(t *testing.T, bin, cfg, logPath string) {
	t.Helper()
	out, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(bin, cfg)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nagios4: %v", err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() {
			cmd.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
}
