package agent

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/immune-ops/immune/agentapi"
	"github.com/immune-ops/immune/conf"
	"github.com/immune-ops/immune/nagios"
)

func TestSplayIsStableAndSpread(t *testing.T) {
	interval := time.Minute
	seen := map[time.Duration]bool{}
	for _, name := range []string{"check_load", "check_disk", "check_procs", "check_php_fatals", "check_http"} {
		s := splay(name, interval)
		if s != splay(name, interval) {
			t.Fatalf("splay of %s changes", name)
		}
		if s < 0 || s >= interval {
			t.Fatalf("splay of %s = %v, outside the interval", name, s)
		}
		seen[s] = true
	}
	if len(seen) < 4 {
		t.Errorf("five checks share %d splay values: not spread", len(seen))
	}
}

func TestNextRun(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 30, 0, time.UTC)
	cfg := conf.Check{Name: "check_load", Interval: conf.Duration(time.Minute), RetryInterval: conf.Duration(15 * time.Second), Timeout: conf.Duration(10 * time.Second)}
	offset := splay(cfg.Name, time.Minute)
	tests := []struct {
		name string
		st   Status
		ok   bool
		want time.Time
	}{
		{"never ran: soon, spread", Status{}, false, now.Add(offset % firstRunWindow)},
		{"overdue after downtime: soon", Status{Result: nagios.Result{State: nagios.OK}, StateType: agentapi.Hard, LastCheck: now.Add(-time.Hour)}, true, now.Add(offset % firstRunWindow)},
		{"soft problem: retry interval", Status{Result: nagios.Result{State: nagios.Critical}, StateType: agentapi.Soft, LastCheck: now.Add(-5 * time.Second)}, true, now.Add(10 * time.Second)},
		{"soft problem, retry due: now", Status{Result: nagios.Result{State: nagios.Critical}, StateType: agentapi.Soft, LastCheck: now.Add(-20 * time.Second)}, true, now},
	}
	for _, tt := range tests {
		if got := nextRun(cfg, tt.st, tt.ok, now); !got.Equal(tt.want) {
			t.Errorf("%s: next %v, want %v", tt.name, got, tt.want)
		}
	}
	// agentapi.Hard or OK: on the interval, at the check's own place in it, the
	// same after a restart.
	st := Status{Result: nagios.Result{State: nagios.Warning}, StateType: agentapi.Hard, LastCheck: now.Add(-10 * time.Second)}
	a := nextRun(cfg, st, true, now)
	b := nextRun(cfg, st, true, now.Add(time.Second))
	if !a.Equal(b) || !a.After(now) || a.Sub(now) > time.Minute {
		t.Errorf("hard: next %v and %v, want one slot within a minute", a, b)
	}
	if got := a.Sub(a.Truncate(time.Minute)); got != offset {
		t.Errorf("slot at %v into the minute, want the splay %v", got, offset)
	}
}

// TestNRPEQueuesForMaxConcurrent: an NRPE query takes one of the
// scheduler's max_concurrent slots like a scheduled run. With the only
// slot held by a slow check, Debian's check_nrpe is answered UNKNOWN after
// nrpe.queue_timeout, saying why, instead of the check running beside it.
func TestNRPEQueuesForMaxConcurrent(t *testing.T) {
	checkNRPE(t)
	testdata, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := conf.ParseAgent("test.yaml", []byte(fmt.Sprintf(`
host: test1
host_type: www
data_dir: %s
max_concurrent: 1
checks:
  - name: sleepy
    plugin: %s/check_sleepy
    interval: 1s
    timeout: 20s
  - name: check_load
    builtin: check_load
    args: [-w, "1000", -c, "2000"]
    interval: 1h
nrpe:
  listen: 127.0.0.1:0
  queue_timeout: 1s
`, t.TempDir(), testdata)))
	if err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, cfg)
	sleepy := a.sched.jobs["sleepy"]
	deadline := time.Now().Add(10 * time.Second)
	for sleepy.running.TryLock() {
		sleepy.running.Unlock()
		if time.Now().After(deadline) {
			t.Fatal("sleepy never ran")
		}
		time.Sleep(10 * time.Millisecond)
	}

	start := time.Now()
	code, out := agentNRPE(t, a, "-t", "10", "-c", "check_load")
	took := time.Since(start)
	want := "NRPE: check queue full (max_concurrent 1, 1 running): check_load waited 1s for a slot\n"
	if code != 3 || out != want {
		t.Errorf("check_nrpe while sleepy holds the only slot: %d %q, want 3 %q", code, out, want)
	}
	if took < time.Second || took > 5*time.Second {
		t.Errorf("answered after %v, want after the 1s queue timeout", took)
	}
	if st, ok := a.store.Get("check_load"); ok && st.Checked() && st.LastCheck.After(start) {
		t.Errorf("check_load ran beside sleepy: %+v", st)
	}
}
