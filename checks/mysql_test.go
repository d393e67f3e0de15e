package checks

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/immune-ops/immune/fixtures/mariadb"
	"github.com/immune-ops/immune/nagios"
)

// ourMySQLPerf are the perfdata items check_mysql has and its twin has not.
var ourMySQLPerf = map[string]bool{"connection_usage": true, "slow_queries_per_min": true}

// twinPerfOnly drops our own perfdata items, to compare the rest with the twin.
func twinPerfOnly(r pluginRun) pluginRun {
	var kept []nagios.Perf
	for _, p := range r.Result.Perf {
		if !ourMySQLPerf[p.Label] {
			kept = append(kept, p)
		}
	}
	r.Result.Perf = kept
	return r
}

// mysqlTwinTolerance allows for the counters that move between the two
// runs: each run's own statements count as questions and connections.
var mysqlTwinTolerance = tolerance{Abs: 50, Rel: 0.2}

// settledUptime is how long the server must have run before its twin runs
// are compared: "Queries per second avg" divides by the uptime, so at one
// or two seconds the same questions read as twice or half as many.
const settledUptime = 5

// awaitUptime waits until the test server has run settledUptime seconds.
func awaitUptime(t *testing.T, s *mariadb.Server) {
	t.Helper()
	for range 2 * settledUptime * 10 {
		var name string
		var up int
		if err := s.Root().QueryRow("SHOW GLOBAL STATUS LIKE 'Uptime'").Scan(&name, &up); err != nil {
			t.Fatalf("read the server's uptime: %v", err)
		}
		if up >= settledUptime {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the server's uptime did not reach %d s", settledUptime)
}

func runMySQLTwins(t *testing.T, cases []twinCase) {
	t.Helper()
	awaitUptime(t, mysqlServer(t))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			theirs := runTheirs(t, "check_mysql", tc.args...)
			ours := runOurs(t, context.Background(), "check_mysql", tc.args...)
			t.Logf("ours:   %stheirs: %s", ours.Raw, theirs.Raw)
			assertTwins(t, twinPerfOnly(ours), theirs, mysqlTwinTolerance)
			assertNoPassword(t, ours.Raw)
		})
	}
}

func TestMySQLTwin(t *testing.T) {
	s := mysqlServer(t)
	port := s.PortString()
	runMySQLTwins(t, []twinCase{
		{"status", mysqlArgs(s)},
		{"no database", []string{"-H", s.Host, "-P", port, "-u", mariadb.User, "-p", mariadb.Password}},
		{"socket", []string{"-s", s.Socket, "-u", mariadb.User, "-p", mariadb.Password}},
		{"lag thresholds without -S", mysqlArgs(s, "-w", "10", "-c", "20")},
		{"wrong password", []string{"-H", s.Host, "-P", port, "-u", mariadb.User, "-p", "wrong"}},
		{"database not granted", []string{"-H", s.Host, "-P", port, "-u", mariadb.User, "-p", mariadb.Password, "-d", "mysql"}},
		{"not a replica", mysqlArgs(s, "-S")},
		{"not a replica with thresholds", mysqlArgs(s, "-S", "-w", "10", "-c", "20")},
	})

	// A replica whose threads are stopped: its source is a closed port, and
	// it is never started, so its state does not move during the test.
	if err := s.Exec(context.Background(), "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT="+closedPort(t)+
		", MASTER_USER='repl', MASTER_PASSWORD='x'"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Exec(context.Background(), "RESET SLAVE ALL"); err != nil {
			t.Error(err)
		}
	})
	runMySQLTwins(t, []twinCase{
		{"stopped replica", mysqlArgs(s, "-S")},
		{"stopped replica with thresholds", mysqlArgs(s, "-S", "-w", "10", "-c", "20")},
	})
	// Unlike the twin, a replica is judged without -S too.
	ours := runOurs(t, context.Background(), "check_mysql", mysqlArgs(s)...)
	if want := "Slave IO: No Slave SQL: No Seconds Behind Master: (null)\n"; ours.Code != 2 || ours.Raw != want {
		t.Errorf("stopped replica without -S: exit %d %q, want 2 %q", ours.Code, ours.Raw, want)
	}
}

func TestMySQLServerDownAndIgnoreAuth(t *testing.T) {
	s := mysqlServer(t)
	down := []string{"-H", "127.0.0.1", "-P", closedPort(t), "-u", mariadb.User, "-p", mariadb.Password}
	theirs := runTheirs(t, "check_mysql", down...)
	ours := runOurs(t, context.Background(), "check_mysql", down...)
	const prefix = "Can't connect to server on '127.0.0.1' ("
	if ours.Code != 2 || theirs.Code != 2 || !strings.HasPrefix(ours.Raw, prefix) || !strings.HasPrefix(theirs.Raw, prefix) {
		t.Errorf("server down: ours %d %q, theirs %d %q; want 2 and %q", ours.Code, ours.Raw, theirs.Code, theirs.Raw, prefix)
	}

	// -n: a refused login still shows the server answers. The twin prints
	// "(null)" for the version it no longer has; we print the version.
	var version string
	if err := s.Root().QueryRow("SELECT VERSION()").Scan(&version); err != nil {
		t.Fatal(err)
	}
	args := []string{"-H", s.Host, "-P", s.PortString(), "-u", mariadb.User, "-p", "wrong", "-n"}
	theirs = runTheirs(t, "check_mysql", args...)
	ours = runOurs(t, context.Background(), "check_mysql", args...)
	if want := "MySQL OK - Version: " + version + " (protocol 10)\n"; ours.Code != 0 || theirs.Code != 0 || ours.Raw != want {
		t.Errorf("-n: ours %d %q, theirs %d %q; want 0 and %q", ours.Code, ours.Raw, theirs.Code, theirs.Raw, want)
	}
}

// Our own thresholds, against the real server.
func TestMySQLOwnThresholds(t *testing.T) {
	s := mysqlServer(t)
	tests := []struct {
		args  []string
		state nagios.State
		want  string // a regular expression for the status line
	}{
		{[]string{"--connections-warning", "90", "--connections-critical", "95"}, nagios.OK, `^Uptime: \d+  Threads: \d+`},
		{[]string{"--connections-critical", "0"}, nagios.Critical, `^MySQL CRITICAL - connections \d+ of 50 \(\d+\.\d%\) - Uptime: \d+  Threads: `},
		{[]string{"--threads-running-warning", "0"}, nagios.Warning, `^MySQL WARNING - threads running \d+ - Uptime: `},
		{[]string{"--uptime-warning", "86400:"}, nagios.Warning, `^MySQL WARNING - uptime \d+ s - Uptime: `},
		{[]string{"--uptime-warning", "86400:", "--connections-critical", "0"}, nagios.Critical,
			`^MySQL CRITICAL - connections \d+ of 50 \(\d+\.\d%\), uptime \d+ s - Uptime: `},
		{[]string{"--slow-queries-warning", "1000"}, nagios.OK, `^Uptime: `},
		{[]string{"--check-replica"}, nagios.Warning, `^No slaves defined$`},
	}
	for _, tt := range tests {
		got := runOurs(t, context.Background(), "check_mysql", mysqlArgs(s, tt.args...)...)
		if got.Result.State != tt.state || !regexp.MustCompile(tt.want).MatchString(got.Result.Output) {
			t.Errorf("%q: got %s %q, want %s matching %s", tt.args, got.Result.State, got.Raw, tt.state, tt.want)
		}
	}
}

func TestMySQLBadArguments(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-w", "x"}, `invalid range "x" for -w`},
		{[]string{"--connections-warning", "9:1"}, `for --connections-warning`},
		{[]string{"--threads-running-critical", "abc"}, `for --threads-running-critical`},
		{[]string{"-P", "0", "-p", mariadb.Password}, `-P/--port "0"`},
		{[]string{"stray"}, `unexpected argument "stray"`},
	} {
		var out strings.Builder
		code := Main(context.Background(), "check_mysql", tt.args, &out)
		if code != 3 || !strings.Contains(out.String(), tt.want) {
			t.Errorf("%q: exit %d\n%s\nwant exit 3 and %q", tt.args, code, out.String(), tt.want)
		}
		assertNoPassword(t, out.String())
	}
}

// judge on made-up server states: a running replica's lag, which the
// tests' single server cannot show, and MySQL's statistics line.
func TestMySQLJudge(t *testing.T) {
	vars := map[string]string{
		"Uptime": "1000", "Threads_connected": "30", "Queries": "12345", "Questions": "12000",
		"Slow_queries": "7", "Opened_tables": "50", "Open_tables": "40", "Threads_running": "3", "Flush_commands": "2",
	}
	const stat = "Uptime: 1000  Threads: 30  Questions: 12345  Slow queries: 7  Opens: 50  Open tables: 40  Queries per second avg: 12.345"
	const perf = "Open_tables=40 Queries=12345c Questions=12000c Threads_connected=30 Threads_running=3 Uptime=1000c"
	tests := []struct {
		name    string
		args    []string
		version string
		rep     *mysqlReplica
		state   nagios.State
		want    string
	}{
		{"mariadb", nil, "10.11.19-MariaDB", nil, nagios.OK,
			stat + "|" + perf + " connection_usage=30.00%;;;0.00;100.00 slow_queries_per_min=0.420;;;0.000\n"},
		{"mysql", nil, "8.0.36", nil, nagios.OK,
			strings.Replace(stat, "Opens: 50", "Opens: 50  Flush tables: 2", 1) + "|" + perf +
				" connection_usage=30.00%;;;0.00;100.00 slow_queries_per_min=0.420;;;0.000\n"},
		{"replica in time", []string{"-S", "-w", "10", "-c", "20"}, "10.11.19-MariaDB", &mysqlReplica{"Yes", "Yes", "5"}, nagios.OK,
			stat + " Slave IO: Yes Slave SQL: Yes Seconds Behind Master: 5|" + perf +
				" 'seconds behind master'=5.000000s;10.000000;20.000000 connection_usage=30.00%;;;0.00;100.00 slow_queries_per_min=0.420;;;0.000\n"},
		{"replica behind", []string{"-S", "-w", "10", "-c", "20"}, "10.11.19-MariaDB", &mysqlReplica{"Yes", "Yes", "15"}, nagios.Warning,
			"SLOW_SLAVE WARNING: Slave IO: Yes Slave SQL: Yes Seconds Behind Master: 15|" + perf +
				" 'seconds behind master'=15.000000s;10.000000;20.000000 connection_usage=30.00%;;;0.00;100.00 slow_queries_per_min=0.420;;;0.000\n"},
		{"replica far behind", []string{"-S", "-w", "10", "-c", "20"}, "10.11.19-MariaDB", &mysqlReplica{"Yes", "Yes", "25"}, nagios.Critical,
			"SLOW_SLAVE CRITICAL: Slave IO: Yes Slave SQL: Yes Seconds Behind Master: 25|" + perf +
				" 'seconds behind master'=25.000000s;10.000000;20.000000 connection_usage=30.00%;;;0.00;100.00 slow_queries_per_min=0.420;;;0.000\n"},
		{"replica lag unknown", []string{"-S", "-c", "20"}, "10.11.19-MariaDB", &mysqlReplica{"Yes", "Yes", "(null)"}, nagios.OK,
			stat + " Slave IO: Yes Slave SQL: Yes Seconds Behind Master: (null)|" + perf +
				" connection_usage=30.00%;;;0.00;100.00 slow_queries_per_min=0.420;;;0.000\n"},
		{"replica sql stopped", []string{"-S"}, "10.11.19-MariaDB", &mysqlReplica{"Yes", "No", "(null)"}, nagios.Critical,
			"Slave IO: Yes Slave SQL: No Seconds Behind Master: (null)\n"},
		{"replica stopped and connections high", []string{"--connections-warning", "20"}, "10.11.19-MariaDB", &mysqlReplica{"Connecting", "Yes", "(null)"}, nagios.Critical,
			"MySQL CRITICAL - connections 30 of 100 (30.0%) - Slave IO: Connecting Slave SQL: Yes Seconds Behind Master: (null)\n"},
		{"slow queries", []string{"--slow-queries-warning", "0.1", "--slow-queries-critical", "1"}, "10.11.19-MariaDB", nil, nagios.Warning,
			"MySQL WARNING - slow queries 0.42/min - " + stat + "|" + perf +
				" connection_usage=30.00%;;;0.00;100.00 slow_queries_per_min=0.420;0.100;1.000;0.000\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := newMySQL(append([]string{"-H", "127.0.0.1"}, tt.args...))
			if err != nil {
				t.Fatal(err)
			}
			st := &mysqlStatus{version: tt.version, maxConnections: 100, vars: vars}
			st.slowRate, _ = slowQueryRate("", 1000, 7)
			r := c.(*mysqlCheck).judge(st, tt.rep)
			if r.State != tt.state || r.String() != tt.want {
				t.Errorf("got %s %q\nwant %s %q", r.State, r.String(), tt.state, tt.want)
			}
		})
	}
}

func TestSlowQueryRate(t *testing.T) {
	file := filepath.Join(t.TempDir(), "state", "mysql.json")
	steps := []struct {
		uptime, slow, want float64
	}{
		{600, 60, 6},   // first run: since the server started
		{660, 63, 3},   // 3 in the 60 s since
		{660, 63, 5.7}, // no time passed: since the start again
		{30, 1, 2},     // a restart: since the new start
		{90, 1, 0},
	}
	for i, s := range steps {
		got, problem := slowQueryRate(file, s.uptime, s.slow)
		if problem != "" || got < s.want-0.05 || got > s.want+0.05 {
			t.Errorf("step %d: rate %g (%s), want %g", i, got, problem, s.want)
		}
	}
	if _, problem := slowQueryRate(filepath.Join(file, "under-a-file", "x.json"), 10, 1); !strings.Contains(problem, "could not save") {
		t.Errorf("unwritable state file: problem %q, want one saying so", problem)
	}
}
