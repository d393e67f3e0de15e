package checks

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/immune-ops/immune/nagios"
)

func init() {
	Register(Spec{
		Name:    "check_mysql_business",
		Summary: "business gauges from MySQL/MariaDB: orders or registrations in the last minutes, queue age",
		New:     newMySQLBusiness,
	})
}

// A business preset is a query built from validated names, so a check can
// watch a gauge the business cares about without a hand-written query.
type businessPreset struct {
	prefix, noun, label string
	// age: the age in seconds of the oldest row; otherwise rows in the window.
	age bool
}

var businessPresets = map[string]businessPreset{
	"orders":        {prefix: "ORDERS", noun: "orders", label: "orders"},
	"registrations": {prefix: "REGISTRATIONS", noun: "registrations", label: "registrations"},
	"queue-age":     {prefix: "QUEUE", label: "queue_age", age: true},
}

// sqlName is one identifier part: what the presets accept, so that quoting
// it in backticks is all the escaping it needs.
var sqlName = lazyRegexp(`^[A-Za-z0-9_]{1,64}$`)

type mysqlBusinessCheck struct {
	cfg     *mysql.Config
	preset  businessPreset
	table   string // quoted
	minutes int
	query   string
	th      nagios.Thresholds
	timeout *timeoutFlag
}

func newMySQLBusiness(args []string) (Check, error) {
	f := newFlags("check_mysql_business", "--preset orders|registrations|queue-age --table TABLE [--time-column COLUMN]\n"+
		"       [--where CONDITION] [--minutes N] [-w RANGE] [-c RANGE] [connection options of check_mysql_query]",
		"This plugin watches a business gauge in a MySQL or MariaDB table, in a read-only session:\n"+
			"  orders, registrations  rows whose time column lies in the last --minutes (alert on too few\n"+
			"                         with a range such as -w 10: -c 1:)\n"+
			"  queue-age              the age in seconds of the oldest row matching --where, such as\n"+
			"                         --where 'processed = 0'; 0 when none match\n"+
			"Table and column names may hold only letters, digits and '_' (a table may be DATABASE.TABLE).\n"+
			"--where is SQL added as it is: it belongs in trusted configuration, never in user input.\n"+
			"Times are compared with the server's NOW(), in the session's time zone.")
	preset := f.String("preset", "", "Gauge to measure: orders, registrations or queue-age (required)")
	table := f.String("table", "", "Table to measure (required)")
	column := f.String("time-column", "created_at", "DATETIME or TIMESTAMP column the row's time is in")
	where := f.String("where", "", "Extra SQL condition rows must meet (trusted configuration only)")
	minutes := f.Int("minutes", 60, "Window in minutes, for orders and registrations")
	warn := f.StringP("warning", "w", "", "Exit with WARNING status if the value is outside RANGE")
	crit := f.StringP("critical", "c", "", "Exit with CRITICAL status if the value is outside RANGE")
	conn := addMySQLFlags(f)
	timeout := f.timeout(10, nagios.Critical)
	if err := f.parseNoArgs(args); err != nil {
		return nil, err
	}
	p, ok := businessPresets[*preset]
	if !ok {
		return nil, f.failf("--preset %q: want orders, registrations or queue-age", *preset)
	}
	c := &mysqlBusinessCheck{preset: p, minutes: *minutes, timeout: timeout}
	var err error
	if c.table, err = quoteSQLName(*table, true); err != nil {
		return nil, f.failf("--table %q: %v", *table, err)
	}
	col, err := quoteSQLName(*column, false)
	if err != nil {
		return nil, f.failf("--time-column %q: %v", *column, err)
	}
	if strings.TrimSpace(*where) == "" && f.Changed("where") {
		return nil, f.failf("--where: empty condition")
	}
	if strings.ContainsAny(*where, ";\x00") {
		return nil, f.failf("--where %q: one condition, without ';'", *where)
	}
	var cond []string
	if !p.age {
		if *minutes < 1 || *minutes > 527040 {
			return nil, f.failf("--minutes %d: want 1 to 527040 (a year)", *minutes)
		}
		cond = append(cond, fmt.Sprintf("%s >= NOW() - INTERVAL %d MINUTE", col, *minutes))
	}
	if *where != "" {
		cond = append(cond, "("+*where+")")
	}
	if p.age {
		// -1 marks an empty queue, told apart from a row 0 s old; a row
		// stamped in the future counts as new.
		c.query = fmt.Sprintf("SELECT COALESCE(GREATEST(TIMESTAMPDIFF(SECOND, MIN(%s), NOW()), 0), -1) FROM %s", col, c.table)
	} else {
		c.query = "SELECT COUNT(*) FROM " + c.table
	}
	if len(cond) > 0 {
		c.query += " WHERE " + strings.Join(cond, " AND ")
	}
	if c.th, err = f.thresholds(*warn, *crit); err != nil {
		return nil, err
	}
	if c.cfg, err = conn.config(); err != nil {
		return nil, err
	}
	return c, nil
}

// quoteSQLName validates a name and quotes it in backticks; a table may be
// qualified by its database.
func quoteSQLName(name string, qualified bool) (string, error) {
	if name == "" {
		return "", fmt.Errorf("a name is required")
	}
	parts := []string{name}
	if qualified {
		parts = strings.Split(name, ".")
		if len(parts) > 2 {
			return "", fmt.Errorf("want TABLE or DATABASE.TABLE")
		}
	}
	for i, p := range parts {
		if !sqlName().MatchString(p) {
			return "", fmt.Errorf("names may hold only letters, digits and '_', up to 64")
		}
		parts[i] = "`" + p + "`"
	}
	return strings.Join(parts, "."), nil
}

// Timeout is the -t option.
func (c *mysqlBusinessCheck) Timeout() time.Duration { return c.timeout.d }

func (c *mysqlBusinessCheck) Run(ctx context.Context) nagios.Result {
	v, state, problem := runNumericQuery(ctx, c.cfg, c.query, c.timeout)
	if problem != "" {
		return nagios.Resultf(state, "%s %s - %s", c.preset.prefix, state, problem)
	}
	var text string
	switch {
	case c.preset.age && v < 0:
		v, text = 0, "no pending rows in "+c.table
	case c.preset.age:
		text = fmt.Sprintf("oldest pending row in %s is %s s old", c.table, nagios.FormatNumber(v, -1))
	default:
		text = fmt.Sprintf("%s %s in %s in the last %d minutes", nagios.FormatNumber(v, -1), c.preset.noun, c.table, c.minutes)
	}
	p := nagios.Perf{Label: c.preset.label, Value: v, Warn: c.th.Warn, Crit: c.th.Crit, Min: nagios.Float(0)}
	if c.preset.age {
		p.UOM = "s"
	}
	state = c.th.State(v)
	return nagios.Result{State: state, Output: fmt.Sprintf("%s %s - %s", c.preset.prefix, state, text), Perf: []nagios.Perf{p}}
}
