package checks

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/immune-ops/immune/nagios"
)

func init() {
	Register(Spec{
		Name:    "check_mysql",
		Summary: "MySQL/MariaDB server: connections, threads running, uptime, slow queries, replication lag",
		New:     newMySQL,
	})
}

type mysqlCheck struct {
	cfg          *mysql.Config
	checkReplica bool
	ignoreAuth   bool
	lag          nagios.Thresholds
	connections  nagios.Thresholds // percent of max_connections
	running      nagios.Thresholds
	uptime       nagios.Thresholds
	slow         nagios.Thresholds // slow queries per minute
	stateFile    string
	timeout      *timeoutFlag
}

func newMySQL(args []string) (Check, error) {
	f := newFlags("check_mysql", "[-d database] [-H host] [-P port] [-s socket]\n"+
		"       [-u user] [-p password] [-S] [-w lag] [-c lag] [-n] [-f optfile] [-g group] [-t timeout]\n"+
		"       [--connections-warning RANGE] [--connections-critical RANGE]\n"+
		"       [--threads-running-warning RANGE] [--threads-running-critical RANGE]\n"+
		"       [--slow-queries-warning RANGE] [--slow-queries-critical RANGE] [--state-file PATH]\n"+
		"       [--uptime-warning RANGE] [--uptime-critical RANGE]",
		"This program tests connections to a MySQL or MariaDB server and prints its statistics.\n"+
			"On a replica it checks that both replication threads run and how far it lags (-w/-c, seconds);\n"+
			"-S demands that the server be a replica. Connection usage is judged as a percentage of\n"+
			"max_connections, slow queries per minute: since the last run with --state-file, else since\n"+
			"the server started. Every statement runs in a read-only session.")
	conn := addMySQLFlags(f)
	checkReplica := f.BoolP("check-slave", "S", false, "Check that the server is a replica whose IO and SQL threads run")
	f.Bool("check-replica", false, "Same as -S")
	warn := f.StringP("warning", "w", "", "Exit with WARNING status if the replica's lag in seconds is outside RANGE")
	crit := f.StringP("critical", "c", "", "Exit with CRITICAL status if the replica's lag in seconds is outside RANGE")
	ignoreAuth := f.BoolP("ignore-auth", "n", false, "Ignore authentication failure and check for connectivity only")
	connW := f.String("connections-warning", "", "WARNING if connections in use, as a percentage of max_connections, are outside RANGE")
	connC := f.String("connections-critical", "", "CRITICAL if connections in use, as a percentage of max_connections, are outside RANGE")
	runW := f.String("threads-running-warning", "", "WARNING if the threads running are outside RANGE")
	runC := f.String("threads-running-critical", "", "CRITICAL if the threads running are outside RANGE")
	slowW := f.String("slow-queries-warning", "", "WARNING if slow queries per minute are outside RANGE")
	slowC := f.String("slow-queries-critical", "", "CRITICAL if slow queries per minute are outside RANGE")
	upW := f.String("uptime-warning", "", "WARNING if the uptime in seconds is outside RANGE (600: warns for 10 minutes after a restart)")
	upC := f.String("uptime-critical", "", "CRITICAL if the uptime in seconds is outside RANGE")
	stateFile := f.String("state-file", "", "File that keeps the slow query count of the last run, for a rate between runs")
	timeout := f.timeout(10, nagios.Critical)
	if err := f.parseNoArgs(args); err != nil {
		return nil, err
	}
	c := &mysqlCheck{ignoreAuth: *ignoreAuth, stateFile: *stateFile, timeout: timeout}
	alias, _ := f.GetBool("check-replica")
	c.checkReplica = *checkReplica || alias
	for _, t := range []struct {
		dst                 *nagios.Thresholds
		wflag, w, cflag, cr string
	}{
		{&c.lag, "-w", *warn, "-c", *crit},
		{&c.connections, "--connections-warning", *connW, "--connections-critical", *connC},
		{&c.running, "--threads-running-warning", *runW, "--threads-running-critical", *runC},
		{&c.slow, "--slow-queries-warning", *slowW, "--slow-queries-critical", *slowC},
		{&c.uptime, "--uptime-warning", *upW, "--uptime-critical", *upC},
	} {
		for _, r := range []struct {
			flag, text string
			dst        **nagios.Range
		}{{t.wflag, t.w, &t.dst.Warn}, {t.cflag, t.cr, &t.dst.Crit}} {
			if r.text == "" {
				continue
			}
			v, err := nagios.ParseRangeFlag(r.flag, r.text)
			if err != nil {
				return nil, f.fail(err)
			}
			*r.dst = &v
		}
	}
	var err error
	if c.cfg, err = conn.config(); err != nil {
		return nil, err
	}
	return c, nil
}

// Timeout is the -t option.
func (c *mysqlCheck) Timeout() time.Duration { return c.timeout.d }

// The status variables check_mysql prints as perfdata, in the server's
// (alphabetical) order; counters carry the unit "c".
var mysqlPerfVars = []struct {
	name    string
	counter bool
}{
	{"Connections", true}, {"Open_files", false}, {"Open_tables", false},
	{"Qcache_free_memory", false}, {"Qcache_hits", true}, {"Qcache_inserts", true},
	{"Qcache_lowmem_prunes", true}, {"Qcache_not_cached", true}, {"Qcache_queries_in_cache", false},
	{"Queries", true}, {"Questions", true}, {"Table_locks_waited", true},
	{"Threads_connected", false}, {"Threads_running", false}, {"Uptime", true},
}

func (c *mysqlCheck) Run(ctx context.Context) nagios.Result {
	s, err := openMySQL(ctx, c.cfg)
	if err != nil {
		if timedOut(ctx) {
			return c.timedOut("connecting to " + c.cfg.Addr)
		}
		if c.ignoreAuth && mysqlErrorNumber(err) == errAccessDenied {
			return c.greeting(ctx)
		}
		state, msg := mysqlProblem(err, c.cfg)
		return nagios.Result{State: state, Output: msg}
	}
	defer s.Close()
	st, err := c.read(ctx, s)
	if err != nil {
		if mysqlTimedOut(ctx, err) {
			return c.timedOut("reading the server's status")
		}
		_, msg := mysqlProblem(err, c.cfg)
		return nagios.Result{State: nagios.Critical, Output: msg}
	}
	rep, repResult := c.replica(ctx, s)
	if repResult != nil {
		return *repResult
	}
	return c.judge(st, rep)
}

func (c *mysqlCheck) timedOut(doing string) nagios.Result {
	return nagios.Resultf(c.timeout.state, "MySQL %s - timed out after %s %s", c.timeout.state, c.timeout.d, doing)
}

// greeting answers -n: the server answered, even if it refused the login.
func (c *mysqlCheck) greeting(ctx context.Context) nagios.Result {
	version, protocol, err := mysqlGreeting(ctx, c.cfg)
	if err != nil {
		state, msg := mysqlProblem(err, c.cfg)
		return nagios.Result{State: state, Output: msg}
	}
	return nagios.Resultf(nagios.OK, "MySQL OK - Version: %s (protocol %d)", version, protocol)
}

// mysqlStatus is what one run reads from the server.
type mysqlStatus struct {
	version        string
	maxConnections float64
	vars           map[string]string
	slowRate       float64 // slow queries per minute
	stateProblem   string  // why the state file could not be used
}

func (st *mysqlStatus) num(name string) float64 {
	v, _ := strconv.ParseFloat(st.vars[name], 64)
	return v
}

func (c *mysqlCheck) read(ctx context.Context, s *mysqlSession) (*mysqlStatus, error) {
	if err := s.readOnly(ctx); err != nil {
		return nil, err
	}
	st := &mysqlStatus{vars: map[string]string{}}
	if err := s.QueryRowContext(ctx, "SELECT VERSION(), @@max_connections").Scan(&st.version, &st.maxConnections); err != nil {
		return nil, fmt.Errorf("read the version and max_connections: %w", err)
	}
	rows, err := s.QueryContext(ctx, "SHOW GLOBAL STATUS")
	if err != nil {
		return nil, fmt.Errorf("read the global status: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, value string
		if err := rows.Scan(&name, &value); err != nil {
			return nil, fmt.Errorf("read the global status: %w", err)
		}
		st.vars[name] = value
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the global status: %w", err)
	}
	st.slowRate, st.stateProblem = slowQueryRate(c.stateFile, st.num("Uptime"), st.num("Slow_queries"))
	return st, nil
}

// slowState is what the state file keeps: the server's own clock (its
// uptime) makes the rate independent of ours, and shows a restart.
type slowState struct {
	Uptime      float64 `json:"uptime"`
	SlowQueries float64 `json:"slow_queries"`
}

// slowQueryRate is slow queries per minute since the run recorded in
// stateFile, or since the server started when there is no usable record
// (none kept, the first run, a restart since, or no time passed).
func slowQueryRate(stateFile string, uptime, slow float64) (float64, string) {
	rate := 0.0
	if uptime > 0 {
		rate = slow / uptime * 60
	}
	if stateFile == "" {
		return rate, ""
	}
	var prev slowState
	if b, err := os.ReadFile(stateFile); err == nil && json.Unmarshal(b, &prev) == nil &&
		uptime > prev.Uptime && slow >= prev.SlowQueries {
		rate = (slow - prev.SlowQueries) / (uptime - prev.Uptime) * 60
	}
	b, _ := json.Marshal(slowState{Uptime: uptime, SlowQueries: slow})
	if err := os.MkdirAll(filepath.Dir(stateFile), 0o755); err != nil {
		return rate, fmt.Sprintf("could not save the slow query count: %v", err)
	}
	tmp := stateFile + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return rate, fmt.Sprintf("could not save the slow query count: %v", err)
	}
	if err := os.Rename(tmp, stateFile); err != nil {
		return rate, fmt.Sprintf("could not save the slow query count: %v", err)
	}
	return rate, ""
}

// mysqlReplica is the replica status the check judges.
type mysqlReplica struct {
	io, sql, lag string // lag is "NULL" when the server does not know it
}

// replica reads the replica status. A server that is no replica, or a user
// who may not ask, is fine unless -S demands a replica; then it gives the
// result check_mysql -S gives.
func (c *mysqlCheck) replica(ctx context.Context, s *mysqlSession) (*mysqlReplica, *nagios.Result) {
	fail := func(state nagios.State, format string, args ...any) (*mysqlReplica, *nagios.Result) {
		if !c.checkReplica {
			return nil, nil
		}
		r := nagios.Resultf(state, format, args...)
		return nil, &r
	}
	// MySQL 8.4 knows only SHOW REPLICA STATUS, MySQL before 8.0.22 only
	// SHOW SLAVE STATUS; MariaDB both.
	rows, err := s.QueryContext(ctx, "SHOW REPLICA STATUS")
	if mysqlErrorNumber(err) == errParse {
		rows, err = s.QueryContext(ctx, "SHOW SLAVE STATUS")
	}
	if err != nil {
		if mysqlTimedOut(ctx, err) {
			r := c.timedOut("reading the replica status")
			return nil, &r
		}
		_, msg := mysqlProblem(err, c.cfg)
		return fail(nagios.Critical, "slave query error: %s", msg)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		_, msg := mysqlProblem(err, c.cfg)
		return fail(nagios.Critical, "slave store_result error: %s", msg)
	}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			_, msg := mysqlProblem(err, c.cfg)
			return fail(nagios.Critical, "slave fetch row error: %s", msg)
		}
		return fail(nagios.Warning, "No slaves defined")
	}
	values := make([]*string, len(cols))
	dest := make([]any, len(cols))
	for i := range values {
		dest[i] = &values[i]
	}
	if err := rows.Scan(dest...); err != nil {
		_, msg := mysqlProblem(err, c.cfg)
		return fail(nagios.Critical, "slave fetch row error: %s", msg)
	}
	row := map[string]*string{}
	for i, name := range cols {
		row[name] = values[i]
	}
	rep, ok := replicaFromRow(row)
	if !ok {
		r := nagios.Resultf(nagios.Critical, "Slave status unavailable")
		return nil, &r
	}
	return rep, nil
}

// replicaFromRow reads the columns check_mysql reads, under either the old
// names or MySQL 8's Replica/Source ones.
func replicaFromRow(row map[string]*string) (*mysqlReplica, bool) {
	pick := func(names ...string) (string, bool) {
		for _, n := range names {
			if v, ok := row[n]; ok {
				if v == nil {
					return "(null)", true
				}
				return *v, true
			}
		}
		return "", false
	}
	io, okIO := pick("Slave_IO_Running", "Replica_IO_Running")
	sql, okSQL := pick("Slave_SQL_Running", "Replica_SQL_Running")
	if !okIO || !okSQL {
		return nil, false
	}
	lag, ok := pick("Seconds_Behind_Master", "Seconds_Behind_Source")
	if !ok {
		lag = "Unknown"
	}
	return &mysqlReplica{io: io, sql: sql, lag: lag}, true
}

// judge builds the result from what was read. A stopped or lagging replica
// is reported as check_mysql reports it; our own thresholds add their
// findings in front of that.
func (c *mysqlCheck) judge(st *mysqlStatus, rep *mysqlReplica) nagios.Result {
	r := nagios.Result{Output: statLine(st), Long: st.stateProblem}
	for _, v := range mysqlPerfVars {
		text, ok := st.vars[v.name]
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(text, 10, 64)
		p := nagios.Perf{Label: v.name, Value: float64(n)}
		if v.counter {
			p.UOM = "c"
		}
		switch v.name {
		case "Threads_running":
			p.Warn, p.Crit = c.running.Warn, c.running.Crit
		case "Uptime":
			p.Warn, p.Crit = c.uptime.Warn, c.uptime.Crit
		}
		r.Perf = append(r.Perf, p)
	}

	var findings []string
	ours := nagios.OK
	judge := func(th nagios.Thresholds, v float64, finding string) {
		if s := th.State(v); s != nagios.OK {
			ours = nagios.Worst(ours, s)
			findings = append(findings, finding)
		}
	}
	connected := st.num("Threads_connected")
	usage := 0.0
	if st.maxConnections > 0 {
		usage = connected / st.maxConnections * 100
	}
	judge(c.connections, usage, fmt.Sprintf("connections %s of %s (%.1f%%)",
		nagios.FormatNumber(connected, -1), nagios.FormatNumber(st.maxConnections, -1), usage))
	judge(c.running, st.num("Threads_running"), "threads running "+st.vars["Threads_running"])
	judge(c.slow, st.slowRate, fmt.Sprintf("slow queries %.2f/min", st.slowRate))
	judge(c.uptime, st.num("Uptime"), "uptime "+st.vars["Uptime"]+" s")

	state := nagios.OK
	if rep != nil {
		text := fmt.Sprintf("Slave IO: %s Slave SQL: %s Seconds Behind Master: %s", rep.io, rep.sql, rep.lag)
		lag, err := strconv.ParseFloat(rep.lag, 64)
		switch {
		case rep.io != "Yes" || rep.sql != "Yes":
			// check_mysql prints no perfdata for a stopped replica.
			state, r.Output, r.Perf = nagios.Critical, text, nil
		case err != nil:
			r.Output += " " + text
		default:
			r.Perf = append(r.Perf, nagios.Perf{Label: "seconds behind master", Value: lag, UOM: "s",
				Precision: 6, Warn: c.lag.Warn, Crit: c.lag.Crit})
			if state = c.lag.State(lag); state != nagios.OK {
				r.Output = fmt.Sprintf("SLOW_SLAVE %s: %s", state, text)
			} else {
				r.Output += " " + text
			}
		}
	}
	if r.Perf != nil {
		r.Perf = append(r.Perf,
			nagios.Perf{Label: "connection_usage", Value: usage, UOM: "%", Precision: 2,
				Warn: c.connections.Warn, Crit: c.connections.Crit, Min: nagios.Float(0), Max: nagios.Float(100)},
			nagios.Perf{Label: "slow_queries_per_min", Value: st.slowRate, Precision: 3,
				Warn: c.slow.Warn, Crit: c.slow.Crit, Min: nagios.Float(0)})
	}
	r.State = nagios.Worst(state, ours)
	if len(findings) > 0 {
		r.Output = fmt.Sprintf("MySQL %s - %s - %s", r.State, strings.Join(findings, ", "), r.Output)
	}
	return r
}

// statLine is the server's statistics line as the client library's
// mysql_stat() returns it, built from the status variables because the Go
// driver does not send COM_STATISTICS: MariaDB's form, or MySQL's, which
// also counts table flushes.
func statLine(st *mysqlStatus) string {
	uptime := int64(st.num("Uptime"))
	queries := int64(st.num("Queries"))
	var qps1000 int64
	if uptime > 0 {
		qps1000 = queries * 1000 / uptime
	}
	flush := ""
	if !strings.Contains(st.version, "MariaDB") {
		flush = fmt.Sprintf("  Flush tables: %d", int64(st.num("Flush_commands")))
	}
	return fmt.Sprintf("Uptime: %d  Threads: %d  Questions: %d  Slow queries: %d  Opens: %d%s  Open tables: %d  Queries per second avg: %d.%03d",
		uptime, int64(st.num("Threads_connected")), queries, int64(st.num("Slow_queries")),
		int64(st.num("Opened_tables")), flush, int64(st.num("Open_tables")), qps1000/1000, qps1000%1000)
}
