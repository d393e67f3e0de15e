package checks

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/immune-ops/immune/fixtures/memcached"
	"github.com/immune-ops/immune/nagios"
)

func TestParseStats(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr string
	}{
		{"memcached", "STAT pid 42\r\nSTAT version 1.6.18\r\nSTAT rusage_user 0.012345\r\nEND\r\n",
			map[string]string{"pid": "42", "version": "1.6.18", "rusage_user": "0.012345"}, ""},
		{"value with spaces", "STAT libevent 2.1.12-stable extra\r\nEND\r\n", map[string]string{"libevent": "2.1.12-stable extra"}, ""},
		{"bare newlines", "STAT pid 1\nEND\n", map[string]string{"pid": "1"}, ""},
		{"empty", "END\r\n", map[string]string{}, ""},
		{"error", "ERROR\r\n", nil, `unexpected stats line "ERROR"`},
		{"server error", "SERVER_ERROR out of memory\r\n", nil, `unexpected stats line "SERVER_ERROR out of memory"`},
		{"no value", "STAT pid\r\nEND\r\n", nil, `stats line "STAT pid" has no value`},
		{"cut short", "STAT pid 1\r\nSTAT upt", nil, "read stats line 2: unexpected EOF"},
		{"nothing", "", nil, "read stats line 1: unexpected EOF"},
		{"line too long", "STAT big " + strings.Repeat("x", maxStatLine) + "\r\nEND\r\n", nil, "stats line 1 longer than 4096 bytes"},
		{"endless", strings.Repeat("STAT a 1\r\n", maxStatLines+5), nil, "more than 1000 lines of stats"},
	}
	for _, tt := range tests {
		got, err := parseStats(bufio.NewReaderSize(strings.NewReader(tt.in), maxStatLine))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: error %v, want %q", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil || fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%s: got %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
}

// memcachedVaryingRE finds what changes from run to run: the connection
// count (memcached closes the last run's connections in its own time) and
// the round trip's duration.
var memcachedVaryingRE = regexp.MustCompile(`[0-9]+ connections?\b|connections=[0-9]+|in [0-9.]+ ms|time=[0-9.]+s|immune:check_memcached:[0-9a-f]+`)

func normalizeMemcached(s string) string {
	return memcachedVaryingRE.ReplaceAllStringFunc(s, func(m string) string {
		switch {
		case strings.Contains(m, " connection"):
			return "N connections"
		case strings.HasPrefix(m, "connections="):
			return "connections=N"
		case strings.HasPrefix(m, "in "):
			return "in T ms"
		case strings.HasPrefix(m, "time="):
			return "time=Ts"
		}
		return "immune:check_memcached:KEY"
	})
}

// runMemcached runs check_memcached with its clock at now and its state in dir.
func runMemcached(t *testing.T, now time.Time, dir string, args ...string) nagios.Result {
	t.Helper()
	c, err := newMemcached(append([]string{"--state-dir", dir}, args...))
	if err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	c.(*memcachedCheck).now = func() time.Time { return now }
	return Run(context.Background(), "check_memcached", c)
}

func TestMemcachedAgainstReal(t *testing.T) {
	srv := memcached.Start(t)
	port := strconv.Itoa(srv.Port)
	dir := t.TempDir()
	start := time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)
	mc := memcache.New(srv.Addr)
	t.Cleanup(func() { mc.Close() })
	steps := []struct {
		name  string
		at    time.Time
		setup func()
		args  []string
		state nagios.State
		want  string
	}{
		// No gets yet: no ratio to judge or graph. The check's own get
		// comes after its stats, so it counts from the next run on.
		{"first run", start, nil, nil, nagios.OK,
			"MEMCACHED OK - memcached 1.6.18: N connections, 0.00 evictions/s since start, no gets yet, set/get/delete in T ms" +
				"|connections=N;;;0 evictions_per_second=0.00;;;0.00 hit_ratio=U;;;0.00;100.00 time=Ts;;;0.000000\n"},
		{"one hit", start.Add(time.Minute), nil, []string{"--hit-ratio-warning", "90:", "--hit-ratio-critical", "50:"}, nagios.OK,
			"MEMCACHED OK - memcached 1.6.18: N connections, 0.00 evictions/s since the last run, hit ratio 100.00%, set/get/delete in T ms" +
				"|connections=N;;;0 evictions_per_second=0.00;;;0.00 hit_ratio=100.00%;90.00:;50.00:;0.00;100.00 time=Ts;;;0.000000\n"},
		{"a miss", start.Add(2 * time.Minute), func() {
			if _, err := mc.Get("never-set"); err != memcache.ErrCacheMiss {
				t.Fatalf("get never-set: %v", err)
			}
		}, []string{"--hit-ratio-warning", "90:", "--hit-ratio-critical", "50:"}, nagios.Warning,
			"MEMCACHED WARNING - memcached 1.6.18: N connections, 0.00 evictions/s since the last run, hit ratio 66.67%, set/get/delete in T ms" +
				"|connections=N;;;0 evictions_per_second=0.00;;;0.00 hit_ratio=66.67%;90.00:;50.00:;0.00;100.00 time=Ts;;;0.000000\n"},
		{"too many connections", start.Add(3 * time.Minute), nil, []string{"--connections-warning", "1000", "--connections-critical", "@1:1000"}, nagios.Critical,
			"MEMCACHED CRITICAL - memcached 1.6.18: N connections, 0.00 evictions/s since the last run, hit ratio 75.00%, set/get/delete in T ms" +
				"|connections=N;1000;@1:1000;0 evictions_per_second=0.00;;;0.00 hit_ratio=75.00%;;;0.00;100.00 time=Ts;;;0.000000\n"},
	}
	for _, s := range steps {
		if s.setup != nil {
			s.setup()
		}
		r := runMemcached(t, s.at, dir, append([]string{"-H", "127.0.0.1", "-p", port}, s.args...)...)
		if got := normalizeMemcached(r.String()); r.State != s.state || got != s.want {
			t.Errorf("%s:\n got %s %q\nwant %s %q", s.name, r.State, got, s.state, s.want)
		}
	}
}

// TestMemcachedEvictions fills a 2 MB memcached past its memory, and
// judges the evictions per second since the last run.
func TestMemcachedEvictions(t *testing.T) {
	srv := memcached.Start(t, "-m", "2")
	dir := t.TempDir()
	start := time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)
	args := []string{"-p", strconv.Itoa(srv.Port), "--evictions-warning", "1", "--evictions-critical", "5"}
	if r := runMemcached(t, start, dir, args...); r.State != nagios.OK {
		t.Fatalf("baseline: %s", r)
	}
	mc := memcache.New(srv.Addr)
	t.Cleanup(func() { mc.Close() })
	value := make([]byte, 100<<10)
	for i := range 100 {
		if err := mc.Set(&memcache.Item{Key: "fill" + strconv.Itoa(i), Value: value}); err != nil {
			t.Fatal(err)
		}
	}
	stats, err := readStats(context.Background(), "127.0.0.1", srv.Port)
	if err != nil {
		t.Fatal(err)
	}
	evictions, err := strconv.Atoi(stats["evictions"])
	if err != nil || evictions < 20 {
		t.Fatalf("filling 10 MB into 2 MB evicted %q items", stats["evictions"])
	}
	r := runMemcached(t, start.Add(10*time.Second), dir, args...)
	rate := float64(evictions) / 10
	want := fmt.Sprintf("%.2f evictions/s since the last run", rate)
	perf := fmt.Sprintf("evictions_per_second=%.2f;1.00;5.00;0.00", rate)
	if r.State != nagios.Critical || !strings.Contains(r.Output, want) || !strings.Contains(r.String(), perf) {
		t.Errorf("got %s %q, want CRITICAL with %q and %q", r.State, r.String(), want, perf)
	}
}

func TestMemcachedEvictionRate(t *testing.T) {
	now := time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)
	const addr = "127.0.0.1:11211"
	tests := []struct {
		name      string
		saved     string // state file content; empty: none
		m         memcachedMeasure
		wantRate  float64
		wantSince string
		wantNote  string
	}{
		{"first run", "", memcachedMeasure{pid: 7, uptime: 100, evictions: 50}, 0.5, "since start", ""},
		{"first run, just started", "", memcachedMeasure{pid: 7}, 0, "since start", ""},
		{"same process", `{"server":"127.0.0.1:11211","pid":7,"uptime":40,"evictions":20,"time":"2026-03-02T13:59:00Z"}`,
			memcachedMeasure{pid: 7, uptime: 100, evictions: 50}, 0.5, "since the last run", ""},
		{"restarted", `{"server":"127.0.0.1:11211","pid":6,"uptime":4000,"evictions":900,"time":"2026-03-02T13:59:00Z"}`,
			memcachedMeasure{pid: 7, uptime: 100, evictions: 50}, 0.5, "since start", ""},
		{"uptime went back", `{"server":"127.0.0.1:11211","pid":7,"uptime":4000,"evictions":20,"time":"2026-03-02T13:59:00Z"}`,
			memcachedMeasure{pid: 7, uptime: 100, evictions: 50}, 0.5, "since start", ""},
		{"another server", `{"server":"10.0.0.1:11211","pid":7,"uptime":40,"evictions":20,"time":"2026-03-02T13:59:00Z"}`,
			memcachedMeasure{pid: 7, uptime: 100, evictions: 50}, 0.5, "since start", ""},
		{"clock went back", `{"server":"127.0.0.1:11211","pid":7,"uptime":40,"evictions":20,"time":"2026-03-02T14:01:00Z"}`,
			memcachedMeasure{pid: 7, uptime: 100, evictions: 50}, 0.5, "since start", ""},
		{"corrupt state", `{"server":`, memcachedMeasure{pid: 7, uptime: 100, evictions: 50}, 0.5, "since start", "corrupt state file"},
	}
	for _, tt := range tests {
		path := filepath.Join(t.TempDir(), "state.json")
		if tt.saved != "" {
			if err := os.WriteFile(path, []byte(tt.saved), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		c := &memcachedCheck{stateFile: path}
		m := tt.m
		note := c.evictionRate(&m, addr, now)
		if m.evictionRate != tt.wantRate || m.rateSince != tt.wantSince || !strings.Contains(note, tt.wantNote) || (tt.wantNote == "") != (note == "") {
			t.Errorf("%s: rate %v %s, note %q; want %v %s, note %q", tt.name, m.evictionRate, m.rateSince, note, tt.wantRate, tt.wantSince, tt.wantNote)
		}
		var saved memcachedState
		if found, err := loadState(path, &saved); !found || err != nil || saved.PID != m.pid || !saved.Time.Equal(now) {
			t.Errorf("%s: state after the run: %+v, %v, %v", tt.name, saved, found, err)
		}
	}
}

// fakeMemcached answers stats with the given lines and the storage
// commands as memcached would, except where broken says otherwise:
// "set" fails the set, "get" returns another value.
func fakeMemcached(stats, broken string) func(net.Conn) {
	return func(c net.Conn) {
		r := bufio.NewReader(c)
		var stored string
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			f := strings.Fields(line)
			if len(f) == 0 {
				continue
			}
			var answer string
			switch f[0] {
			case "stats":
				answer = stats
			case "set":
				if stored, err = r.ReadString('\n'); err != nil {
					return
				}
				stored = strings.TrimRight(stored, "\r\n")
				answer = "STORED\r\n"
				if broken == "set" {
					answer = "SERVER_ERROR out of memory storing object\r\n"
				}
			case "gets", "get":
				if broken == "get" {
					stored = "other"
				}
				answer = fmt.Sprintf("VALUE %s 0 %d\r\n%s\r\nEND\r\n", f[1], len(stored), stored)
			case "delete":
				answer = "DELETED\r\n"
			default:
				answer = "ERROR\r\n"
			}
			if _, err := c.Write([]byte(answer)); err != nil {
				return
			}
		}
	}
}

func TestMemcachedFailures(t *testing.T) {
	goodStats := "STAT pid 1\r\nSTAT uptime 10\r\nSTAT version 1.6.18\r\nSTAT curr_connections 2\r\n" +
		"STAT evictions 0\r\nSTAT get_hits 0\r\nSTAT get_misses 0\r\nEND\r\n"
	closed := npClosedPort(t)
	quiet := serveNP(t, "tcp", "127.0.0.1:0", nil, npSilent)
	setFails := serveNP(t, "tcp", "127.0.0.1:0", nil, fakeMemcached(goodStats, "set"))
	getDiffers := serveNP(t, "tcp", "127.0.0.1:0", nil, fakeMemcached(goodStats, "get"))
	noStats := serveNP(t, "tcp", "127.0.0.1:0", nil, fakeMemcached("ERROR\r\n", ""))
	badStats := serveNP(t, "tcp", "127.0.0.1:0", nil, fakeMemcached("STAT pid x\r\nEND\r\n", ""))
	sound := serveNP(t, "tcp", "127.0.0.1:0", nil, fakeMemcached(goodStats, ""))
	sock := serveNP(t, "unix", filepath.Join(t.TempDir(), "mc.sock"), nil, fakeMemcached(goodStats, "set"))
	tests := []struct {
		name  string
		args  []string
		state nagios.State
		want  string
	}{
		{"down", []string{"-p", closed}, nagios.Critical,
			"MEMCACHED CRITICAL - connect to address 127.0.0.1 and port " + closed + ": Connection refused"},
		{"silent", []string{"-p", quiet.port, "-t", "1"}, nagios.Critical,
			"MEMCACHED CRITICAL - no answer from memcached at 127.0.0.1:" + quiet.port + " within 1 seconds"},
		{"silent, timeout unknown", []string{"-p", quiet.port, "-t", "1:UNKNOWN"}, nagios.Unknown,
			"MEMCACHED UNKNOWN - no answer from memcached at 127.0.0.1:" + quiet.port + " within 1 seconds"},
		{"set fails", []string{"-p", setFails.port}, nagios.Critical,
			"MEMCACHED CRITICAL - set immune:check_memcached:KEY on memcached at 127.0.0.1:" + setFails.port +
				`: memcache: unexpected response line from "set": "SERVER_ERROR out of memory storing object\r\n"`},
		{"get differs", []string{"-p", getDiffers.port}, nagios.Critical,
			"MEMCACHED CRITICAL - get immune:check_memcached:KEY from memcached at 127.0.0.1:" + getDiffers.port +
				`: got "other", set "round trip KEY"`},
		{"no stats", []string{"-p", noStats.port}, nagios.Critical,
			"MEMCACHED CRITICAL - stats from memcached at 127.0.0.1:" + noStats.port + `: unexpected stats line "ERROR"`},
		{"bad stats", []string{"-p", badStats.port}, nagios.Critical,
			"MEMCACHED CRITICAL - memcached at 127.0.0.1:" + badStats.port + `: stat pid "x" is not a count`},
		{"fake but sound", []string{"-p", sound.port}, nagios.OK,
			"MEMCACHED OK - memcached 1.6.18: N connections, 0.00 evictions/s since start, no gets yet, set/get/delete in T ms"},
		{"unix socket", []string{"-H", sock.host}, nagios.Critical,
			"MEMCACHED CRITICAL - set immune:check_memcached:KEY on memcached at " + sock.host +
				`: memcache: unexpected response line from "set": "SERVER_ERROR out of memory storing object\r\n"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runMemcached(t, time.Now(), t.TempDir(), tt.args...)
			got := regexp.MustCompile(`round trip [0-9a-f]+`).ReplaceAllString(normalizeMemcached(r.Output), "round trip KEY")
			if r.State != tt.state || got != tt.want {
				t.Errorf("%q:\n got %s %q\nwant %s %q", tt.args, r.State, got, tt.state, tt.want)
			}
		})
	}
}

func TestMemcachedCallerDeadline(t *testing.T) {
	quiet := serveNP(t, "tcp", "127.0.0.1:0", nil, npSilent)
	assertCallerDeadline(t, "check_memcached", []string{"-p", quiet.port, "--state-dir", t.TempDir()},
		"MEMCACHED CRITICAL - no answer from memcached at 127.0.0.1:"+quiet.port+" within 10 seconds")
}

func TestMemcachedBadArguments(t *testing.T) {
	assertUsageErrors(t, "check_memcached", []usageCase{
		{[]string{"-p", "0"}, "-p/--port 0"},
		{[]string{"-H", " "}, "-H/--hostname: empty host"},
		{[]string{"--connections-warning", "x"}, `invalid range "x" for --connections-warning`},
		{[]string{"--connections-critical", "5:1"}, `invalid range "5:1" for --connections-critical: start > end`},
		{[]string{"--evictions-warning", "~"}, `invalid range "~" for --evictions-warning`},
		{[]string{"--hit-ratio-critical", "abc:"}, `invalid range "abc:" for --hit-ratio-critical`},
		{[]string{"-t", "-1"}, `timeout "-1" is not a positive number of seconds`},
		{[]string{"-t", "5:SOON"}, `timeout "5:SOON"`},
		{[]string{"stray"}, `unexpected argument "stray"`},
		{[]string{"--bogus"}, "unknown flag: --bogus"},
	})
}
