package checks

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/immune-ops/immune/nagios"
)

func init() {
	Register(Spec{
		Name:    "check_mysql_query",
		Summary: "the number a MySQL/MariaDB query returns, against thresholds, in a read-only session",
		New:     newMySQLQuery,
	})
}

type mysqlQueryCheck struct {
	cfg     *mysql.Config
	query   string
	th      nagios.Thresholds
	timeout *timeoutFlag
}

func newMySQLQuery(args []string) (Check, error) {
	f := newFlags("check_mysql_query", "-q SQL_query [-w warn] [-c crit] [-H host] [-P port] [-s socket]\n"+
		"       [-d database] [-u user] [-p password] [-f optfile] [-g group] [-t timeout]",
		"This program checks a query result against threshold levels.\n"+
			"The query runs in a read-only session and within the timeout: it cannot write.\n"+
			"Only the first column of the first row is read, and it must be numeric.\n"+
			"For extra security, create a user with minimal access.")
	query := f.StringP("query", "q", "", "SQL query to run. Only first column in first row will be read")
	warn := f.StringP("warning", "w", "", "Warning range (format: start:end). Alert if outside this range")
	crit := f.StringP("critical", "c", "", "Critical range")
	conn := addMySQLFlags(f)
	timeout := f.timeout(10, nagios.Critical)
	if err := f.parse(args); err != nil {
		return nil, err
	}
	if strings.TrimSpace(*query) == "" {
		return nil, f.failf("-q/--query: Must specify a SQL query to run")
	}
	if f.NArg() > 0 {
		return nil, f.failf("unexpected argument %q", f.Arg(0))
	}
	th, err := f.thresholds(*warn, *crit)
	if err != nil {
		return nil, err
	}
	cfg, err := conn.config()
	if err != nil {
		return nil, err
	}
	return &mysqlQueryCheck{cfg: cfg, query: *query, th: th, timeout: timeout}, nil
}

// Timeout is the -t option.
func (c *mysqlQueryCheck) Timeout() time.Duration { return c.timeout.d }

func (c *mysqlQueryCheck) Run(ctx context.Context) nagios.Result {
	fail := func(state nagios.State, format string, args ...any) nagios.Result {
		return nagios.Resultf(state, "QUERY %s: %s", state, fmt.Sprintf(format, args...))
	}
	v, state, problem := runNumericQuery(ctx, c.cfg, c.query, c.timeout)
	if problem != "" {
		return fail(state, "%s", problem)
	}
	state = c.th.State(v)
	return nagios.Result{
		State:  state,
		Output: fmt.Sprintf("QUERY %s: '%s' returned %s", state, c.query, nagios.FormatNumber(v, 6)),
		Perf: []nagios.Perf{{
			Label: "result", Value: v, Precision: 6,
			Warn: queryPerfRange(c.th.Warn), Crit: queryPerfRange(c.th.Crit),
		}},
	}
}

// queryPerfRange is the threshold as check_mysql_query writes it in perfdata: its
// upper end only, 0 when that is infinite.
func queryPerfRange(r *nagios.Range) *nagios.Range {
	if r == nil {
		return nil
	}
	end := r.End
	if math.IsInf(end, 0) {
		end = 0
	}
	return &nagios.Range{End: end}
}

// runNumericQuery connects, makes the session read only and runs query,
// returning the number in the first column of the first row. On failure it
// returns the state and the problem in check_mysql_query's words.
func runNumericQuery(ctx context.Context, cfg *mysql.Config, query string, timeout *timeoutFlag) (float64, nagios.State, string) {
	timedOutAfter := func(doing string) (float64, nagios.State, string) {
		return 0, timeout.state, fmt.Sprintf("timed out after %s %s", timeout.d, doing)
	}
	s, err := openMySQL(ctx, cfg)
	if err != nil {
		if timedOut(ctx) {
			return timedOutAfter("connecting to " + cfg.Addr)
		}
		state, msg := mysqlProblem(err, cfg)
		return 0, state, msg
	}
	defer s.Close()
	if err := s.readOnly(ctx); err != nil {
		if timedOut(ctx) {
			return timedOutAfter("starting a read-only session")
		}
		_, msg := mysqlProblem(err, cfg)
		return 0, nagios.Critical, "Could not make the session read only - " + msg
	}
	rows, err := s.QueryContext(ctx, query)
	if err != nil {
		if mysqlTimedOut(ctx, err) {
			return timedOutAfter("running the query")
		}
		_, msg := mysqlProblem(err, cfg)
		return 0, nagios.Critical, "Error with query - " + msg
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil || len(cols) == 0 {
		return 0, nagios.Critical, "Error with store_result - the statement returned no result set"
	}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			if mysqlTimedOut(ctx, err) {
				return timedOutAfter("running the query")
			}
			_, msg := mysqlProblem(err, cfg)
			return 0, nagios.Critical, "Fetch row error - " + msg
		}
		return 0, nagios.Warning, "No rows returned"
	}
	values := make([]sql.NullString, len(cols))
	dest := make([]any, len(cols))
	for i := range values {
		dest[i] = &values[i]
	}
	if err := rows.Scan(dest...); err != nil {
		_, msg := mysqlProblem(err, cfg)
		return 0, nagios.Critical, "Fetch row error - " + msg
	}
	text := "(null)"
	if values[0].Valid {
		text = values[0].String
	}
	v, ok := parseMySQLNumber(values[0])
	if !ok {
		return 0, nagios.Critical, fmt.Sprintf("Is not a numeric - '%s'", text)
	}
	return v, nagios.OK, ""
}

// parseMySQLNumber reads a value as monitoring-plugins' is_numeric does:
// leading white space allowed, nothing after the number. NaN and the
// infinities are refused: no threshold can judge them.
func parseMySQLNumber(v sql.NullString) (float64, bool) {
	if !v.Valid {
		return 0, false
	}
	s := strings.TrimLeft(v.String, " \t\n\v\f\r")
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}
